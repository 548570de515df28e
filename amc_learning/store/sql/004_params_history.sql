-- Every parameter version the learner issued and every change of its mode, with provenance.
-- One row per (name, version, mode): shadow -> canary -> live, or rejected, rolled_back,
-- superseded. `published` says whether the row went out on learning.params.v1 (rejections
-- and supersessions are records only; a rollback publishes a new version restoring the
-- parent, whose provenance names both).
CREATE TABLE IF NOT EXISTS params_history (
    name            TEXT        NOT NULL,
    version         INTEGER     NOT NULL CHECK (version >= 1),
    mode            TEXT        NOT NULL CHECK (mode IN ('shadow', 'canary', 'live', 'rejected',
                                                         'rolled_back', 'superseded')),
    canary_pct      DOUBLE PRECISION NOT NULL DEFAULT 0,
    as_of           DATE        NOT NULL,   -- the session of the cycle that made the change
    parent_version  INTEGER,                -- the live version it was fitted against (NULL = fallback)
    params          JSONB       NOT NULL,
    provenance      JSONB       NOT NULL,   -- data window, sample sizes, fit evidence
    evidence        JSONB       NOT NULL DEFAULT '{}',  -- why the mode changed
    published       BOOLEAN     NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version, mode)
);

-- One row per learning cycle run: a rerun for the same as-of date does nothing.
CREATE TABLE IF NOT EXISTS learning_cycles (
    kind     TEXT        NOT NULL CHECK (kind IN ('daily', 'weekly')),
    as_of    DATE        NOT NULL,
    name     TEXT        NOT NULL,
    summary  JSONB       NOT NULL,
    ran_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, as_of, name)
);
