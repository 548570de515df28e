-- 008: the market-data bridge (`amc-learning prices sync`). Bars are stored as traded,
-- with the split that took effect at their session's open (the tracker adjusts per
-- decision). `price_sync` is the bridge's own ledger, one row per symbol and session it
-- published, found no bar for (a halt, a delisting) or was refused for what it is (a
-- symbol the provider does not know): a second sync asks again for none of them,
-- whatever the persist consumer has stored yet (`prices sync --again` asks for the last
-- two kinds again). `price_sync_runs` keeps each
-- run's summary for the report.
ALTER TABLE price_bars ADD COLUMN IF NOT EXISTS split_ratio DOUBLE PRECISION;

CREATE TABLE IF NOT EXISTS price_sync (
    symbol    TEXT        NOT NULL,
    session   DATE        NOT NULL,
    state     TEXT        NOT NULL CHECK (state IN ('published', 'no_bar', 'refused')),
    provider  TEXT        NOT NULL,
    reason    TEXT,
    noted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, session)
);

CREATE TABLE IF NOT EXISTS price_sync_runs (
    id           BIGSERIAL   PRIMARY KEY,
    provider     TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ NOT NULL,
    summary      JSONB       NOT NULL
);
