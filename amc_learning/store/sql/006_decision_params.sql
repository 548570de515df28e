-- Which params version the trading engine decided under (ThesisDecided.params_version and
-- params_mode, optional): the learner can then attribute realised P&L to each version.
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS params_version INTEGER;
ALTER TABLE learning_decisions ADD COLUMN IF NOT EXISTS params_mode TEXT;
