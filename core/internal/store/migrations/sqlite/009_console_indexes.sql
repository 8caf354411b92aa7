-- Access paths for the console's and the API's event lists on a big table
-- (docs/BENCHMARKS.md, "Console pages on a million events"). Without them a
-- user's list filtered by an event type they have few events of, or by a
-- time range in the past, walked the user's whole history newest first.
-- SQLite builds each in the migration's transaction (writes wait).
CREATE INDEX IF NOT EXISTS webhook_events_user_type ON webhook_events (user_id, event_type, id);
CREATE INDEX IF NOT EXISTS webhook_events_user_created ON webhook_events (user_id, created_at);
-- The failed events (given up, or waiting for a retry after a failure) by
-- creation time, for the range redelivery's count and batches. Partial:
-- a publish or a delivery that succeeds at once never writes an entry.
CREATE INDEX IF NOT EXISTS webhook_events_failed ON webhook_events (created_at)
    WHERE state = 'given_up' OR (state = 'pending' AND retry_count > retry_base);
-- The queue's lag, sampled once a minute by every node (the largest
-- sample wins), in the rollup row of user 0: the overview's lag history.
ALTER TABLE delivery_rollups ADD COLUMN queue_lag_us BIGINT;
