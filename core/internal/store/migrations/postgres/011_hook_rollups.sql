-- Per-hour delivery rollups per hook, for the success ratio the console's
-- hooks list shows (docs/CONSOLE.md): added to as results are recorded,
-- so the list reads at most a day of hours per hook on its page, never
-- webhook_events. hour is unix seconds / 3600; attempts counts requests
-- sent, delivered those that succeeded. Rows older than two days are
-- deleted as new hours begin.
CREATE TABLE hook_rollups (
    webhook_id BIGINT NOT NULL,
    hour       BIGINT NOT NULL,
    attempts   BIGINT NOT NULL,
    delivered  BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, hour)
);
CREATE INDEX hook_rollups_hour ON hook_rollups (hour);
