-- Contract v2 (docs/decisions/006): what real producers send. Optional in v2, so nullable:
-- a decision's confidence, a candidate's threshold and its six 0-1 components. New: which
-- scoring model and version scored a candidate or informed a decision (learning never
-- mixes models), the raw score on its declared scale, the producer's own decision label
-- and the size change it implies, a fill's broker order and account mode (only live fills
-- are P&L), and the exit reasons real systems use. The rest of v2 (components on their
-- scales, factor tiers, flags, attributes, what an adapter inferred) is in `detail`.
ALTER TABLE learning_decisions ALTER COLUMN confidence_score DROP NOT NULL;
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS label TEXT;
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS size_change_pct DOUBLE PRECISION;
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS scoring_model TEXT;
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS scoring_version TEXT;

ALTER TABLE discovery_candidates ALTER COLUMN threshold DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_volume_momentum DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_squeeze DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_catalyst DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_options DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_technical DROP NOT NULL;
ALTER TABLE discovery_candidates ALTER COLUMN score_sentiment DROP NOT NULL;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS scoring_model TEXT;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS scoring_version TEXT;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS raw_score DOUBLE PRECISION;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS raw_low DOUBLE PRECISION;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS raw_high DOUBLE PRECISION;
ALTER TABLE discovery_candidates ADD COLUMN IF NOT EXISTS detail JSONB NOT NULL DEFAULT '{}';

ALTER TABLE learning_trades ADD COLUMN IF NOT EXISTS order_id TEXT;
ALTER TABLE learning_trades ADD COLUMN IF NOT EXISTS mode TEXT NOT NULL DEFAULT 'live'
    CHECK (mode IN ('live', 'paper', 'shadow'));
ALTER TABLE learning_trades DROP CONSTRAINT IF EXISTS learning_trades_exit_reason_check;
ALTER TABLE learning_trades ADD CONSTRAINT learning_trades_exit_reason_check CHECK (exit_reason
    IN ('stop_loss', 'profit_target', 'manual', 'time', 'trailing_stop', 'partial_profit'));
ALTER TABLE learning_outcomes DROP CONSTRAINT IF EXISTS learning_outcomes_exit_reason_check;
ALTER TABLE learning_outcomes ADD CONSTRAINT learning_outcomes_exit_reason_check CHECK (
    exit_reason IN ('stop_loss', 'profit_target', 'manual', 'time', 'trailing_stop',
                    'partial_profit'));
