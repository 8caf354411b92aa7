package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// SQLite's claim and completion, like its publish, run statements of a
// fixed text with bound parameters, prepared once (sqliteQueue): built by
// bun, with the values spelled into the text and a VALUES list as long as
// the batch, every call was a new text for SQLite's parser, which was ~9%
// of the server's CPU at saturation. A batch travels as one JSON array
// parameter, read with json_each (its own columns are id, key, value, …:
// every column of a statement that reads it is qualified).

// sqliteQueue holds the claim's and the completion's statements.
type sqliteQueue struct {
	claimDue, claimEvents, jobs, complete, attempts, rollups, hookRollups, health *sql.Stmt
}

// stmts lists q's statements, in sqliteQueueSQL's order.
func (q *sqliteQueue) stmts() []**sql.Stmt {
	return []**sql.Stmt{&q.claimDue, &q.claimEvents, &q.jobs, &q.complete, &q.attempts, &q.rollups, &q.hookRollups, &q.health}
}

var sqliteQueueSQL = []string{sqliteClaimDue, sqliteClaimEvents, sqliteJobs, sqliteComplete, sqliteAttempts,
	sqliteRollups, sqliteHookRollups, sqliteHealth}

// The claims lease their rows (?1 the token, ?2 the lease's end in µs, ?3
// now in µs) and return their ids; sqliteJobs then reads them. Only the
// lease columns change: no index entry is written. sqliteClaimDue takes up
// to ?4 due rows, oldest due first; sqliteClaimEvents those of ?4 (a JSON
// array of ids) that are claimable (see Store.ClaimEvents). "LIMIT ?4 + 0":
// a LIMIT that is a bare parameter makes SQLite prepare the statement
// again whenever its value changes (so that the planner may use it), and
// the limit is the dispatcher's free slots, which vary from claim to claim.
var (
	sqliteClaimDue = `UPDATE webhook_events SET lease_owner = ?1, lease_until = ?2
	WHERE webhook_events.id IN (SELECT d.id FROM webhook_events AS d WHERE d.state = 'pending' AND d.next_attempt_at <= ?3
		AND ` + fmt.Sprintf(notLeased, "?3") + ` ORDER BY d.next_attempt_at LIMIT ?4 + 0)
	RETURNING webhook_events.id`
	sqliteClaimEvents = `UPDATE webhook_events SET lease_owner = ?1, lease_until = ?2
	WHERE webhook_events.id IN (SELECT j.value FROM json_each(?4) AS j) AND webhook_events.state = 'pending'
		AND webhook_events.retry_count = webhook_events.retry_base AND ` + fmt.Sprintf(notLeased, "?3") + `
	RETURNING webhook_events.id`
)

// sqliteJobs reads the events of ?1 (a JSON array of ids) as jobs, with
// their hooks and payloads, in the order they were due. CROSS JOIN fixes
// the join order (SQLite never reorders around it): the ids are the outer
// loop. The payload is a subquery on the messages primary key, which
// SQLite searches whatever statistics an ANALYZE left: as a join, with
// statistics taken while messages held a row (the bench's preload), it
// scanned every message for each job.
var sqliteJobs = `SELECT ` + qualify("e", eventColumns) + ", " + qualify("w", jobHookColumns) + `,
	(SELECT m.payload FROM messages AS m WHERE m.id = e.message_id)
	FROM json_each(?1) AS j CROSS JOIN webhook_events AS e ON e.id = j.value
	CROSS JOIN webhooks AS w ON w.id = e.webhook_id
	ORDER BY e.next_attempt_at, e.id`

// sqliteComplete writes a round of results (?1, resultsJSON; each event at
// most once, since UPDATE … FROM applies one arbitrary row of several with
// the same id) at ?2 (sqliteTime), each only while its event holds the
// result's lease, and returns the ids it wrote.
const sqliteComplete = `WITH v(id, lease, state, retry_count, next_attempt_at, status, content) AS (
	SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6
	FROM json_each(?1) AS j)
UPDATE webhook_events SET state = v.state, delivered = (v.state = 'delivered'), retry_count = v.retry_count,
	next_attempt_at = v.next_attempt_at, lease_owner = NULL, lease_until = NULL,
	response_http_status = v.status, response_content = v.content, modified_at = ?2
FROM v WHERE webhook_events.id = v.id AND webhook_events.lease_owner = v.lease
RETURNING webhook_events.id`

// sqliteAttempts inserts the attempts of ?1 (attemptsJSON). Each event
// has at most one in a batch: the order among them does not matter.
const sqliteAttempts = `INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
	SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5
	FROM json_each(?1) AS j`

// sqliteHealth applies a batch's hook summaries (?1, healthJSON; ?2 and ?3
// the reasons, ?4 now) and returns the hooks it wrote (see health.go).
var sqliteHealth = `WITH v(id, ok, failed_at, cutoff, gone) AS (
	SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 FROM json_each(?1) AS j)
UPDATE webhooks ` + fmt.Sprintf(healthSet("webhooks", "v", "v", "IS NOT"), "?2", "?3", "?4") + `
RETURNING ` + disabledColumns("webhooks", "?4")

// queueStmts returns the prepared statements, preparing them on first use
// (not at Open: the tables may not exist before migrating). It must not be
// called inside a transaction: SQLite has one connection. In one, a
// statement is used through tx.StmtContext, which on that one connection
// reuses the prepared statement.
func (d *sqliteDriver) queueStmts(ctx context.Context) (sqliteQueue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queue.claimDue != nil {
		return d.queue, nil
	}
	var q sqliteQueue
	if err := d.prepare(ctx, q.stmts(), sqliteQueueSQL); err != nil {
		return sqliteQueue{}, err
	}
	d.queue = q
	return q, nil
}

// inTx is db.RunInTx for the hot transactions (publish, claim, complete)
// without a goroutine per statement: database/sql watches the context of
// a transaction and of each query with a goroutine of its own, and the
// SQLite driver one for each statement, to interrupt it when the context
// ends — a dozen goroutine starts per published event, each waking an idle
// thread. Only the wait for SQLite's one connection ends with ctx; once it
// is taken, the transaction runs to its end, bounded by busy_timeout for
// locks and by the batch's size for work (no caller waits for it longer
// than for a commit).
func (d *sqliteDriver) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	conn, err := d.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.RunInTx(context.WithoutCancel(ctx), nil, fn)
}

// prepare prepares queries[i] into *stmts[i], all or none.
func (d *sqliteDriver) prepare(ctx context.Context, stmts []**sql.Stmt, queries []string) error {
	for i, st := range stmts {
		var err error
		if *st, err = d.s.db.DB.PrepareContext(ctx, queries[i]); err != nil {
			closeStmts(stmts)
			return err
		}
	}
	return nil
}

// closeStmts closes the prepared statements among stmts.
func closeStmts(stmts []**sql.Stmt) {
	for _, st := range stmts {
		if *st != nil {
			_ = (*st).Close()
			*st = nil
		}
	}
}

func (d *sqliteDriver) claimDue(ctx context.Context, token string, lease time.Duration, limit int) ([]webhook.Job, error) {
	return d.claim(ctx, func(q sqliteQueue) *sql.Stmt { return q.claimDue }, token, lease, limit)
}

func (d *sqliteDriver) claimEvents(ctx context.Context, token string, lease time.Duration, ids []int64) ([]webhook.Job, error) {
	return d.claim(ctx, func(q sqliteQueue) *sql.Stmt { return q.claimEvents }, token, lease, jsonIDs(ids))
}

// claim leases the rows of the claim statement pick returns (which is its
// ?4) and reads them as jobs.
func (d *sqliteDriver) claim(ctx context.Context, pick func(sqliteQueue) *sql.Stmt, token string, lease time.Duration, which any) ([]webhook.Job, error) {
	q, err := d.queueStmts(ctx)
	if err != nil {
		return nil, err
	}
	now := d.s.now()
	var jobs []webhook.Job
	err = d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		ids, err := scanIDs(tx.Tx.StmtContext(ctx, pick(q)).QueryContext(ctx, token, micros(now.Add(lease)), micros(now), which))
		if err != nil {
			return err
		}
		jobs, err = sqliteLoadJobs(ctx, tx.Tx.StmtContext(ctx, q.jobs), ids, d.s.sealer)
		return err
	})
	return jobs, err
}

// sqliteLoadJobs reads the events ids as jobs, in the order they were due,
// through jobs (sqliteJobs, bound to the caller's transaction). An event
// whose hook is gone is left out.
func sqliteLoadJobs(ctx context.Context, jobs *sql.Stmt, ids []int64, sl Sealer) ([]webhook.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := jobs.QueryContext(ctx, jsonIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("load claimed events: %w", err)
	}
	return scanJobs(rows, sl)
}

// scanIDs reads the one column of rows, ids, and closes rows: err is the
// query's.
func scanIDs(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (d *sqliteDriver) complete(ctx context.Context, results []webhook.Result, now time.Time) (completed, error) {
	q, err := d.queueStmts(ctx)
	if err != nil {
		return completed{}, err
	}
	// The parameters are built before the transaction, which holds
	// SQLite's one connection.
	rounds := roundsByEvent(results)
	docs := make([]string, len(rounds))
	for i, round := range rounds {
		docs[i] = resultsJSON(round)
	}
	all := docs[0]
	if len(rounds) > 1 {
		all = resultsJSON(results)
	}
	stamp := sqliteTime(now)
	var c completed
	err = d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		c = completed{}
		st := func(s *sql.Stmt) *sql.Stmt { return tx.Tx.StmtContext(ctx, s) }
		var written []webhook.Result
		// A later round finds the lease cleared if an earlier one wrote
		// the event.
		upd := st(q.complete)
		for i, round := range rounds {
			ids, err := scanIDs(upd.QueryContext(ctx, docs[i], stamp))
			if err != nil {
				return err
			}
			written = append(written, wrote(round, ids)...)
		}
		if len(written) > 0 {
			if _, err := st(q.attempts).ExecContext(ctx, attemptsJSON(written)); err != nil {
				return fmt.Errorf("add attempts: %w", err)
			}
		}
		// Every result counts for the charts, written or stale: an
		// attempt was made either way.
		if _, err := st(q.rollups).ExecContext(ctx, all, rollupMinute(now)); err != nil {
			return fmt.Errorf("add rollups: %w", err)
		}
		if _, err := st(q.hookRollups).ExecContext(ctx, all, rollupHour(now)); err != nil {
			return fmt.Errorf("add hook rollups: %w", err)
		}
		for _, r := range written {
			if r.State == webhook.StateGivenUp {
				c.givenUp = append(c.givenUp, r)
			}
		}
		var err error
		c.disabled, err = d.updateHealth(ctx, st(q.health), groupHealth(written, d.s.disableAfter), stamp)
		return err
	})
	return c, err
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

// wrote keeps the results of round whose event is in ids (the update wrote
// it), in round's order.
func wrote(round []webhook.Result, ids []int64) []webhook.Result {
	if len(ids) == 0 {
		return nil
	}
	hit := make(map[int64]bool, len(ids))
	for _, id := range ids {
		hit[id] = true
	}
	out := make([]webhook.Result, 0, len(ids))
	for _, r := range round {
		if hit[r.EventID] {
			out = append(out, r)
		}
	}
	return out
}

// updateHealth applies a batch's hook summaries through health
// (sqliteHealth) and returns the hooks it deactivated.
func (d *sqliteDriver) updateHealth(ctx context.Context, health *sql.Stmt, hooks []hookHealth, now string) ([]webhook.HookDisabled, error) {
	if len(hooks) == 0 {
		return nil, nil
	}
	var a jsonRows
	for _, h := range hooks {
		a.row()
		a.int(h.id)
		a.bool(h.ok)
		a.time(h.failedAt)
		a.time(h.cutoff)
		a.bool(h.gone)
	}
	rows, err := health.QueryContext(ctx, a.String(), ReasonGone, reasonFailing(d.s.disableAfter), now)
	if err != nil {
		return nil, fmt.Errorf("update hook health: %w", err)
	}
	defer rows.Close()
	var written []disabledRow
	for rows.Next() {
		var r disabledRow
		if err := rows.Scan(r.targets()...); err != nil {
			return nil, fmt.Errorf("update hook health: %w", err)
		}
		written = append(written, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("update hook health: %w", err)
	}
	return deactivated(written), nil
}

// sqliteTimeLayout is how bun writes a time on SQLite (always UTC): a time
// the statements here write must compare as text with those bun wrote.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999-07:00"

func sqliteTime(t time.Time) string { return t.UTC().Format(sqliteTimeLayout) }

// resultsJSON is results as sqliteComplete, sqliteRollups and
// sqliteHookRollups read them: [id, lease, state, retry count, next
// attempt (µs), status (null for none), response body, webhook id].
func resultsJSON(results []webhook.Result) string {
	var a jsonRows
	for i := range results {
		r := &results[i]
		a.row()
		a.int(r.EventID)
		a.str(r.Lease)
		a.str(string(r.State))
		a.int(int64(r.RetryCount))
		a.int(micros(r.NextAttemptAt))
		if r.Attempt.Status != 0 {
			a.int(int64(r.Attempt.Status))
		} else {
			a.null()
		}
		a.str(r.Attempt.Body)
		a.int(r.WebhookID)
	}
	return a.String()
}

// attemptsJSON is the attempts of results as sqliteAttempts reads them.
func attemptsJSON(results []webhook.Result) string {
	var a jsonRows
	for i := range results {
		at := &results[i].Attempt
		a.row()
		a.int(results[i].EventID)
		a.str(sqliteTime(at.AttemptedAt))
		a.int(at.Duration.Microseconds())
		a.int(int64(at.Status))
		a.str(at.Body)
		a.str(at.Error)
	}
	return a.String()
}

// jsonIDs is ids as a JSON array.
func jsonIDs(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// jsonRows writes a JSON array of rows, each an array of values: a
// batch's one parameter.
type jsonRows struct {
	b    []byte
	cols int // values in the current row
}

// row starts a row.
func (a *jsonRows) row() {
	if a.b == nil {
		a.b = append(make([]byte, 0, 256), '[', '[')
	} else {
		a.b = append(a.b, ']', ',', '[')
	}
	a.cols = 0
}

func (a *jsonRows) next() {
	if a.cols > 0 {
		a.b = append(a.b, ',')
	}
	a.cols++
}

func (a *jsonRows) int(v int64) { a.next(); a.b = strconv.AppendInt(a.b, v, 10) }
func (a *jsonRows) bool(v bool) { a.next(); a.b = strconv.AppendBool(a.b, v) }
func (a *jsonRows) null()       { a.next(); a.b = append(a.b, "null"...) }

// time writes t as bun writes it, or null.
func (a *jsonRows) time(t *time.Time) {
	if t == nil {
		a.null()
		return
	}
	a.str(sqliteTime(*t))
}

// str writes s as a JSON string. Invalid UTF-8, which JSON cannot carry,
// becomes U+FFFD (the sender's results never hold any: see storable).
func (a *jsonRows) str(s string) {
	a.next()
	a.b = appendJSONString(a.b, s)
}

func (a *jsonRows) String() string {
	if a.b == nil {
		return "[]"
	}
	return string(append(a.b, ']', ']'))
}

// appendJSONString appends s to b as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // of the run of bytes copied as they are
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		size := 1
		if c >= utf8.RuneSelf {
			var r rune
			if r, size = utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, `\ufffd`...)
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
