-- The tables a Django project using dj-whisperer 0.2.x has on PostgreSQL,
-- as Django's migrations create them: django.contrib.contenttypes and
-- django.contrib.auth (auth_user), rest_framework.authtoken
-- (authtoken_token) and whisperer 0001-0006, whose end state is
-- whisperer/models.py's Webhook and WebhookEvent (StarterModel's
-- created_date and modified_date, django.contrib.postgres JSONField as
-- jsonb, ArrayField of DateTimeField as timestamptz[]). Only the columns
-- and constraints are reproduced; Django's index names are not needed.
-- Loaded into a schema of its own by the tests (no schema is named here).

CREATE TABLE django_content_type (
    id        serial PRIMARY KEY,
    app_label varchar(100) NOT NULL,
    model     varchar(100) NOT NULL,
    UNIQUE (app_label, model)
);

CREATE TABLE auth_user (
    id           serial PRIMARY KEY,
    password     varchar(128) NOT NULL,
    last_login   timestamptz NULL,
    is_superuser boolean NOT NULL,
    username     varchar(150) NOT NULL UNIQUE,
    first_name   varchar(30) NOT NULL,
    last_name    varchar(150) NOT NULL,
    email        varchar(254) NOT NULL,
    is_staff     boolean NOT NULL,
    is_active    boolean NOT NULL,
    date_joined  timestamptz NOT NULL
);

-- Django REST framework's TokenAuthentication: one 40-hex-digit key per user.
CREATE TABLE authtoken_token (
    key     varchar(40) PRIMARY KEY,
    created timestamptz NOT NULL,
    user_id integer NOT NULL UNIQUE REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE whisperer_webhook (
    id                     serial PRIMARY KEY,
    created_date           timestamptz NOT NULL,
    modified_date          timestamptz NOT NULL,
    target_url             varchar(255) NOT NULL,
    is_active              boolean NOT NULL,
    secret_key             varchar(124) NULL,
    event_type             varchar(124) NOT NULL,
    callback               varchar(64) NULL,
    retry_countdown_config jsonb NOT NULL,
    additional_headers     jsonb NOT NULL,
    config                 jsonb NOT NULL,
    user_id                integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (user_id, target_url, event_type)
);
CREATE INDEX whisperer_webhook_modified_date ON whisperer_webhook (modified_date);
CREATE INDEX whisperer_webhook_user_id ON whisperer_webhook (user_id);

CREATE TABLE whisperer_webhookevent (
    id                   serial PRIMARY KEY,
    created_date         timestamptz NOT NULL,
    modified_date        timestamptz NOT NULL,
    uuid                 uuid NOT NULL UNIQUE,
    request_payload      jsonb NOT NULL,
    response_content     text NOT NULL,
    response_http_status integer NOT NULL,
    delivered            boolean NOT NULL,
    request_datetimes    timestamptz[] NOT NULL,
    retry_count          integer NULL CHECK (retry_count >= 0),
    object_id            integer NULL CHECK (object_id >= 0),
    content_type_id      integer NULL REFERENCES django_content_type (id) DEFERRABLE INITIALLY DEFERRED,
    webhook_id           integer NOT NULL REFERENCES whisperer_webhook (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX whisperer_webhookevent_modified_date ON whisperer_webhookevent (modified_date);
CREATE INDEX whisperer_webhookevent_webhook_id ON whisperer_webhookevent (webhook_id);
