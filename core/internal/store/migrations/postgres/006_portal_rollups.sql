-- Tenant portal (docs/CONSOLE.md). An admin or publisher asks the API for
-- a one-time portal code for a user; portal_codes holds the SHA-256 of the
-- code, never the code, until it is redeemed once or expires_at (unix
-- microseconds) passes. capabilities is a comma-separated subset of read,
-- manage_hooks and redeliver; session_ttl_us is how long the portal
-- session the code is exchanged for lasts.
CREATE TABLE portal_codes (
    code_hash      TEXT PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
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
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    capabilities TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);
-- Per-minute delivery rollups for the console's overview (docs/CONSOLE.md),
-- added to as results are recorded so that the charts never scan
-- webhook_events. minute is unix seconds / 60; attempts counts requests
-- sent, delivered, failed (a failed attempt, retry pending) and given_up
-- the states the results left their events in. Rows older than two days
-- are deleted as new minutes begin.
CREATE TABLE delivery_rollups (
    user_id   BIGINT NOT NULL,
    minute    BIGINT NOT NULL,
    attempts  BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    failed    BIGINT NOT NULL,
    given_up  BIGINT NOT NULL,
    PRIMARY KEY (user_id, minute)
);
CREATE INDEX delivery_rollups_minute ON delivery_rollups (minute);
