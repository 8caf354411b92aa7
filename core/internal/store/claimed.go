package store

import (
	"database/sql"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A claimed job is read in one row on both backends, with database/sql
// rather than bun (bun spells the values into the SQL text): its event's
// columns (eventColumns), its hook's (jobHookColumns) and its payload, in
// jobColumns' order, which scanJobs reads.

// jobHookColumns are the hook's columns a delivery needs, in
// jobTargets' order (its filter was applied at publish).
const jobHookColumns = "id, user_id, target_url, event_type, secret_key, is_active, callback, retry_countdown_config, additional_headers, config, created_at, modified_at, failing_since, disabled_reason, disabled_at, secrets_key_id, previous_secret_key, previous_secret_until, transform"

// jobColumns is the select list of a claimed job: event is the alias of
// the event's row, w the hook's and m the message's.
func jobColumns(event string) string {
	return qualify(event, eventColumns) + ", " + qualify("w", jobHookColumns) + ", m.payload"
}

// qualify prefixes each of the comma-separated columns with alias.
func qualify(alias, columns string) string {
	return alias + "." + strings.ReplaceAll(columns, ", ", ", "+alias+".")
}

// jobTargets are the scan destinations of jobColumns.
func jobTargets(e *eventRow, w *webhookRow, payload *string) []any {
	t := []any{&e.ID, &e.UUID, &e.MessageID, &e.WebhookID, &e.UserID, &e.EventType, &e.State, &e.Delivered,
		&e.RetryCount, &e.RetryBase, &e.NextAttemptAt, &e.LeaseOwner, &e.LeaseUntil, &e.ResponseHTTPStatus,
		&e.ResponseContent, &e.CreatedAt, &e.ModifiedAt}
	return append(append(t, hookTargets(w)...), payload)
}

// hookTargets are the scan destinations of jobHookColumns (a publish
// that leases its rows reads them too).
func hookTargets(w *webhookRow) []any {
	return []any{&w.ID, &w.UserID, &w.TargetURL, &w.EventType, &w.SecretKey, &w.IsActive, &w.Callback,
		&w.RetryCountdown, &w.AdditionalHeaders, &w.Config, &w.CreatedAt, &w.ModifiedAt,
		&w.FailingSince, &w.DisabledReason, &w.DisabledAt, &w.SecretsKeyID, &w.PreviousSecretKey,
		&w.PreviousSecretUntil, &w.Transform}
}

// scanJobs reads the jobs of rows (jobColumns), opening the hooks'
// secrets with sl, and closes rows.
func scanJobs(rows *sql.Rows, sl Sealer) ([]webhook.Job, error) {
	defer rows.Close()
	var jobs []webhook.Job
	hooks := hookCache{}
	for rows.Next() {
		job, err := scanJob(rows, hooks, sl)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, rows.Err()
}

// scanJob reads the row rows is at (jobColumns): *sql.Rows or pgx.Rows.
func scanJob(rows interface{ Scan(...any) error }, hooks hookCache, sl Sealer) (webhook.Job, error) {
	var e eventRow
	var w webhookRow
	var payload string
	if err := rows.Scan(jobTargets(&e, &w, &payload)...); err != nil {
		return webhook.Job{}, err
	}
	return webhook.Job{Event: e.domain(payload), Webhook: hooks.domain(&w, sl)}, nil
}
