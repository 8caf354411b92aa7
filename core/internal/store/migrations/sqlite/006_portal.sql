-- Tenant portal (docs/CONSOLE.md). An admin or publisher asks the API for
-- a one-time portal code for a user; portal_codes holds the SHA-256 of the
-- code, never the code, until it is redeemed once or expires_at (unix
-- microseconds) passes. capabilities is a comma-separated subset of read,
-- manage_hooks and redeliver; session_ttl_us is how long the portal
-- session the code is exchanged for lasts.
CREATE TABLE portal_codes (
    code_hash      TEXT PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    capabilities   TEXT NOT NULL,
    session_ttl_us BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX portal_codes_expires ON portal_codes (expires_at);
-- A redeemed code's session: like console_sessions, by the SHA-256 of the
-- id its cookie carries, but with no API token behind it (it ends at
-- expires_at, or with its user) and limited to its capabilities.
CREATE TABLE portal_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    capabilities TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);
