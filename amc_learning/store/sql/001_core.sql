-- 001: the seed's three core tables, every ingested event family, and dead letters.
-- Every ingested row carries the envelope's unique event_id: ingest is idempotent.

-- Decisions of the thesis service (seed: learning_decisions, columns kept).
CREATE TABLE learning_decisions (
    id                    BIGSERIAL PRIMARY KEY,
    event_id              UUID        NOT NULL UNIQUE,
    decision_id           TEXT        NOT NULL UNIQUE,          -- producer's idempotency key
    symbol                TEXT        NOT NULL,
    decision_type         TEXT        NOT NULL CHECK (decision_type IN ('BUY', 'SELL', 'HOLD', 'IGNORE')),
    recommendation_source TEXT        NOT NULL CHECK (recommendation_source IN ('discovery', 'thesis', 'manual')),
    confidence_score      DOUBLE PRECISION NOT NULL CHECK (confidence_score BETWEEN 0 AND 1),
    price_at_decision     DOUBLE PRECISION NOT NULL CHECK (price_at_decision > 0),   -- entry price
    position_size_pct     DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (position_size_pct BETWEEN 0 AND 100),
    market_time           TEXT        NOT NULL,                  -- premarket | regular | afterhours
    reasoning             TEXT        NOT NULL DEFAULT '',
    discovery_run_id      TEXT,
    discovery_timestamp   TIMESTAMPTZ,
    discovery_scores      JSONB,                                 -- the six components at discovery
    discovery_features    JSONB       NOT NULL DEFAULT '{}',     -- full feature snapshot
    thesis_data           JSONB       NOT NULL DEFAULT '{}',     -- expectation: direction, target, catalyst, volume
    market_conditions     JSONB       NOT NULL DEFAULT '{}',     -- vix, sector, regime
    decision_data         JSONB       NOT NULL DEFAULT '{}',     -- the whole event as received
    decided_at            TIMESTAMPTZ NOT NULL,
    producer              TEXT        NOT NULL,
    schema_version        INTEGER     NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learning_decisions_symbol_time ON learning_decisions (symbol, decided_at);
CREATE INDEX learning_decisions_time ON learning_decisions (decided_at);
CREATE INDEX learning_decisions_type_time ON learning_decisions (decision_type, decided_at);

-- What the market did after each decision; one row per decision, updated as horizons mature.
CREATE TABLE learning_outcomes (
    id                      BIGSERIAL PRIMARY KEY,
    decision_id             BIGINT      NOT NULL UNIQUE REFERENCES learning_decisions (id),
    symbol                  TEXT        NOT NULL,
    outcome_type            TEXT        NOT NULL DEFAULT 'open',  -- open | matured | closed
    is_counterfactual       BOOLEAN     NOT NULL DEFAULT false,   -- IGNORE/HOLD/never decided
    price_at_outcome        DOUBLE PRECISION,
    return_pct              DOUBLE PRECISION,
    days_held               INTEGER,
    market_conditions       JSONB       NOT NULL DEFAULT '{}',
    return_1d               DOUBLE PRECISION,
    return_7d               DOUBLE PRECISION,
    return_30d              DOUBLE PRECISION,
    max_favorable_excursion DOUBLE PRECISION,
    max_adverse_excursion   DOUBLE PRECISION,
    volatility_realized     DOUBLE PRECISION,
    position_closed         BOOLEAN     NOT NULL DEFAULT false,
    exit_price              DOUBLE PRECISION,
    exit_reason             TEXT CHECK (exit_reason IN ('stop_loss', 'profit_target', 'manual', 'time')),
    catalyst_materialized   BOOLEAN,
    volume_pattern_accuracy DOUBLE PRECISION,
    thesis_accuracy_score   DOUBLE PRECISION,
    sessions_elapsed        INTEGER     NOT NULL DEFAULT 0,       -- newer updates supersede older
    last_event_id           UUID,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learning_outcomes_symbol ON learning_outcomes (symbol);
CREATE INDEX learning_outcomes_updated ON learning_outcomes (updated_at);

-- Performance of each pattern signature as of a learning cycle.
CREATE TABLE pattern_performance (
    id                    BIGSERIAL PRIMARY KEY,
    pattern_signature     TEXT        NOT NULL,
    pattern_type          TEXT        NOT NULL,                  -- discovery | thesis | failure_mode
    decision_type         TEXT,
    regime                TEXT,
    as_of                 DATE        NOT NULL,
    sample_size           INTEGER     NOT NULL,
    win_count             INTEGER     NOT NULL,
    success_rate          DOUBLE PRECISION,
    win_rate_ci_low       DOUBLE PRECISION,
    win_rate_ci_high      DOUBLE PRECISION,
    shrunk_win_rate       DOUBLE PRECISION,
    avg_return            DOUBLE PRECISION,
    median_return         DOUBLE PRECISION,
    expectancy            DOUBLE PRECISION,
    profit_factor         DOUBLE PRECISION,
    avg_holding_period    DOUBLE PRECISION,
    max_return            DOUBLE PRECISION,
    max_adverse_excursion DOUBLE PRECISION,
    p_value               DOUBLE PRECISION,
    q_value               DOUBLE PRECISION,
    is_failure_mode       BOOLEAN     NOT NULL DEFAULT false,
    definition            JSONB       NOT NULL DEFAULT '{}',     -- bins and features of the signature
    last_updated          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (pattern_signature, as_of)
);
CREATE INDEX pattern_performance_as_of ON pattern_performance (as_of);

-- Every scored candidate of every discovery run, acted on or not (no survivorship bias).
CREATE TABLE discovery_candidates (
    id                    BIGSERIAL PRIMARY KEY,
    event_id              UUID        NOT NULL UNIQUE,
    run_id                TEXT        NOT NULL,
    symbol                TEXT        NOT NULL,
    rank                  INTEGER     NOT NULL,
    composite_score       DOUBLE PRECISION NOT NULL,
    threshold             DOUBLE PRECISION NOT NULL,
    passed                BOOLEAN     NOT NULL,
    score_volume_momentum DOUBLE PRECISION NOT NULL,
    score_squeeze         DOUBLE PRECISION NOT NULL,
    score_catalyst        DOUBLE PRECISION NOT NULL,
    score_options         DOUBLE PRECISION NOT NULL,
    score_technical       DOUBLE PRECISION NOT NULL,
    score_sentiment       DOUBLE PRECISION NOT NULL,
    features              JSONB       NOT NULL DEFAULT '{}',
    price                 DOUBLE PRECISION NOT NULL,
    discovered_at         TIMESTAMPTZ NOT NULL,
    producer              TEXT        NOT NULL,
    schema_version        INTEGER     NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, symbol)
);
CREATE INDEX discovery_candidates_symbol_time ON discovery_candidates (symbol, discovered_at);
CREATE INDEX discovery_candidates_time ON discovery_candidates (discovered_at);

-- Fills from trade execution.
CREATE TABLE learning_trades (
    id                BIGSERIAL PRIMARY KEY,
    event_id          UUID        NOT NULL UNIQUE,
    fill_id           TEXT        NOT NULL UNIQUE,
    trade_id          TEXT        NOT NULL,
    decision_id       TEXT,
    symbol            TEXT        NOT NULL,
    fill_type         TEXT        NOT NULL CHECK (fill_type IN ('ENTRY', 'PARTIAL_EXIT', 'EXIT')),
    side              TEXT        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity          DOUBLE PRECISION NOT NULL,
    price             DOUBLE PRECISION NOT NULL,
    position_size_pct DOUBLE PRECISION NOT NULL,
    exit_reason       TEXT CHECK (exit_reason IN ('stop_loss', 'profit_target', 'manual', 'time')),
    executed_at       TIMESTAMPTZ NOT NULL,
    producer          TEXT        NOT NULL,
    schema_version    INTEGER     NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learning_trades_symbol_time ON learning_trades (symbol, executed_at);
CREATE INDEX learning_trades_decision ON learning_trades (decision_id);
CREATE INDEX learning_trades_trade ON learning_trades (trade_id);

-- Daily bars of symbols and indices (regimes, outcomes, the report's index chart).
CREATE TABLE price_bars (
    id             BIGSERIAL PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    symbol         TEXT        NOT NULL,
    session        DATE        NOT NULL,
    open           DOUBLE PRECISION NOT NULL,
    high           DOUBLE PRECISION NOT NULL,
    low            DOUBLE PRECISION NOT NULL,
    close          DOUBLE PRECISION NOT NULL,
    volume         DOUBLE PRECISION NOT NULL,
    producer       TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (symbol, session)
);
CREATE INDEX price_bars_session ON price_bars (session);

-- Input no consumer could accept: written in the same transaction as the batch it came with.
CREATE TABLE dead_letters (
    id               BIGSERIAL PRIMARY KEY,
    consumer         TEXT        NOT NULL,
    source_topic     TEXT        NOT NULL,
    source_partition INTEGER     NOT NULL,
    source_offset    BIGINT      NOT NULL,
    reason           TEXT        NOT NULL,
    error            TEXT        NOT NULL,
    raw              BYTEA       NOT NULL,
    raw_size         INTEGER     NOT NULL,
    raw_truncated    BOOLEAN     NOT NULL,
    raw_sha256       BYTEA       NOT NULL,   -- offsets alone repeat on a memory-only broker
    failed_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (consumer, source_topic, source_partition, source_offset, raw_sha256)
);
CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);
