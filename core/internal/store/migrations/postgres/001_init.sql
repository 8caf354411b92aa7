-- Whisperer schema v1 (PostgreSQL). Queue times (next_attempt_at) are unix
-- microseconds so the due-events claim compares integers on an index.
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL DEFAULT 'user',
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE event_types (
    name       TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhooks (
    id                     BIGSERIAL PRIMARY KEY,
    user_id                BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_url             TEXT NOT NULL,
    event_type             TEXT NOT NULL,
    secret_key             TEXT NOT NULL DEFAULT '',
    is_active              BOOLEAN NOT NULL DEFAULT TRUE,
    callback               TEXT NOT NULL DEFAULT '',
    retry_countdown_config TEXT NOT NULL,
    additional_headers     TEXT NOT NULL DEFAULT '{}',
    config                 TEXT NOT NULL DEFAULT '{}',
    created_at             TIMESTAMPTZ NOT NULL,
    modified_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, target_url, event_type)
);
CREATE INDEX webhooks_fanout ON webhooks (event_type, is_active);

CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    publisher_id    BIGINT,
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency ON messages (publisher_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE webhook_events (
    id                   BIGSERIAL PRIMARY KEY,
    uuid                 TEXT NOT NULL UNIQUE,
    message_id           BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    webhook_id           BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    user_id              BIGINT NOT NULL,
    event_type           TEXT NOT NULL,
    state                TEXT NOT NULL,
    delivered            BOOLEAN NOT NULL DEFAULT FALSE,
    retry_count          INTEGER NOT NULL DEFAULT 0,
    retry_base           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      BIGINT NOT NULL,
    lease_owner          TEXT,
    response_http_status INTEGER,
    response_content     TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL,
    modified_at          TIMESTAMPTZ NOT NULL
);
-- The claim reads only this partial index: O(batch) however many delivered
-- or future rows the table holds.
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_events_user ON webhook_events (user_id, id);
CREATE INDEX webhook_events_webhook ON webhook_events (webhook_id, id);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE delivery_attempts (
    id           BIGSERIAL PRIMARY KEY,
    event_id     BIGINT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    attempted_at TIMESTAMPTZ NOT NULL,
    duration_us  BIGINT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    body         TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
