-- 002: outcome tracking. Candidates never decided on become synthetic IGNORE decisions,
-- outcomes carry a revision (newest wins), catalysts are stored, and outcomes that arrive
-- before their decision row wait in a backlog instead of being lost.

ALTER TABLE learning_decisions
    ADD COLUMN is_synthetic BOOLEAN NOT NULL DEFAULT false;   -- a candidate below the threshold
CREATE INDEX learning_decisions_synthetic ON learning_decisions (is_synthetic, decided_at);

ALTER TABLE learning_outcomes
    ADD COLUMN revision     INTEGER NOT NULL DEFAULT 0,       -- facts counted; the highest wins
    ADD COLUMN tracked_from TEXT    NOT NULL DEFAULT 'decision'
        CHECK (tracked_from IN ('decision', 'candidate')),
    ADD CONSTRAINT learning_outcomes_type CHECK (outcome_type IN ('open', 'matured', 'closed'));
CREATE INDEX learning_outcomes_type ON learning_outcomes (outcome_type);

-- Outcomes whose decision row is not stored yet (the two arrive on different topics).
CREATE TABLE outcome_backlog (
    decision_key            TEXT        PRIMARY KEY,         -- learning_decisions.decision_id
    symbol                  TEXT        NOT NULL,
    outcome_type            TEXT        NOT NULL,
    is_counterfactual       BOOLEAN     NOT NULL,
    tracked_from            TEXT        NOT NULL,
    price_at_outcome        DOUBLE PRECISION,
    return_pct              DOUBLE PRECISION,
    days_held               INTEGER,
    return_1d               DOUBLE PRECISION,
    return_7d               DOUBLE PRECISION,
    return_30d              DOUBLE PRECISION,
    max_favorable_excursion DOUBLE PRECISION,
    max_adverse_excursion   DOUBLE PRECISION,
    volatility_realized     DOUBLE PRECISION,
    position_closed         BOOLEAN     NOT NULL,
    exit_price              DOUBLE PRECISION,
    exit_reason             TEXT,
    catalyst_materialized   BOOLEAN,
    volume_pattern_accuracy DOUBLE PRECISION,
    thesis_accuracy_score   DOUBLE PRECISION,
    sessions_elapsed        INTEGER     NOT NULL,
    revision                INTEGER     NOT NULL,
    last_event_id           UUID        NOT NULL,
    received_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Catalysts observed by the market-data side (earnings, FDA decisions, ...).
CREATE TABLE catalyst_events (
    id             BIGSERIAL PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    symbol         TEXT        NOT NULL,
    session        DATE        NOT NULL,
    kind           TEXT        NOT NULL,
    headline       TEXT        NOT NULL DEFAULT '',
    magnitude      DOUBLE PRECISION NOT NULL DEFAULT 0,
    observed_at    TIMESTAMPTZ NOT NULL,
    producer       TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX catalyst_events_symbol_session ON catalyst_events (symbol, session);
