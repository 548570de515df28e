-- 011: one param set per scoring model (`schemas.params.param_set`): the engine's own
-- six-weight set keeps its name ('default'), a producer's tiered model publishes its
-- points table under "name:version". Each history row says the model it is for; rows
-- recorded before this migration are the engine's own ('native') unless they hold a
-- table, which names its model.
ALTER TABLE params_history ADD COLUMN scoring_model TEXT NOT NULL DEFAULT 'native';
UPDATE params_history
   SET scoring_model = (params->'model'->>'name') || ' ' || (params->'model'->>'version')
 WHERE params->>'kind' = 'tiered';
ALTER TABLE params_history ALTER COLUMN scoring_model DROP DEFAULT;
CREATE INDEX params_history_unsent_all ON params_history (recorded_at)
    WHERE published AND sent_at IS NULL;
-- a tiered model's learning frame: the candidates it scored
CREATE INDEX discovery_candidates_model ON discovery_candidates (scoring_model, scoring_version);
