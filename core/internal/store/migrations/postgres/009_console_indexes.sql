-- Access paths for the console's and the API's event lists on a big table
-- (docs/BENCHMARKS.md, "Console pages on a million events"). Without them a
-- user's list filtered by an event type they have few events of, or by a
-- time range in the past, walked the user's whole history newest first.
-- All three key columns never change after the insert, so a claim stays a
-- HOT update.
--
-- IF NOT EXISTS: on a big PostgreSQL table, an operator may build these
-- beforehand with CREATE INDEX CONCURRENTLY (docs/DEPLOYING.md,
-- "Upgrading"), which does not block publishing; this migration then finds
-- them and only records its version. Built here, in the migration's
-- transaction, each blocks writes to webhook_events while it is built.
CREATE INDEX IF NOT EXISTS webhook_events_user_type ON webhook_events (user_id, event_type, id);
CREATE INDEX IF NOT EXISTS webhook_events_user_created ON webhook_events (user_id, created_at);
-- Which event types each user has events of: without it the planner takes
-- user_id and event_type for independent, expects a quarter of the table
-- to match a user who has none of a type, and walks the primary key
-- newest first (a million rows) rather than webhook_events_user_type.
-- ANALYZE reads a sample (30,000 rows), not the table.
CREATE STATISTICS IF NOT EXISTS webhook_events_user_type_mcv (mcv) ON user_id, event_type FROM webhook_events;
ANALYZE webhook_events;
-- The failed events (given up, or waiting for a retry after a failure) by
-- creation time, for the range redelivery's count and batches. Partial:
-- a publish or a delivery that succeeds at once never writes an entry.
-- lease_owner, which a claim sets, is not in it, so a claim stays HOT.
CREATE INDEX IF NOT EXISTS webhook_events_failed ON webhook_events (created_at)
    WHERE state = 'given_up' OR (state = 'pending' AND retry_count > retry_base);
-- The queue's lag, sampled once a minute by every node (the largest
-- sample wins), in the rollup row of user 0: the overview's lag history.
ALTER TABLE delivery_rollups ADD COLUMN queue_lag_us BIGINT;
