-- Retention deletes messages no event references any more; this index
-- makes that check, and the foreign key's cascade from messages, an index
-- lookup instead of a scan of webhook_events.
CREATE INDEX webhook_events_message ON webhook_events (message_id);
