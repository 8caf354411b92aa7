-- Endpoint health (see docs/ENDPOINT_HEALTH.md). failing_since is the time
-- of the first failed attempt since the hook's last success (NULL while
-- healthy); a hook failing for delivery.disable_after, or answering 410
-- Gone, is deactivated with disabled_reason and disabled_at set.
ALTER TABLE webhooks ADD COLUMN failing_since TIMESTAMP;
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_at TIMESTAMP;
