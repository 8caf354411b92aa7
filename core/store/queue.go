package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/webhook"
)

// A claimed row keeps state 'pending' and gets lease_owner set and
// next_attempt_at moved to the lease's end. So the due-events index alone
// finds both never-claimed rows and rows whose lease expired (a crashed
// node's): the claim stays one index range scan of O(batch) rows, however
// many delivered or future rows the table holds.

const eventColumns = "id, uuid, message_id, webhook_id, user_id, event_type, state, delivered, retry_count, retry_base, next_attempt_at, lease_owner, response_http_status, response_content, created_at, modified_at"

// Claim leases up to limit due events to owner for lease, oldest due first.
func (s *Store) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error) {
	now := s.now()
	if s.dialect == Postgres {
		return s.claimPostgres(ctx, owner, lease, now, pgClaimDue, micros(now), limit)
	}
	due := `SELECT id FROM webhook_events WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`
	if s.dialect == Postgres {
		due += ` FOR UPDATE SKIP LOCKED`
	}
	return s.claim(ctx, owner, lease, now, "id IN ("+due+")", micros(now), limit)
}

// ClaimEvents leases the given pending events that nobody holds, for an
// inline ("async": false) first attempt.
func (s *Store) ClaimEvents(ctx context.Context, owner string, ids []int64, lease time.Duration) ([]webhook.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := s.now()
	if s.dialect == Postgres {
		return s.claimPostgres(ctx, owner, lease, now, pgClaimEvents, micros(now), ids)
	}
	where := "id IN (?) AND state = 'pending' AND (lease_owner IS NULL OR next_attempt_at <= ?)"
	return s.claim(ctx, owner, lease, now, where, bun.List(ids), micros(now))
}

func (s *Store) claim(ctx context.Context, owner string, lease time.Duration, now time.Time, where string, args ...any) ([]webhook.Job, error) {
	var jobs []webhook.Job
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []eventRow
		q := "UPDATE webhook_events SET lease_owner = ?, next_attempt_at = ? WHERE " + where + " RETURNING " + eventColumns
		all := append([]any{owner, micros(now.Add(lease))}, args...)
		if err := tx.NewRaw(q, all...).Scan(ctx, &rows); err != nil {
			return err
		}
		var err error
		jobs, err = s.assemble(ctx, tx, rows, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
	}
	return jobs, nil
}

// Complete records attempts and their outcomes in one transaction. Rows
// whose lease owner is no longer owner (the lease expired and another node
// took them) are skipped: that node's result wins.
func (s *Store) Complete(ctx context.Context, owner string, results []webhook.Result) error {
	if len(results) == 0 {
		return nil
	}
	now := s.now().UTC()
	if s.dialect == Postgres {
		if err := s.completePostgres(ctx, owner, results, now); err != nil {
			return fmt.Errorf("%w: complete %d results: %v", webhook.ErrUnavailable, len(results), err)
		}
		return nil
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		written := make(map[int64]bool, len(results))
		for start := 0; start < len(results); start += 200 {
			if err := s.completeChunk(ctx, tx, owner, results[start:min(start+200, len(results))], now, written); err != nil {
				return err
			}
		}
		hooks := groupHealth(results, func(id int64) bool { return written[id] }, s.disableAfter)
		return s.updateHealth(ctx, tx, hooks, now)
	})
	if err != nil {
		return fmt.Errorf("%w: complete %d results: %v", webhook.ErrUnavailable, len(results), err)
	}
	return nil
}

// completeChunk writes results and adds the ids of the rows it updated to
// written.
func (s *Store) completeChunk(ctx context.Context, tx bun.Tx, owner string, results []webhook.Result, now time.Time, written map[int64]bool) error {
	cast := func(typ string) string {
		if s.dialect == Postgres {
			return "CAST(? AS " + typ + ")"
		}
		return "?"
	}
	row := "(" + strings.Join([]string{cast("BIGINT"), cast("TEXT"), cast("BOOLEAN"), cast("INTEGER"),
		cast("BIGINT"), cast("INTEGER"), cast("TEXT")}, ", ") + ")"
	var b strings.Builder
	b.WriteString("WITH v(id, state, delivered, retry_count, next_attempt_at, status, content) AS (VALUES ")
	args := make([]any, 0, len(results)*7+2)
	for i, r := range results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
		var status *int
		if r.Attempt.Status != 0 {
			status = &r.Attempt.Status
		}
		args = append(args, r.EventID, string(r.State), r.State == webhook.StateDelivered, r.RetryCount,
			micros(r.NextAttemptAt), status, r.Attempt.Body)
	}
	b.WriteString(`) UPDATE webhook_events SET state = v.state, delivered = v.delivered,
		retry_count = v.retry_count, next_attempt_at = v.next_attempt_at, lease_owner = NULL,
		response_http_status = v.status, response_content = v.content, modified_at = ?
		FROM v WHERE webhook_events.id = v.id AND webhook_events.lease_owner = ?
		RETURNING webhook_events.id`)
	args = append(args, now, owner)
	var updated []int64
	if err := tx.NewRaw(b.String(), args...).Scan(ctx, &updated); err != nil {
		return err
	}
	if len(updated) == 0 {
		return nil
	}
	for _, id := range updated {
		written[id] = true
	}
	attempts := make([]attemptRow, 0, len(updated))
	for _, r := range results {
		if !written[r.EventID] {
			continue
		}
		a := r.Attempt
		attempts = append(attempts, attemptRow{
			EventID: r.EventID, AttemptedAt: a.AttemptedAt.UTC(), DurationUS: a.Duration.Microseconds(),
			Status: a.Status, Body: a.Body, Error: a.Error,
		})
	}
	_, err := tx.NewInsert().Model(&attempts).Exec(ctx)
	return err
}

// Release gives back owner's leases on ids without recording an attempt,
// making them due at once (graceful shutdown of jobs never started).
func (s *Store) Release(ctx context.Context, owner string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("lease_owner = NULL").Set("next_attempt_at = ?", micros(s.now())).
		Where("id IN (?)", bun.List(ids)).Where("lease_owner = ?", owner).Where("state = 'pending'").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("%w: release %d leases: %v", webhook.ErrUnavailable, len(ids), err)
	}
	return nil
}

// Redeliver makes the event due now and starts a new series of attempts.
// An event already delivered is a *webhook.ConflictError unless force.
func (s *Store) Redeliver(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool) (webhook.Job, error) {
	job, err := s.Event(ctx, sc, idOrUUID)
	if err != nil {
		return webhook.Job{}, err
	}
	ev := job.Event
	if ev.State == webhook.StateDelivered && !force {
		return webhook.Job{}, &webhook.ConflictError{Detail: "Event " + ev.UUID + " is already delivered; send \"force\": true to deliver it again."}
	}
	now := s.now()
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = ?", micros(now)).Set("modified_at = ?", now.UTC()).
		Where("id = ?", ev.ID).
		// A row leased right now is being delivered; leave it to finish.
		Where("(state <> 'pending' OR lease_owner IS NULL OR next_attempt_at <= ?)", micros(now))
	if !force {
		// Checked again here: it may have been delivered since it was read.
		q = q.Where("state <> 'delivered'")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return webhook.Job{}, fmt.Errorf("redeliver %s: %w", ev.UUID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return webhook.Job{}, &webhook.ConflictError{Detail: "Event " + ev.UUID + " is being delivered right now, or was just delivered."}
	}
	s.notify(ctx)
	return s.Event(ctx, sc, ev.UUID)
}

// RedeliverFailed makes due now every event in range that was given up or
// is waiting for a retry after a failure, and returns how many.
func (s *Store) RedeliverFailed(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter) (int64, error) {
	now := s.now()
	until := f.Until
	if until.IsZero() {
		until = now
	}
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = ?", micros(now)).Set("modified_at = ?", now.UTC()).
		Where("created_at >= ?", f.Since.UTC()).Where("created_at < ?", until.UTC()).
		Where("(state = 'given_up' OR (state = 'pending' AND retry_count > retry_base AND lease_owner IS NULL))")
	if f.WebhookID != 0 {
		q = q.Where("webhook_id = ?", f.WebhookID)
	}
	if !sc.All {
		q = q.Where("user_id = ?", sc.UserID)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("redeliver failed events: %w", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		s.notify(ctx)
	}
	return n, nil
}

// notify wakes other nodes' dispatchers (PostgreSQL only; in-process
// wake-ups are the caller's business).
func (s *Store) notify(ctx context.Context) {
	if s.dialect == Postgres {
		_, _ = s.db.ExecContext(ctx, "SELECT pg_notify(?, '')", notifyChannel)
	}
}

// Listen calls fn whenever any node publishes (PostgreSQL LISTEN/NOTIFY),
// reconnecting on its own, until ctx ends. On SQLite, a single-node
// backend, it only waits for ctx. It returns nil when ctx ends.
func (s *Store) Listen(ctx context.Context, fn func()) error {
	if s.dialect != Postgres {
		<-ctx.Done()
		return nil
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			break
		}
		_ = err // the dispatcher's poll covers the gap; retry with backoff
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func()) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	fn() // catch up on anything published while we were not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		fn()
	}
}

// Counts returns the number of webhook events in each state.
func (s *Store) Counts(ctx context.Context) (map[webhook.State]int64, error) {
	var rows []struct {
		State string `bun:"state"`
		N     int64  `bun:"n"`
	}
	if err := s.db.NewSelect().Table("webhook_events").ColumnExpr("state, count(*) AS n").
		Group("state").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	out := map[webhook.State]int64{}
	for _, r := range rows {
		out[webhook.State(r.State)] = r.N
	}
	return out, nil
}

// On PostgreSQL the hot statements (claim, complete, publish) are each one
// round trip: one statement with $n parameters, sent through database/sql
// to pgx, which prepares it once per connection and binds binary values.
// bun would interpolate the values into the text, so every call would be a
// new statement to parse and plan, and the claim took five round trips
// (begin, update, hooks, messages, commit): about 13 ms for 64 rows.

// pgClaimDue picks due rows ($1 = now in µs, $2 = limit) oldest first,
// skipping rows another node is claiming right now.
const pgClaimDue = `SELECT id, next_attempt_at FROM webhook_events
	WHERE state = 'pending' AND next_attempt_at <= $1
	ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`

// pgClaimEvents picks the given pending rows nobody holds ($1 = now in µs,
// $2 = ids).
const pgClaimEvents = `SELECT id, next_attempt_at FROM webhook_events
	WHERE id = ANY($2) AND state = 'pending' AND (lease_owner IS NULL OR next_attempt_at <= $1)
	FOR UPDATE SKIP LOCKED`

// pgClaim leases the rows of the "due" query ($3 = owner, $4 = lease end)
// and returns them with their hook and payload, in the order they were due.
// Its commit does not wait for the WAL flush (synchronous_commit off for
// this transaction only): a lease lost in a database crash only makes the
// rows due again, which at-least-once delivery allows, and claims then
// stop competing with publishes and results for the disk.
const pgClaim = `WITH due AS (%s),
async AS (SELECT set_config('synchronous_commit', 'off', true)),
upd AS (
	UPDATE webhook_events e SET lease_owner = $3, next_attempt_at = $4
	FROM due WHERE e.id = due.id
	RETURNING e.id, e.uuid, e.message_id, e.webhook_id, e.user_id, e.event_type, e.state, e.delivered,
		e.retry_count, e.retry_base, e.next_attempt_at, e.lease_owner, e.response_http_status,
		e.response_content, e.created_at, e.modified_at, due.next_attempt_at AS due_at
)
SELECT upd.id, upd.uuid, upd.message_id, upd.webhook_id, upd.user_id, upd.event_type, upd.state, upd.delivered,
	upd.retry_count, upd.retry_base, upd.next_attempt_at, upd.lease_owner, upd.response_http_status,
	upd.response_content, upd.created_at, upd.modified_at,
	w.id, w.user_id, w.target_url, w.event_type, w.secret_key, w.is_active, w.callback,
	w.retry_countdown_config, w.additional_headers, w.config, w.created_at, w.modified_at,
	w.failing_since, w.disabled_reason, w.disabled_at, w.secrets_key_id, w.previous_secret_key,
	w.previous_secret_until, m.payload
FROM upd JOIN webhooks w ON w.id = upd.webhook_id JOIN messages m ON m.id = upd.message_id, async
ORDER BY upd.due_at, upd.id`

var (
	pgClaimDueSQL    = fmt.Sprintf(pgClaim, pgClaimDue)
	pgClaimEventsSQL = fmt.Sprintf(pgClaim, pgClaimEvents)
)

func (s *Store) claimPostgres(ctx context.Context, owner string, lease time.Duration, now time.Time, due string, arg1, arg2 any) ([]webhook.Job, error) {
	q := pgClaimDueSQL
	if due == pgClaimEvents {
		q = pgClaimEventsSQL
	}
	rows, err := s.db.DB.QueryContext(ctx, q, arg1, arg2, owner, micros(now.Add(lease)))
	if err != nil {
		return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
	}
	defer rows.Close()
	var jobs []webhook.Job
	// Hooks repeat across a batch: decode each one's JSON columns once.
	hooks := map[int64]webhook.Webhook{}
	for rows.Next() {
		var e eventRow
		var w webhookRow
		var payload string
		if err := rows.Scan(&e.ID, &e.UUID, &e.MessageID, &e.WebhookID, &e.UserID, &e.EventType, &e.State, &e.Delivered,
			&e.RetryCount, &e.RetryBase, &e.NextAttemptAt, &e.LeaseOwner, &e.ResponseHTTPStatus,
			&e.ResponseContent, &e.CreatedAt, &e.ModifiedAt,
			&w.ID, &w.UserID, &w.TargetURL, &w.EventType, &w.SecretKey, &w.IsActive, &w.Callback,
			&w.RetryCountdown, &w.AdditionalHeaders, &w.Config, &w.CreatedAt, &w.ModifiedAt,
			&w.FailingSince, &w.DisabledReason, &w.DisabledAt, &w.SecretsKeyID, &w.PreviousSecretKey,
			&w.PreviousSecretUntil, &payload); err != nil {
			return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
		}
		h, ok := hooks[w.ID]
		if !ok {
			if h, err = w.domain(s.sealer); err != nil {
				return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
			}
			hooks[w.ID] = h
		}
		jobs = append(jobs, webhook.Job{Event: e.domain(payload), Webhook: h})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
	}
	return jobs, nil
}

// pgComplete writes a batch of results and their attempts in one
// statement: the values travel as arrays ($1…$9, $12), so the text never
// changes and stays prepared; only rows still leased to owner ($11) are
// updated, and only those get an attempt row and count for their hook's
// health (see health.go: r and hk are groupHealth in SQL; $13 is
// DisableAfter in microseconds, NULL for never; $14 and $15 the reasons).
var pgComplete = `WITH v AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::int[], $6::text[],
		$7::timestamptz[], $8::bigint[], $9::text[], $12::bigint[])
		AS v(id, state, retry_count, next_attempt_at, status, body, attempted_at, duration_us, error, webhook_id)
), upd AS (
	UPDATE webhook_events e SET state = v.state, delivered = (v.state = 'delivered'),
		retry_count = v.retry_count, next_attempt_at = v.next_attempt_at, lease_owner = NULL,
		response_http_status = NULLIF(v.status, 0), response_content = v.body, modified_at = $10
	FROM v WHERE e.id = v.id AND e.lease_owner = $11
	RETURNING e.id
), r AS (
	SELECT v.webhook_id, v.attempted_at, v.state = 'delivered' AS ok, v.status = 410 AS gone,
		max(v.attempted_at) FILTER (WHERE v.state = 'delivered') OVER (PARTITION BY v.webhook_id) AS ok_at
	FROM v JOIN upd ON upd.id = v.id WHERE v.webhook_id <> 0
), hk AS (
	SELECT webhook_id AS id, bool_or(ok) AS ok, bool_or(gone) AS gone,
		min(attempted_at) FILTER (WHERE NOT ok AND (ok_at IS NULL OR attempted_at > ok_at)) AS failed_at,
		max(attempted_at) FILTER (WHERE NOT ok) - $13::bigint * interval '1 microsecond' AS cutoff
	FROM r GROUP BY webhook_id
), health AS (
	UPDATE webhooks w ` + fmt.Sprintf(healthSet("w", "hk", "hk", "IS DISTINCT FROM"), "$14", "$15", "$10") + `
)
INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
SELECT v.id, v.attempted_at, v.duration_us, v.status, v.body, v.error FROM v JOIN upd ON upd.id = v.id`

func (s *Store) completePostgres(ctx context.Context, owner string, results []webhook.Result, now time.Time) error {
	n := len(results)
	var (
		ids, next, durs      = make([]int64, n), make([]int64, n), make([]int64, n)
		states, bodies, errs = make([]string, n), make([]string, n), make([]string, n)
		retries, statuses    = make([]int32, n), make([]int32, n)
		at                   = make([]time.Time, n)
	)
	hooks := make([]int64, n)
	for i, r := range results {
		a := &r.Attempt
		ids[i], states[i], retries[i], next[i] = r.EventID, string(r.State), int32(r.RetryCount), micros(r.NextAttemptAt)
		statuses[i], bodies[i], at[i], durs[i], errs[i] = int32(a.Status), a.Body, a.AttemptedAt.UTC(), a.Duration.Microseconds(), a.Error
		hooks[i] = r.WebhookID
	}
	var window *int64
	if s.disableAfter > 0 {
		us := s.disableAfter.Microseconds()
		window = &us
	}
	_, err := s.db.DB.ExecContext(ctx, pgComplete, ids, states, retries, next, statuses, bodies, at, durs, errs, now, owner,
		hooks, window, ReasonGone, reasonFailing(s.disableAfter))
	return err
}
