package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Claim leases up to limit due events for lease, oldest due first. Every
// call draws a new lease token ("owner/random", stored in lease_owner and
// set as Job.Lease on each job): Complete, Postpone and Release act only
// while the row still holds it. On PostgreSQL "now" and the lease's end
// are the database's clock, so a node whose clock runs ahead neither takes
// live leases nor makes its own outlast their time.
func (s *Store) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error) {
	token := newLeaseToken(owner)
	if s.dialect == Postgres {
		return s.claimPostgres(ctx, token, lease, pgClaimDueSQL, limit)
	}
	now := s.now()
	due := `SELECT id FROM webhook_events WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`
	return s.claim(ctx, token, micros(now.Add(lease)), "id IN ("+due+")", micros(now), limit)
}

// ClaimEvents leases the given pending events that nobody holds and that
// have no attempt in their current series (retry_count = retry_base), for
// an inline ("async": false) first attempt, as Claim does. An event the
// claim loop already attempted waits for its retry's countdown: sending it
// again inline would be a second request, early.
func (s *Store) ClaimEvents(ctx context.Context, owner string, ids []int64, lease time.Duration) ([]webhook.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	token := newLeaseToken(owner)
	if s.dialect == Postgres {
		return s.claimPostgres(ctx, token, lease, pgClaimEventsSQL, ids)
	}
	now := s.now()
	where := "id IN (?) AND state = 'pending' AND retry_count = retry_base AND (lease_owner IS NULL OR next_attempt_at <= ?)"
	return s.claim(ctx, token, micros(now.Add(lease)), where, bun.List(ids), micros(now))
}

// newLeaseToken returns a lease token of owner that no other claim has:
// the owner's name keeps the column readable ("which node holds it").
func newLeaseToken(owner string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return owner + "/" + hex.EncodeToString(b[:])
}

// claim is Claim and ClaimEvents on SQLite, a single process whose clock
// is the database's.
func (s *Store) claim(ctx context.Context, token string, until int64, where string, args ...any) ([]webhook.Job, error) {
	var jobs []webhook.Job
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []eventRow
		q := "UPDATE webhook_events SET lease_owner = ?, next_attempt_at = ? WHERE " + where + " RETURNING " + eventColumns
		all := append([]any{token, until}, args...)
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
	for i := range jobs {
		jobs[i].Lease = token
	}
	return jobs, nil
}

// Complete records attempts and their outcomes in one transaction. A
// result is written only while its event still holds the result's lease
// (Result.Lease): a result of an earlier claim — the lease expired and
// another node, or this one, claimed the event again — is skipped, and the
// current claim's result wins. Of several results for one event in one
// call, the first that carries the event's lease is written and the rest
// are stale, on both backends. A pending result's retry is due
// NextAttemptAt minus the store's clock after the write, by the database's
// clock.
func (s *Store) Complete(ctx context.Context, results []webhook.Result) error {
	results = firstPerLease(results)
	if len(results) == 0 {
		return nil
	}
	now := s.now().UTC()
	if s.dialect == Postgres {
		if err := s.completePostgres(ctx, results, now); err != nil {
			return fmt.Errorf("%w: complete %d results: %v", webhook.ErrUnavailable, len(results), err)
		}
		return nil
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var written []webhook.Result
		// UPDATE … FROM applies one arbitrary row of several with the same
		// id, so each round holds an event at most once; a later round
		// finds the lease cleared if an earlier one wrote the event.
		for _, round := range roundsByEvent(results) {
			for start := 0; start < len(round); start += 200 {
				w, err := s.completeChunk(ctx, tx, round[start:min(start+200, len(round))], now)
				if err != nil {
					return err
				}
				written = append(written, w...)
			}
		}
		hooks := groupHealth(written, func(int64) bool { return true }, s.disableAfter)
		return s.updateHealth(ctx, tx, hooks, now)
	})
	if err != nil {
		return fmt.Errorf("%w: complete %d results: %v", webhook.ErrUnavailable, len(results), err)
	}
	return nil
}

// firstPerLease drops every result but the first of each (event, lease):
// the same claim's result sent twice is one result.
func firstPerLease(results []webhook.Result) []webhook.Result {
	type key struct {
		id    int64
		lease string
	}
	seen := make(map[key]bool, len(results))
	out := results[:0:0]
	for _, r := range results {
		k := key{r.EventID, r.Lease}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	if len(out) == len(results) {
		return results
	}
	return out
}

// roundsByEvent splits results into rounds in which each event appears at
// most once, keeping their order: round k holds each event's k-th result.
func roundsByEvent(results []webhook.Result) [][]webhook.Result {
	count := make(map[int64]int, len(results))
	var rounds [][]webhook.Result
	for _, r := range results {
		k := count[r.EventID]
		count[r.EventID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], r)
	}
	return rounds
}

// completeChunk writes results (each event at most once) and returns those
// it wrote.
func (s *Store) completeChunk(ctx context.Context, tx bun.Tx, results []webhook.Result, now time.Time) ([]webhook.Result, error) {
	var b strings.Builder
	b.WriteString("WITH v(id, lease, state, delivered, retry_count, next_attempt_at, status, content) AS (VALUES ")
	args := make([]any, 0, len(results)*8+1)
	for i, r := range results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		var status *int
		if r.Attempt.Status != 0 {
			status = &r.Attempt.Status
		}
		args = append(args, r.EventID, r.Lease, string(r.State), r.State == webhook.StateDelivered, r.RetryCount,
			micros(r.NextAttemptAt), status, r.Attempt.Body)
	}
	b.WriteString(`) UPDATE webhook_events SET state = v.state, delivered = v.delivered,
		retry_count = v.retry_count, next_attempt_at = v.next_attempt_at, lease_owner = NULL,
		response_http_status = v.status, response_content = v.content, modified_at = ?
		FROM v WHERE webhook_events.id = v.id AND webhook_events.lease_owner = v.lease
		RETURNING webhook_events.id`)
	args = append(args, now)
	var updated []int64
	if err := tx.NewRaw(b.String(), args...).Scan(ctx, &updated); err != nil {
		return nil, err
	}
	if len(updated) == 0 {
		return nil, nil
	}
	hit := make(map[int64]bool, len(updated))
	for _, id := range updated {
		hit[id] = true
	}
	written := make([]webhook.Result, 0, len(updated))
	attempts := make([]attemptRow, 0, len(updated))
	for _, r := range results {
		if !hit[r.EventID] {
			continue
		}
		written = append(written, r)
		a := r.Attempt
		attempts = append(attempts, attemptRow{
			EventID: r.EventID, AttemptedAt: a.AttemptedAt.UTC(), DurationUS: a.Duration.Microseconds(),
			Status: a.Status, Body: a.Body, Error: a.Error,
		})
	}
	_, err := tx.NewInsert().Model(&attempts).Exec(ctx)
	return written, err
}

// Release gives back leases without recording an attempt, making the
// events due at once (graceful shutdown of jobs never started). A lease the
// event no longer holds is left alone.
func (s *Store) Release(ctx context.Context, leases []webhook.LeaseRef) error {
	if err := s.giveBack(ctx, leases, s.now()); err != nil {
		return fmt.Errorf("%w: release %d leases: %v", webhook.ErrUnavailable, len(leases), err)
	}
	return nil
}

// giveBack clears the given leases of pending events and makes the events
// due at until (by the store's clock; on PostgreSQL the wait until then is
// added to the database's clock).
func (s *Store) giveBack(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error {
	if len(leases) == 0 {
		return nil
	}
	ids := make([]int64, len(leases))
	tokens := make([]string, len(leases))
	for i, l := range leases {
		ids[i], tokens[i] = l.EventID, l.Lease
	}
	if s.dialect == Postgres {
		// One prepared statement, as the other hot queue statements.
		_, err := s.db.DB.ExecContext(ctx, pgGiveBack, ids, tokens, micros(until)-micros(s.now()))
		return err
	}
	var b strings.Builder
	args := make([]any, 0, 2*len(leases)+1)
	args = append(args, micros(until))
	b.WriteString("UPDATE webhook_events SET lease_owner = NULL, next_attempt_at = ? WHERE state = 'pending' AND (id, lease_owner) IN (VALUES ")
	for i := range leases {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		args = append(args, ids[i], tokens[i])
	}
	b.WriteString(")")
	_, err := s.db.ExecContext(ctx, b.String(), args...)
	return err
}

// pgGiveBack is giveBack on PostgreSQL ($1 ids, $2 their leases, $3 the
// wait in µs).
const pgGiveBack = `UPDATE webhook_events e SET lease_owner = NULL, next_attempt_at = ` + pgNow + ` + $3
	FROM unnest($1::bigint[], $2::text[]) AS v(id, lease)
	WHERE e.id = v.id AND e.lease_owner = v.lease AND e.state = 'pending'`

// pgNow is the database's clock in µs (the unit of next_attempt_at): on
// PostgreSQL, which several nodes share, every queue time is measured
// from it, never from a node's clock. statement_timestamp() is stable
// within a statement, so an index range scan can use it.
const pgNow = `(extract(epoch FROM statement_timestamp()) * 1000000)::bigint`

// clockSQL returns the SQL of "now" in µs for a queue time, and its
// arguments: the database's clock on PostgreSQL, the store's (the only
// process's) on SQLite.
func (s *Store) clockSQL() (string, []any) {
	if s.dialect == Postgres {
		return pgNow, nil
	}
	return "?", []any{micros(s.now())}
}

// Redeliver makes the event due now and starts a new series of attempts.
// An event already delivered is a *webhook.ConflictError unless force.
func (s *Store) Redeliver(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool) (webhook.Job, error) {
	return s.RedeliverHeld(ctx, sc, idOrUUID, force, 0)
}

// RedeliverHeld is Redeliver for an inline ("async": false) redelivery:
// as a publish with a Hold, the event is due only after hold and no
// NOTIFY is sent, so no dispatcher claims it before the request's
// ClaimEvents does (which takes it: it is pending and nobody holds it).
// If the request never gets to it, the claim loop delivers it after hold.
func (s *Store) RedeliverHeld(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool, hold time.Duration) (webhook.Job, error) {
	job, err := s.Event(ctx, sc, idOrUUID)
	if err != nil {
		return webhook.Job{}, err
	}
	ev := job.Event
	if ev.State == webhook.StateDelivered && !force {
		return webhook.Job{}, &webhook.ConflictError{Detail: "Event " + ev.UUID + " is already delivered; send \"force\": true to deliver it again."}
	}
	if s.afterRedeliverRead != nil {
		s.afterRedeliverRead()
	}
	now := s.now()
	clock, clockArgs := s.clockSQL()
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = "+clock+" + ?", append(clockArgs, hold.Microseconds())...).Set("modified_at = ?", now.UTC()).
		Where("id = ?", ev.ID).
		// A row leased right now is being delivered; leave it to finish.
		Where("(state <> 'pending' OR lease_owner IS NULL OR next_attempt_at <= "+clock+")", clockArgs...)
	if !force {
		// Checked again here: it may have been delivered since it was read.
		q = q.Where("state <> 'delivered'")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return webhook.Job{}, fmt.Errorf("redeliver %s: %w", ev.UUID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Retention may have deleted it since it was read: that is a 404,
		// not a delivery in progress.
		if _, err := s.Event(ctx, sc, ev.UUID); err != nil {
			return webhook.Job{}, err
		}
		return webhook.Job{}, &webhook.ConflictError{Detail: "Event " + ev.UUID + " is being delivered right now, or was just delivered."}
	}
	if hold == 0 {
		s.notify(ctx)
	}
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
	clock, clockArgs := s.clockSQL()
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = "+clock, clockArgs...).Set("modified_at = ?", now.UTC()).
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

// pgClaimDue picks due rows ($1 = limit) oldest first, skipping rows
// another node is claiming right now.
const pgClaimDue = `SELECT id, next_attempt_at FROM webhook_events
	WHERE state = 'pending' AND next_attempt_at <= ` + pgNow + `
	ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED`

// pgClaimEvents picks the given pending rows nobody holds and nobody
// attempted in their current series ($1 = ids).
const pgClaimEvents = `SELECT id, next_attempt_at FROM webhook_events
	WHERE id = ANY($1) AND state = 'pending' AND retry_count = retry_base AND (lease_owner IS NULL OR next_attempt_at <= ` + pgNow + `)
	FOR UPDATE SKIP LOCKED`

// pgClaim leases the rows of the "due" query ($2 = lease token, $3 = the
// lease in µs, added to the database's clock)
// and returns them with their hook and payload, in the order they were due.
// Its commit does not wait for the WAL flush (synchronous_commit off for
// this transaction only): a lease lost in a database crash only makes the
// rows due again, which at-least-once delivery allows, and claims then
// stop competing with publishes and results for the disk.
const pgClaim = `WITH due AS (%s),
async AS (SELECT set_config('synchronous_commit', 'off', true)),
upd AS (
	UPDATE webhook_events e SET lease_owner = $2, next_attempt_at = ` + pgNow + ` + $3
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

func (s *Store) claimPostgres(ctx context.Context, token string, lease time.Duration, q string, which any) ([]webhook.Job, error) {
	rows, err := s.db.DB.QueryContext(ctx, q, which, token, lease.Microseconds())
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
			h = w.domain(s.sealer)
			hooks[w.ID] = h
		}
		jobs = append(jobs, webhook.Job{Event: e.domain(payload), Webhook: h, Lease: token})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
	}
	return jobs, nil
}

// pgComplete writes a batch of results and their attempts in one
// statement: the values travel as arrays ($1…$9, $11, $12), so the text
// never changes and stays prepared; a row is updated only by the result
// carrying its lease ($11; results come one per (event, lease), so at most
// one matches), and only those results (upd.n) get an attempt row and
// count for their hook's health (see health.go: r and hk are groupHealth
// in SQL; $13 is DisableAfter in microseconds, NULL for never; $14 and $15
// the reasons). $4 is each retry's wait in µs, added to the database's
// clock. The health columns are on the database's clock too
// (pgAttemptClock), so attempts written by nodes with skewed clocks are
// compared fairly.
var pgComplete = `WITH v AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::int[], $6::text[],
		$7::timestamptz[], $8::bigint[], $9::text[], $12::bigint[], $11::text[]) WITH ORDINALITY
		AS v(id, state, retry_count, wait, status, body, attempted_at, duration_us, error, webhook_id, lease, n)
), upd AS (
	UPDATE webhook_events e SET state = v.state, delivered = (v.state = 'delivered'),
		retry_count = v.retry_count, next_attempt_at = ` + pgNow + ` + v.wait, lease_owner = NULL,
		response_http_status = NULLIF(v.status, 0), response_content = v.body, modified_at = $10
	FROM v WHERE e.id = v.id AND e.lease_owner = v.lease
	RETURNING v.n
), r AS (
	SELECT v.webhook_id, ` + pgAttemptClock + ` AS attempted_at, v.state = 'delivered' AS ok, v.status = 410 AS gone,
		max(` + pgAttemptClock + `) FILTER (WHERE v.state = 'delivered') OVER (PARTITION BY v.webhook_id) AS ok_at
	FROM v JOIN upd ON upd.n = v.n WHERE v.webhook_id <> 0
), hk AS (
	SELECT webhook_id AS id, bool_or(ok) AS ok, bool_or(gone) AS gone,
		min(attempted_at) FILTER (WHERE NOT ok AND (ok_at IS NULL OR attempted_at > ok_at)) AS failed_at,
		max(attempted_at) FILTER (WHERE NOT ok) - $13::bigint * interval '1 microsecond' AS cutoff
	FROM r GROUP BY webhook_id
), health AS (
	UPDATE webhooks w ` + fmt.Sprintf(healthSet("w", "hk", "hk", "IS DISTINCT FROM"), "$14", "$15", "statement_timestamp()") + `
)
INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
SELECT v.id, v.attempted_at, v.duration_us, v.status, v.body, v.error FROM v JOIN upd ON upd.n = v.n`

// pgAttemptClock is an attempt's time (v.attempted_at, by its node's
// clock) on the database's clock: the node's offset from the database
// ($10 is the node's now) is added to it. The offset is rounded to whole
// seconds: it is measured across a round trip, and a skew under half a
// second is noise next to a health window, so a node in step with the
// database keeps its attempt times exactly.
const pgAttemptClock = `(v.attempted_at + round(extract(epoch FROM statement_timestamp() - $10::timestamptz)) * interval '1 second')`

func (s *Store) completePostgres(ctx context.Context, results []webhook.Result, now time.Time) error {
	n := len(results)
	var (
		ids, waits, durs             = make([]int64, n), make([]int64, n), make([]int64, n)
		states, bodies, errs, leases = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		retries, statuses            = make([]int32, n), make([]int32, n)
		at                           = make([]time.Time, n)
	)
	hooks := make([]int64, n)
	nowUS := micros(now)
	for i, r := range results {
		a := &r.Attempt
		ids[i], states[i], retries[i], waits[i] = r.EventID, string(r.State), int32(r.RetryCount), micros(r.NextAttemptAt)-nowUS
		statuses[i], bodies[i], at[i], durs[i], errs[i] = int32(a.Status), a.Body, a.AttemptedAt.UTC(), a.Duration.Microseconds(), a.Error
		hooks[i], leases[i] = r.WebhookID, r.Lease
	}
	var window *int64
	if s.disableAfter > 0 {
		us := s.disableAfter.Microseconds()
		window = &us
	}
	_, err := s.db.DB.ExecContext(ctx, pgComplete, ids, states, retries, waits, statuses, bodies, at, durs, errs, now, leases,
		hooks, window, ReasonGone, reasonFailing(s.disableAfter))
	return err
}
