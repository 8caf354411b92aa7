-- Web console sessions (docs/CONSOLE.md). A session is made by signing in
-- with an API token and lives until expires_at (unix microseconds), until
-- sign-out deletes it, or until its token is revoked: every read joins the
-- token and requires revoked_at IS NULL. id_hash is the SHA-256 of the
-- session id the cookie carries; the id itself is never stored. csrf is the
-- session's synchronizer token for state-changing forms.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_id, created_at);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
