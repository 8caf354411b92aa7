-- A claim's lease gets its own column (see docs/RELIABILITY.md, "The
-- queue's state machine"). Before, a claim moved next_attempt_at to the
-- lease's end: every claim wrote a new entry in all seven indexes (the due
-- index's key changed), and the old entry stayed in the claim's scan range
-- until VACUUM. Now a claim sets lease_owner and lease_until only — columns
-- no index holds — so with free room on the page (fillfactor) it is a HOT
-- update that touches no index at all. A row is leased while lease_until
-- is in the future; next_attempt_at stays its due time.
ALTER TABLE webhook_events ADD COLUMN lease_until BIGINT;
-- Rows leased by the previous release: their lease ends at next_attempt_at.
UPDATE webhook_events SET lease_until = next_attempt_at WHERE state = 'pending' AND lease_owner IS NOT NULL;
-- Room on each page for a claim's new row version (new pages only: the
-- setting rewrites nothing).
ALTER TABLE webhook_events SET (fillfactor = 80);
