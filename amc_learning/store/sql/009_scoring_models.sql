-- 009: scoring models as their producers declare them (`amc-learning models register`):
-- one declaration per model name and version, never changed once registered (a changed
-- scanner is a new version). The engine's shipped declarations need no row.
CREATE TABLE IF NOT EXISTS scoring_models (
    name          TEXT        NOT NULL,
    version       TEXT        NOT NULL,
    kind          TEXT        NOT NULL CHECK (kind IN ('tiered', 'component')),
    declaration   JSONB       NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
