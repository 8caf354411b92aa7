package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// postgresDriver is PostgreSQL, which several nodes share: writes are
// announced with NOTIFY, selected rows are locked (SKIP LOCKED), and every
// queue time is measured from the database's clock, never a node's.
//
// The hot statements (publish, claim, complete, give back) are each one
// round trip: one statement with $n parameters, run on the pooled
// connection's own pgx.Conn (pgconn.go), which prepares it once per
// connection and binds binary values.
// bun would interpolate the values into the text, so every call would be a
// new statement to parse and plan, and the claim took five round trips
// (begin, update, hooks, messages, commit): about 13 ms for 64 rows.
type postgresDriver struct{ s *Store }

// openPostgres opens a pool of up to maxConns connections to rawURL.
func openPostgres(rawURL string, maxConns int) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)
	return bun.NewDB(sqldb, pgdialect.New()), nil
}

func (*postgresDriver) name() string           { return Postgres }
func (*postgresDriver) supportsListener() bool { return true }
func (*postgresDriver) lower() string          { return "lower" }
func (*postgresDriver) close()                 {}

func (*postgresDriver) notify(ctx context.Context, db bun.IDB, channel string) error {
	_, err := db.ExecContext(ctx, "SELECT pg_notify(?, '')", channel)
	return err
}

// pgNow is the database's clock in µs (the unit of next_attempt_at).
// statement_timestamp() is stable within a statement, so an index range
// scan can use it.
const pgNow = `(extract(epoch FROM statement_timestamp()) * 1000000)::bigint`

func (*postgresDriver) clock() (string, []any) { return pgNow, nil }

func (*postgresDriver) skipLocked(q *bun.SelectQuery) *bun.SelectQuery {
	return q.For("UPDATE SKIP LOCKED")
}

func (*postgresDriver) unindexed(column string) string { return column }

func (*postgresDriver) lockMigrations(ctx context.Context, tx bun.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7261001)`)
	return err
}

func (*postgresDriver) migrationsTableSQL() string {
	return `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`
}

// pgPublish is a batch of publishes in one statement, one commit and one
// notification: the message ids are drawn first so that each row of the
// result can be matched to its request (ord; the sequence is looked up
// once per statement, not in pg_depend for every row). A request whose
// event type is unknown has no row; one with no active hook a row with a
// NULL event id. Each request's rows are due its hold ($5, µs) after the database's
// clock's now. The first $12 rows of requests without a hold (request,
// then hook order) are written leased to the publishing node (lease
// token $13, for $14 µs: a PublishLease) and come back with their hook's
// columns (jobHookColumns), as a claim returns them; only rows neither
// held nor leased notify (an uncorrelated subquery runs at most once;
// PostgreSQL also folds identical notifications of one transaction).
// Hooks with a filter get a row only when the server's evaluation passed
// them ($7, $8: request ord and hook id, fanout.go); a filtered hook the
// server did not evaluate ($9 and $11 list those it did, with the filter
// text: its filter was set meanwhile) gets one, as if the publish had
// come first. The
// notification's payload is the store's tag ($10): its own listener
// skips it (Listen).
var pgPublish = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
		WITH ORDINALITY AS i(event_type, payload, publisher_id, idempotency_key, hold, ord)
), valid AS (
	SELECT nextval((SELECT pg_get_serial_sequence('messages', 'id')::regclass)) AS mid, i.*
	FROM input i WHERE EXISTS (SELECT 1 FROM event_types WHERE name = i.event_type)
), msg AS (
	INSERT INTO messages (id, event_type, payload, publisher_id, idempotency_key, created_at)
	SELECT mid, event_type, payload, publisher_id, idempotency_key, $6 FROM valid
), fan AS (
	SELECT v.mid, v.ord, v.event_type, v.hold, w.id AS webhook_id, w.user_id,
		v.hold = 0 AND row_number() OVER (ORDER BY v.hold <> 0, v.ord, w.id) <= $12::bigint AS leased
	FROM valid v JOIN webhooks w ON w.event_type = v.event_type AND w.is_active
		AND (w.filter IS NULL OR (w.id, w.filter) NOT IN (SELECT * FROM unnest($9::bigint[], $11::text[]))
			OR (v.ord, w.id) IN (SELECT * FROM unnest($7::bigint[], $8::bigint[])))
), ev AS (
	INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at,
		lease_owner, lease_until, created_at, modified_at)
	SELECT replace(gen_random_uuid()::text, '-', ''), f.mid, f.webhook_id, f.user_id, f.event_type, 'pending', ` + pgNow + ` + f.hold,
		CASE WHEN f.leased THEN $13::text END, CASE WHEN f.leased THEN ` + pgNow + ` + $14::bigint END, $6, $6
	FROM fan f
	ORDER BY f.ord, f.webhook_id
	RETURNING id, uuid, message_id, webhook_id, user_id, next_attempt_at, lease_owner, lease_until
)
SELECT v.ord, v.mid, ev.id, ev.uuid, ev.webhook_id, ev.user_id, ev.next_attempt_at, ev.lease_owner, ev.lease_until,
	CASE WHEN ev.id IS NOT NULL AND v.hold = 0 AND ev.lease_owner IS NULL THEN (SELECT pg_notify('` + notifyChannel + `', $10)) END,
	` + qualify("w", jobHookColumns) + `
FROM valid v LEFT JOIN ev ON ev.message_id = v.mid
	LEFT JOIN webhooks w ON ev.lease_owner IS NOT NULL AND w.id = ev.webhook_id
ORDER BY v.ord, ev.id`

// pgPublishOne is pgPublish for the common case at a low rate: one
// request, and no filtered hook evaluated (so, as in pgPublish with $9
// empty, every active hook of the type gets a row). Its values are
// scalars ($1 event type, $2 payload, $3 publisher, $4 key, $5 hold, $6
// now, $7 lease limit, $8 lease token, $9 the lease in µs, $10 the
// store's tag) and its plan has 18 nodes to pgPublish's 29: no unnest,
// no hash joins, no sequence lookup (the message's id is its column's
// default). PostgreSQL starts every node of a plan at each execution,
// and at 150 publishes/s that start-up was a sixth of the backends' CPU
// (docs/BENCHMARKS.md, "Cheaper statements"). Its rows are pgPublish's,
// with ord 1; it begins as pgPublish does (WITH input), so both read
// alike in pg_stat_activity.
var pgPublishOne = `WITH input AS (
	SELECT $1::text AS event_type, $2::text AS payload, $3::bigint AS publisher_id, $4::text AS idempotency_key
), msg AS (
	INSERT INTO messages (event_type, payload, publisher_id, idempotency_key, created_at)
	SELECT i.*, $6::timestamptz FROM input i WHERE EXISTS (SELECT 1 FROM event_types WHERE name = i.event_type)
	RETURNING id
), ev AS (
	INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at,
		lease_owner, lease_until, created_at, modified_at)
	SELECT replace(gen_random_uuid()::text, '-', ''), msg.id, f.id, f.user_id, $1::text, 'pending', ` + pgNow + ` + $5::bigint,
		CASE WHEN f.leased THEN $8::text END, CASE WHEN f.leased THEN ` + pgNow + ` + $9::bigint END, $6::timestamptz, $6::timestamptz
	FROM msg, (SELECT w.id, w.user_id, $5::bigint = 0 AND row_number() OVER (ORDER BY w.id) <= $7::bigint AS leased
		FROM webhooks w WHERE w.event_type = $1::text AND w.is_active) f
	ORDER BY f.id
	RETURNING id, uuid, message_id, webhook_id, user_id, next_attempt_at, lease_owner, lease_until
)
SELECT 1::bigint, msg.id, ev.id, ev.uuid, ev.webhook_id, ev.user_id, ev.next_attempt_at, ev.lease_owner, ev.lease_until,
	CASE WHEN ev.id IS NOT NULL AND $5::bigint = 0 AND ev.lease_owner IS NULL THEN (SELECT pg_notify('` + notifyChannel + `', $10::text)) END,
	` + qualify("w", jobHookColumns) + `
FROM msg LEFT JOIN ev ON true
	LEFT JOIN webhooks w ON ev.lease_owner IS NOT NULL AND w.id = ev.webhook_id
ORDER BY ev.id`

func (d *postgresDriver) publish(ctx context.Context, reqs []webhook.PublishRequest, payloads []string, lease publishLease) ([]webhook.Published, []error, error) {
	now := d.s.now().UTC()
	n := len(reqs)
	types, publishers, keys, holds := make([]string, n), make([]*int64, n), make([]*string, n), make([]int64, n)
	for i := range reqs {
		r := &reqs[i]
		types[i], holds[i] = r.EventType, r.Hold.Microseconds()
		if r.PublisherID != 0 {
			publishers[i] = &r.PublisherID
		}
		if r.IdempotencyKey != "" {
			keys[i] = &r.IdempotencyKey
		}
	}
	dec, err := d.s.decide(ctx, reqs, payloads)
	if err != nil {
		return nil, nil, err
	}
	matchOrd, matchID, refused := []int64{}, []int64{}, dec.refused
	for i, pass := range dec.pass {
		for _, id := range pass {
			matchOrd, matchID = append(matchOrd, int64(i+1)), append(matchID, id)
		}
	}
	q, args := pgPublish, []any{types, payloads, publishers, keys, holds, now, matchOrd, matchID,
		dec.evaluated, d.s.tag, dec.evaluatedSrc, lease.limit, lease.token, lease.lease.Microseconds()}
	if n == 1 && len(dec.evaluated) == 0 {
		q, args = pgPublishOne, []any{types[0], payloads[0], publishers[0], keys[0], holds[0], now,
			lease.limit, lease.token, lease.lease.Microseconds(), d.s.tag}
	}
	out := make([]webhook.Published, n)
	errs := make([]error, n)
	seen := make([]bool, n)
	hooks := hookCache{}
	for rows, err := range d.query(ctx, q, args...) {
		if err != nil {
			return nil, nil, err
		}
		var ord, msgID int64
		var id, hookID, userID, next *int64
		var uuid, notified *string
		r := eventRow{State: string(webhook.StatePending), CreatedAt: now, ModifiedAt: now}
		var w webhookRow
		dest := append([]any{&ord, &msgID, &id, &uuid, &hookID, &userID, &next, &r.LeaseOwner, &r.LeaseUntil, &notified},
			nullable(hookTargets(&w))...)
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		i := int(ord - 1)
		seen[i] = true
		if out[i].Events == nil {
			out[i].Events = []webhook.Event{}
			out[i].Filtered = refused[i]
		}
		if id == nil {
			continue // no active hook for this type
		}
		r.ID, r.UUID, r.MessageID, r.WebhookID, r.UserID, r.EventType, r.NextAttemptAt = *id, *uuid, msgID, *hookID, *userID, reqs[i].EventType, *next
		ev := r.domain(payloads[i])
		out[i].Events = append(out[i].Events, ev)
		if r.LeaseOwner != nil {
			out[i].Jobs = append(out[i].Jobs, webhook.Job{Event: ev, Webhook: hooks.domain(&w, d.s.sealer), Lease: lease.token})
		}
	}
	for i, ok := range seen {
		if !ok {
			errs[i] = &webhook.UnknownEventTypeError{EventType: reqs[i].EventType}
		}
	}
	return out, errs, nil
}

// pgClaimDue picks due rows ($1 = limit) oldest first, skipping rows
// another node is claiming right now.
var pgClaimDue = `SELECT id, next_attempt_at FROM webhook_events
	WHERE state = 'pending' AND next_attempt_at <= ` + pgNow + ` AND ` + fmt.Sprintf(notLeased, pgNow) + `
	ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED`

// pgClaimEvents picks the given pending rows nobody holds and nobody
// attempted in their current series ($1 = ids).
var pgClaimEvents = `SELECT e.id, e.next_attempt_at FROM unnest($1::bigint[]) AS i(id) JOIN webhook_events e ON e.id = i.id
	WHERE ` + fewRows("i.id") + ` AND e.state = 'pending' AND e.retry_count = e.retry_base AND ` + fmt.Sprintf(notLeased, pgNow) + `
	FOR UPDATE OF e SKIP LOCKED`

// pgClaim leases the rows of the "due" query ($2 = lease token, $3 = the
// lease in µs, added to the database's clock)
// and returns them with their hook and payload, in the order they were due.
// It writes only lease_owner and lease_until, which no index holds: with
// room on the page (fillfactor 80) the new row version is a HOT update, no
// index entry is written, and the due index's scan range gains no dead
// entry.
// Its commit does not wait for the WAL flush (synchronous_commit off for
// this transaction only): a lease lost in a database crash only makes the
// rows due again, which at-least-once delivery allows, and claims then
// stop competing with publishes and results for the disk.
var pgClaim = `WITH due AS (%s),
async AS (SELECT set_config('synchronous_commit', 'off', true)),
upd AS (
	UPDATE webhook_events e SET lease_owner = $2, lease_until = ` + pgNow + ` + $3
	FROM due WHERE e.id = due.id
	RETURNING ` + qualify("e", eventColumns) + `, due.next_attempt_at AS due_at
)
SELECT ` + jobColumns("upd") + `
FROM upd JOIN webhooks w ON w.id = upd.webhook_id JOIN messages m ON m.id = upd.message_id, async
ORDER BY upd.due_at, upd.id`

var (
	pgClaimDueSQL    = fmt.Sprintf(pgClaim, pgClaimDue)
	pgClaimEventsSQL = fmt.Sprintf(pgClaim, pgClaimEvents)
)

func (d *postgresDriver) claimDue(ctx context.Context, token string, lease time.Duration, limit int) ([]webhook.Job, error) {
	return d.claim(ctx, token, lease, pgClaimDueSQL, limit)
}

func (d *postgresDriver) claimEvents(ctx context.Context, token string, lease time.Duration, ids []int64) ([]webhook.Job, error) {
	return d.claim(ctx, token, lease, pgClaimEventsSQL, ids)
}

func (d *postgresDriver) claim(ctx context.Context, token string, lease time.Duration, q string, which any) ([]webhook.Job, error) {
	var jobs []webhook.Job
	hooks := hookCache{}
	for rows, err := range d.query(ctx, q, which, token, lease.Microseconds()) {
		if err != nil {
			return nil, err
		}
		job, err := scanJob(rows, hooks, d.s.sealer)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// fewRows is a condition true of every event id (id BETWEEN 1 AND the
// largest bigint) that makes the planner expect one row of the unnest it
// filters. The hot statements are prepared once per connection, and after
// five runs PostgreSQL keeps a generic plan, costed for the table's size at
// that moment and never replanned until an ANALYZE: made while the table
// was small (a new database, or autovacuum off), it joined the batch to a
// sequential scan of webhook_events, and every Complete read the whole
// table — ~1,600 rows per event at 150 events/s, growing with the table. A
// batch expected to be one row is joined by the primary key at any size.
func fewRows(id string) string {
	return id + " BETWEEN 1 AND 9223372036854775807"
}

// pgComplete writes a batch of results and their attempts in one
// statement: the values travel as arrays ($1…$9, $11, $12), so the text
// never changes and stays prepared; a row is updated only by the result
// carrying its lease ($11; results come one per (event, lease), so at most
// one matches), and only those results (upd, which returns them) get an
// attempt row and count for their hook's health (see health.go: r and hk are groupHealth
// in SQL; $15 is DisableAfter in microseconds, NULL for never; $16 and $17
// the reasons); every result, written or stale (an attempt was made
// either way), counts for the console's charts (roll, rollup.go; $13 is
// the minute) and its hooks list (hroll, hookrollup.go; $14 the hour). $4 is each retry's wait in µs, added to the database's
// clock. The health columns are on the database's clock too
// (pgAttemptClock), so attempts written by nodes with skewed clocks are
// compared fairly.
var pgComplete = pgCompleteWrites + `r AS (
	SELECT v.webhook_id, ` + pgAttemptClock + ` AS attempted_at, v.state = 'delivered' AS ok, v.status = 410 AS gone,
		max(` + pgAttemptClock + `) FILTER (WHERE v.state = 'delivered') OVER (PARTITION BY v.webhook_id) AS ok_at
	FROM upd v WHERE v.webhook_id <> 0
), hk AS (
	SELECT webhook_id AS id, bool_or(ok) AS ok, bool_or(gone) AS gone,
		min(attempted_at) FILTER (WHERE NOT ok AND (ok_at IS NULL OR attempted_at > ok_at)) AS failed_at,
		max(attempted_at) FILTER (WHERE NOT ok) - $15::bigint * interval '1 microsecond' AS cutoff
	FROM r GROUP BY webhook_id
), health AS (
	UPDATE webhooks w ` + fmt.Sprintf(healthSet("w", "hk", "hk", "IS DISTINCT FROM"), "$16", "$17", "statement_timestamp()") + `
	RETURNING ` + disabledColumns("w", "statement_timestamp()") + `
` + pgCompleteTail + `
UNION ALL
SELECT n, 0, TRUE, NULL, NULL, '', FALSE FROM upd WHERE state = 'given_up'`

// pgCompleteDelivered is pgComplete for a batch whose every result is a
// delivery (no 410 among them), the common case, in 24 plan nodes to
// pgComplete's 31 (PostgreSQL starts each at every execution): for such a batch
// pgComplete's health sets failing_since to NULL on the hooks that had
// one and changes nothing else (each hook's ok is true, failed_at and
// cutoff NULL, gone false: no deactivation), and no row is given up. It
// takes pgComplete's first fourteen values.
var pgCompleteDelivered = pgCompleteWrites + `health AS (
	UPDATE webhooks w SET failing_since = NULL
	WHERE w.id IN (SELECT webhook_id FROM upd) AND w.failing_since IS NOT NULL
	RETURNING ` + disabledColumns("w", "statement_timestamp()") + `
` + pgCompleteTail

// pgCompleteWrites is how pgComplete and pgCompleteDelivered begin: the
// results (v), their events' update (upd) and the rollups (roll, hroll);
// each goes on with its hooks' health and ends with pgCompleteTail.
var pgCompleteWrites = `WITH v AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::int[], $6::text[],
		$7::timestamptz[], $8::bigint[], $9::text[], $12::bigint[], $11::text[]) WITH ORDINALITY
		AS v(id, state, retry_count, wait, status, body, attempted_at, duration_us, error, webhook_id, lease, n)
	WHERE ` + fewRows("v.id") + `
), upd AS (
	UPDATE webhook_events e SET state = v.state, delivered = (v.state = 'delivered'),
		retry_count = v.retry_count, next_attempt_at = ` + pgNow + ` + v.wait, lease_owner = NULL, lease_until = NULL,
		response_http_status = NULLIF(v.status, 0), response_content = v.body, modified_at = $10
	FROM v WHERE e.id = v.id AND e.lease_owner = v.lease
	RETURNING v.id, v.state, v.status, v.body, v.attempted_at, v.duration_us, v.error, v.webhook_id, v.n
), roll AS (
	INSERT INTO delivery_rollups AS d (user_id, minute, attempts, delivered, failed, given_up)
	SELECT e.user_id, $13::bigint, count(*) FILTER (WHERE v.webhook_id <> 0), count(*) FILTER (WHERE v.state = 'delivered'),
		count(*) FILTER (WHERE v.state = 'pending'), count(*) FILTER (WHERE v.state = 'given_up')
	FROM v JOIN webhook_events e ON e.id = v.id GROUP BY e.user_id ORDER BY e.user_id
	ON CONFLICT (user_id, minute) DO UPDATE SET attempts = d.attempts + excluded.attempts,
		delivered = d.delivered + excluded.delivered, failed = d.failed + excluded.failed,
		given_up = d.given_up + excluded.given_up
), hroll AS (
	INSERT INTO hook_rollups AS h (webhook_id, hour, attempts, delivered)
	SELECT v.webhook_id, $14::bigint, count(*), count(*) FILTER (WHERE v.state = 'delivered')
	FROM v WHERE v.webhook_id <> 0 GROUP BY v.webhook_id ORDER BY v.webhook_id
	ON CONFLICT (webhook_id, hour) DO UPDATE SET attempts = h.attempts + excluded.attempts,
		delivered = h.delivered + excluded.delivered
), `

// pgCompleteTail closes the health update's CTE, writes the attempts of
// the results written (ins) and returns the hooks the health update
// deactivated (n 0).
const pgCompleteTail = `), ins AS (
	INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
	SELECT id, attempted_at, duration_us, status, body, error FROM upd
)
SELECT 0 AS n, id, is_active, failing_since, disabled_at, disabled_reason, disabled_now FROM health WHERE disabled_now`

// pgAttemptClock is an attempt's time (v.attempted_at, by its node's
// clock) on the database's clock: the node's offset from the database
// ($10 is the node's now) is added to it. The offset is rounded to whole
// seconds: it is measured across a round trip, and a skew under half a
// second is noise next to a health window, so a node in step with the
// database keeps its attempt times exactly.
const pgAttemptClock = `(v.attempted_at + round(extract(epoch FROM statement_timestamp() - $10::timestamptz)) * interval '1 second')`

func (d *postgresDriver) complete(ctx context.Context, results []webhook.Result, now time.Time) (completed, error) {
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
	if d.s.disableAfter > 0 {
		us := d.s.disableAfter.Microseconds()
		window = &us
	}
	q, args := pgComplete, []any{ids, states, retries, waits, statuses, bodies, at, durs, errs, now, leases,
		hooks, rollupMinute(now), rollupHour(now), window, ReasonGone, reasonFailing(d.s.disableAfter)}
	if allDelivered(results) {
		q, args = pgCompleteDelivered, args[:14]
	}
	var c completed
	var disabled []disabledRow
	for rows, err := range d.query(ctx, q, args...) {
		if err != nil {
			return completed{}, err
		}
		var n int64
		var r disabledRow
		if err := rows.Scan(append([]any{&n}, r.targets()...)...); err != nil {
			return completed{}, err
		}
		if n > 0 {
			c.givenUp = append(c.givenUp, results[n-1])
		} else {
			disabled = append(disabled, r)
		}
	}
	c.disabled = deactivated(disabled)
	return c, nil
}

// allDelivered reports whether every result is a delivery that did not
// answer 410, the batches pgCompleteDelivered writes.
func allDelivered(results []webhook.Result) bool {
	for i := range results {
		if results[i].State != webhook.StateDelivered || results[i].Attempt.Status == 410 {
			return false
		}
	}
	return true
}

// pgGiveBack is giveBack ($1 ids, $2 their leases, $3 the wait in µs).
var pgGiveBack = `UPDATE webhook_events e SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ` + pgNow + ` + $3
	FROM unnest($1::bigint[], $2::text[]) AS v(id, lease)
	WHERE ` + fewRows("v.id") + ` AND e.id = v.id AND e.lease_owner = v.lease AND e.state = 'pending'`

// giveBack adds the wait until until (by the store's clock) to the
// database's clock, in one prepared statement as the other hot ones.
func (d *postgresDriver) giveBack(ctx context.Context, ids []int64, tokens []string, until time.Time) error {
	return d.exec(ctx, pgGiveBack, ids, tokens, micros(until)-micros(d.s.now()))
}

// revocationsSeen: the cache is trusted only while WatchRevocations
// listens for revocations.
func (d *postgresDriver) revocationsSeen(context.Context) bool { return d.s.auth.watching.Load() }

// scrub does nothing: an overwritten row's old version stays until
// VACUUM reclaims its space, which the server schedules, not a client.
func (*postgresDriver) scrub(context.Context) (func(), error) { return func() {}, nil }
