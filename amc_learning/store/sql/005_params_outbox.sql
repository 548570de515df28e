-- The params history doubles as the outbox of the params topic. A cycle records its rows
-- and the exact message of each published one (unsigned; signed when sent) in one
-- transaction, then sends them and stamps `sent_at`. A cycle interrupted in between
-- leaves rows with `sent_at` NULL, which the next cycle sends first, byte for byte: a
-- version is on the topic only as it was recorded, never half of a cycle's changes.
ALTER TABLE params_history ADD COLUMN IF NOT EXISTS message JSONB;
ALTER TABLE params_history ADD COLUMN IF NOT EXISTS sent_at TIMESTAMPTZ;
UPDATE params_history SET sent_at = recorded_at WHERE published AND sent_at IS NULL;
CREATE INDEX IF NOT EXISTS params_history_unsent ON params_history (name, recorded_at)
    WHERE published AND sent_at IS NULL;
