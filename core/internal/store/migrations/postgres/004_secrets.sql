-- Secrets at rest (see docs/SECRETS.md). secret_key, previous_secret_key,
-- additional_headers and config.auth.password are sealed with AES-256-GCM
-- under the key whose id is secrets_key_id; '' marks a row written before
-- encryption, still in clear, which the server seals at start. Keys are
-- never stored in the database. previous_secret_key keeps signing (next to
-- secret_key) until previous_secret_until, after a rotation.
ALTER TABLE webhooks ADD COLUMN secrets_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN previous_secret_key TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN previous_secret_until TIMESTAMPTZ;
-- Adding columns with constant defaults rewrites no rows: the migration
-- takes its lock only for an instant.
