-- 010: the results of a learning pass say which scoring model's decisions they were
-- computed on (decision 007: a pass reads one model). A pass replaces the rows of its
-- as-of date and its model only, so `analyze --scoring-model B` no longer overwrites A's.
-- Rows stored before this migration take the model the daily cycle of their as-of date
-- judged, where one ran; otherwise they say 'unrecorded'.
ALTER TABLE pattern_performance   ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE failure_modes         ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE calibration_snapshots ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE feature_importance    ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE change_points         ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'unrecorded';

DO $$
DECLARE
    t text;
    r record;
BEGIN
    FOREACH t IN ARRAY ARRAY['pattern_performance', 'failure_modes', 'calibration_snapshots',
                             'feature_importance', 'change_points'] LOOP
        EXECUTE format(
            'UPDATE %I AS r SET scoring_model = c.model FROM (SELECT DISTINCT ON (as_of)'
            ' as_of, summary->>''scoring_model'' AS model FROM learning_cycles'
            ' WHERE kind = ''daily'' AND summary->>''scoring_model'' IS NOT NULL'
            ' ORDER BY as_of, ran_at DESC) AS c WHERE c.as_of = r.as_of', t);
        FOR r IN SELECT conname FROM pg_constraint
                 WHERE contype = 'u' AND conrelid = t::regclass LOOP
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t, r.conname);
        END LOOP;
    END LOOP;
END $$;

ALTER TABLE pattern_performance   ADD UNIQUE (scoring_model, pattern_signature, as_of);
ALTER TABLE failure_modes         ADD UNIQUE (scoring_model, as_of, kind, signature);
ALTER TABLE calibration_snapshots ADD UNIQUE (scoring_model, as_of, grouping, group_value);
ALTER TABLE feature_importance    ADD UNIQUE (scoring_model, as_of, feature, regime, method);
ALTER TABLE change_points         ADD UNIQUE (scoring_model, as_of, stream);
