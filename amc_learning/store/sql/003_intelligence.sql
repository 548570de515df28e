-- 003: results of the learning passes. Every row carries the as-of date of its pass and
-- the window of sessions the pass saw, so it says what it was computed on; a pass rerun
-- on the same inputs replaces its rows with identical ones.

ALTER TABLE pattern_performance
    ADD COLUMN window_start DATE,
    ADD COLUMN window_end   DATE,
    ADD COLUMN excess_t     DOUBLE PRECISION;    -- Newey–West t of the excess over peers

CREATE TABLE failure_modes (
    id           BIGSERIAL PRIMARY KEY,
    as_of        DATE    NOT NULL,
    window_start DATE    NOT NULL,
    window_end   DATE    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('systematic_loser', 'overconfidence',
                                                  'regime_mismatch')),
    signature    TEXT    NOT NULL,
    sample_size  INTEGER NOT NULL,
    detail       TEXT    NOT NULL,
    UNIQUE (as_of, kind, signature)
);

-- A calibration map per grouping (decision_source, regime) and group, as of a pass.
CREATE TABLE calibration_snapshots (
    id           BIGSERIAL PRIMARY KEY,
    as_of        DATE    NOT NULL,
    window_start DATE    NOT NULL,
    window_end   DATE    NOT NULL,
    grouping     TEXT    NOT NULL,
    group_value  TEXT    NOT NULL,
    method       TEXT    NOT NULL,            -- isotonic | platt | constant | identity
    sample_size  INTEGER NOT NULL,
    brier_raw    DOUBLE PRECISION,
    ece_raw      DOUBLE PRECISION,
    knots        JSONB   NOT NULL,            -- [[confidence, probability], ...], monotone
    UNIQUE (as_of, grouping, group_value)
);

-- Feature effectiveness per regime: rank IC (method 'ic') and walk-forward permutation
-- importance (method 'permutation').
CREATE TABLE feature_importance (
    id           BIGSERIAL PRIMARY KEY,
    as_of        DATE    NOT NULL,
    window_start DATE    NOT NULL,
    window_end   DATE    NOT NULL,
    feature      TEXT    NOT NULL,
    regime       TEXT    NOT NULL,
    method       TEXT    NOT NULL CHECK (method IN ('ic', 'permutation')),
    value        DOUBLE PRECISION,            -- mean IC, or mean importance (R² lost)
    t_stat       DOUBLE PRECISION,            -- Newey–West t of the mean IC
    ir           DOUBLE PRECISION,
    sessions     INTEGER,
    UNIQUE (as_of, feature, regime, method)
);

-- The causal label of each session: it never changes once written.
CREATE TABLE regime_history (
    session      DATE PRIMARY KEY,
    trend        TEXT,
    volatility   TEXT,
    regime       TEXT,
    labelled_as_of DATE NOT NULL
);

-- CUSUM on the strategy's daily streams (mean return, hit rate): the first alarm, if any.
CREATE TABLE change_points (
    id             BIGSERIAL PRIMARY KEY,
    as_of          DATE    NOT NULL,
    window_start   DATE    NOT NULL,
    window_end     DATE    NOT NULL,
    stream         TEXT    NOT NULL,
    every_sessions INTEGER NOT NULL,
    threshold      DOUBLE PRECISION NOT NULL,   -- calibrated to the configured false-alarm rate
    alarm_session  DATE,                        -- null: no alarm in the window
    UNIQUE (as_of, stream)
);
