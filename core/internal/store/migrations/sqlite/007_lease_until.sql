-- A claim's lease gets its own column (see docs/RELIABILITY.md, "The
-- queue's state machine"): a claim sets lease_owner and lease_until, which
-- no index holds, instead of moving next_attempt_at (the due index's key)
-- to the lease's end, so it writes no index entry. A row is leased while
-- lease_until is in the future; next_attempt_at stays its due time.
ALTER TABLE webhook_events ADD COLUMN lease_until INTEGER;
-- Rows leased by the previous release: their lease ends at next_attempt_at.
UPDATE webhook_events SET lease_until = next_attempt_at WHERE state = 'pending' AND lease_owner IS NOT NULL;
