package store

import (
	"cmp"
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite" // the pure-Go SQLite driver

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// sqliteDriver is SQLite: one process, one connection, one clock (the
// store's). Nothing is announced to other processes, rows are never
// locked (there is one writer), and every queue time is the store's.
type sqliteDriver struct {
	s *Store

	mu      sync.Mutex
	stmts   sqlitePublish // prepared on first use
	queue   sqliteQueue   // prepared on first use
	version *sql.Stmt     // PRAGMA data_version, prepared on first use
	conns   *sqliteConnector
}

// sqliteConnector opens the store's connections and counts them: SQLite's
// data_version is per connection, so the first value a new connection
// reads (database/sql replaces one that an interrupted statement left
// unusable) says nothing of the commits since the last one's
// (revocationsSeen).
type sqliteConnector struct {
	dsn   string
	opens atomic.Int64
}

func (c *sqliteConnector) Connect(context.Context) (sqldriver.Conn, error) {
	conn, err := c.Driver().Open(c.dsn)
	if err == nil {
		c.opens.Add(1)
	}
	return conn, err
}

func (c *sqliteConnector) Driver() sqldriver.Driver { return sqliteRegistered }

// sqliteRegistered is the driver modernc.org/sqlite registered as "sqlite",
// which holds the functions registered with it (lowerSQLite).
var sqliteRegistered = func() sqldriver.Driver {
	db, _ := sql.Open("sqlite", "") // connects to nothing
	defer db.Close()
	return db.Driver()
}()

// openSQLite opens file ("path" or ":memory:", with the driver's query
// perhaps), creating a missing file unless !create. path is the
// database's file, "" in memory.
func openSQLite(file string, create bool) (db *bun.DB, conns *sqliteConnector, path string, err error) {
	if file == "" {
		return nil, nil, "", fmt.Errorf("open database: sqlite:// needs a file path, e.g. sqlite://whisperer.db")
	}
	if p, _, _ := strings.Cut(file, "?"); p != ":memory:" {
		path = p
		if create {
			if err := createPrivate(path); err != nil {
				return nil, nil, "", err
			}
		} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			abs, _ := filepath.Abs(path)
			return nil, nil, "", fmt.Errorf("%w at %s", ErrNoDatabase, abs)
		} else if err != nil {
			return nil, nil, "", fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	conns = &sqliteConnector{dsn: sqliteDSN(file, create || path == "")}
	sqldb := sql.OpenDB(conns)
	sqldb.SetMaxOpenConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	return bun.NewDB(sqldb, sqlitedialect.New()), conns, path, nil
}

// sqliteDSN is the driver's name for file. Without create, SQLite fails
// rather than create a file that vanished since OpenExisting looked, and
// journal_mode is left as migrating set it (WAL): setting it would write
// to a file that has no schema yet.
func sqliteDSN(file string, create bool) string {
	q := url.Values{}
	pragmas := []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"}
	if !create {
		pragmas = pragmas[1:]
		q.Set("mode", "rw")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if file == ":memory:" {
		return "file::memory:?" + q.Encode()
	}
	return "file:" + file + "?" + q.Encode()
}

// lowerSQLite is the name of a lower() that folds all of Unicode on SQLite,
// whose own lower() folds ASCII only: the case-insensitive hook filters must
// match the way PostgreSQL's lower() does.
const lowerSQLite = "whisperer_lower"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(lowerSQLite, 1, func(_ *sqlite.FunctionContext, args []sqldriver.Value) (sqldriver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		default:
			return v, nil // NULL and numbers have no case
		}
	})
}

func (*sqliteDriver) name() string           { return SQLite }
func (*sqliteDriver) supportsListener() bool { return false }
func (*sqliteDriver) lower() string          { return lowerSQLite }

func (*sqliteDriver) notify(context.Context, bun.IDB, string) error { return nil }

// clock is the store's clock: the only process's.
func (d *sqliteDriver) clock() (string, []any) { return "?", []any{micros(d.s.now())} }

// skipLocked leaves q alone: SQLite has one writer, so a row selected in
// a transaction stays as read until it ends.
func (*sqliteDriver) skipLocked(q *bun.SelectQuery) *bun.SelectQuery { return q }

func (*sqliteDriver) unindexed(column string) string { return "+" + column }

func (*sqliteDriver) lockMigrations(context.Context, bun.Tx) error { return nil }

func (*sqliteDriver) migrationsTableSQL() string {
	return `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
}

// sqlitePublishMessage and sqlitePublishEvents are a publish on SQLite,
// with bound values and prepared once (SQLite's parser was a quarter of
// the server's CPU when bun spelled the values into the text). The
// message is inserted per request (its payload a bound value, never
// copied into JSON), without RETURNING: its id is the insert's rowid and
// an unknown event type inserts nothing. The events of the whole batch are
// then one statement, ?1 a JSON array of [message id, event type, due
// (µs), held (0 or 1)] per request: each statement carries fixed costs
// (the VDBE program's start and halt, its cursors and ephemeral tables,
// a statement journal, the AUTOINCREMENT counter's write), which per
// request were most of a publish's. The uuid is 32 hex digits as
// dj-whisperer sends in event.uuid (sqliteUUID). The first ?4 rows of
// requests without a hold (request, then hook order) are written leased
// (lease token ?5 until ?6, µs: a PublishLease), and the publish reads
// their hooks (sqlitePublishHooks) in its transaction.
//
// A hook with a filter gets a row when its filter passed the event (the
// hook ids of its request's fifth element in ?1, fanout.go), decided
// before the transaction: looked up per request, so a batch costs R·H²
// comparisons, not the R²·H² of one list of every request's pairs (256
// requests with 40 filtered hooks ran one statement for minutes); one the fan-out did not evaluate with
// its stored filter (?7 lists those it did, as JSON pairs of id and filter
// text: its filter was set or changed meanwhile) gets one, as if the
// publish had come first.
//
// The event type is matched as +?1 in the message's insert: the planner
// does not read a value behind unary plus. With "= ?1" and the STAT4
// samples an ANALYZE leaves, it planned with the bound value, and
// rebinding it expired the prepared statement: every publish parsed and
// planned it again (a sixth of the server's CPU after the bench's preload;
// TestSQLiteStatisticsChangeNoHotPlan). The events' statement reads its
// types from JSON, which the planner never sees.
var (
	sqlitePublishMessage = `INSERT INTO messages (event_type, payload, publisher_id, idempotency_key, created_at)
	SELECT ?1, ?2, ?3, ?5, ?4 WHERE EXISTS (SELECT 1 FROM event_types WHERE name = +?1)`
	sqlitePublishEvents = `INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at,
		lease_owner, lease_until, created_at, modified_at)
	SELECT ` + sqliteUUID("?2") + `, f.mid, f.hook, f.user_id, f.event_type, 'pending', f.due,
		CASE WHEN f.leased THEN ?5 END, CASE WHEN f.leased THEN ?6 END, ?3, ?3
	FROM (SELECT r.key AS ord, r.value ->> 0 AS mid, r.value ->> 2 AS due, w.id AS hook, w.user_id, w.event_type,
			r.value ->> 3 = 0 AND row_number() OVER (ORDER BY r.value ->> 3, r.key, w.id) <= ?4 AS leased
		FROM json_each(?1) AS r CROSS JOIN webhooks AS w ON w.event_type = r.value ->> 1 AND w.is_active
			AND (w.filter IS NULL
				OR NOT EXISTS (SELECT 1 FROM json_each(?7) AS e WHERE e.value ->> 0 = w.id AND e.value ->> 1 = w.filter)
				OR EXISTS (SELECT 1 FROM json_each(r.value, '$[4]') AS p WHERE p.value = w.id))) AS f
	ORDER BY f.ord, f.hook
	RETURNING id, uuid, message_id, webhook_id, user_id, lease_owner, lease_until`
	// sqlitePublishHooks reads the hooks of the rows a publish leased (?1,
	// a JSON array of ids), as a claim returns them.
	sqlitePublishHooks = `SELECT ` + jobHookColumns + ` FROM webhooks WHERE id IN (SELECT value FROM json_each(?1))`
)

// sqliteUUID is the SQL of a new event's uuid: a version 7 uuid, whose
// first 48 bits are the publish's Unix time in ms (param, 12 hex digits,
// uuidTime) and the rest random (74 bits). Time-ordered, a new uuid goes to
// the right edge of the uuid index, as a new id does: a version 4 uuid went
// to a random leaf page, and with a million events that page was seldom
// in SQLite's 2 MiB page cache, so each publish read and dirtied one more
// page (a million events preloaded cost −40…−51% of throughput).
func sqliteUUID(param string) string {
	return "lower(" + param + " || '7' || substr(hex(randomblob(2)), 2) || substr('89ab', 1 + abs(random() % 4), 1) || " +
		"substr(hex(randomblob(2)), 2) || hex(randomblob(6)))"
}

// uuidTime is the time part of a version 7 uuid made at t.
func uuidTime(t time.Time) string { return fmt.Sprintf("%012x", uint64(t.UnixMilli())&(1<<48-1)) }

// sqlitePublish holds the publish statements, prepared once: SQLite
// parses a statement on every call otherwise, and parsing them was ~20%
// of the CPU of a publish-heavy run.
type sqlitePublish struct{ msg, events, hooks *sql.Stmt }

// publishStmts returns the prepared publish statements, preparing them on
// first use (not at Open: the tables may not exist before migrating). It
// must not be called inside a transaction: SQLite has one connection.
func (d *sqliteDriver) publishStmts(ctx context.Context) (sqlitePublish, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stmts.msg != nil {
		return d.stmts, nil
	}
	var p sqlitePublish
	if err := d.prepare(ctx, p.list(), []string{sqlitePublishMessage, sqlitePublishEvents, sqlitePublishHooks}); err != nil {
		return sqlitePublish{}, err
	}
	d.stmts = p
	return p, nil
}

func (p *sqlitePublish) list() []**sql.Stmt { return []**sql.Stmt{&p.msg, &p.events, &p.hooks} }

func (d *sqliteDriver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	closeStmts(d.stmts.list())
	closeStmts(d.queue.stmts())
	closeStmts([]**sql.Stmt{&d.version})
}

func (d *sqliteDriver) publish(ctx context.Context, reqs []webhook.PublishRequest, payloads []string, lease publishLease) ([]webhook.Published, []error, error) {
	stmts, err := d.publishStmts(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := d.s.now().UTC()
	out := make([]webhook.Published, len(reqs))
	errs := make([]error, len(reqs))
	// Filters run before the transaction: a plugin filter's calls must not
	// hold SQLite's one connection.
	dec, err := d.s.decide(ctx, reqs, payloads)
	if err != nil {
		return nil, nil, err
	}
	pairs := make([][2]any, len(dec.evaluated))
	for i, id := range dec.evaluated {
		pairs[i] = [2]any{id, dec.evaluatedSrc[i]}
	}
	evaluated, _ := json.Marshal(pairs)
	err = d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// On SQLite's one connection these reuse the prepared statements.
		st := sqlitePublish{msg: tx.Tx.StmtContext(ctx, stmts.msg), events: tx.Tx.StmtContext(ctx, stmts.events),
			hooks: tx.Tx.StmtContext(ctx, stmts.hooks)}
		// Times as bun writes them, so that stored values compare as text
		// the same way whichever statement wrote them.
		stamp := now.Format("2006-01-02 15:04:05.999999-07:00")
		written := map[int64]int{} // message id: its request
		var msgs [][5]any          // sqlitePublishEvents' ?1
		for i, r := range reqs {
			out[i] = webhook.Published{Events: []webhook.Event{}}
			var publisher *int64
			if r.PublisherID != 0 {
				publisher = &r.PublisherID
			}
			var key *string
			if r.IdempotencyKey != "" {
				key = &r.IdempotencyKey
			}
			res, err := st.msg.ExecContext(ctx, r.EventType, payloads[i], publisher, stamp, key)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				errs[i] = &webhook.UnknownEventTypeError{EventType: r.EventType}
				continue
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			out[i].Filtered = dec.refused[i]
			pass := dec.pass[i]
			if pass == nil {
				pass = []int64{}
			}
			held := 0
			if r.Hold != 0 {
				held = 1
			}
			written[id] = i
			msgs = append(msgs, [5]any{id, r.EventType, micros(now.Add(r.Hold)), held, pass})
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := publishEvents(ctx, st.events, reqs, payloads, written, msgs, string(evaluated), now, stamp, lease, out); err != nil {
			return err
		}
		return d.leasedJobs(ctx, st.hooks, out, lease.token)
	})
	return out, errs, err
}

// publishEvents writes the event rows of the messages a publish wrote
// (msgs, sqlitePublishEvents' ?1; written maps their ids to their
// requests) and adds them to out, with a Job for each leased one
// (its hook still to read: leasedJobs), in hook order.
func publishEvents(ctx context.Context, events *sql.Stmt, reqs []webhook.PublishRequest, payloads []string,
	written map[int64]int, msgs [][5]any, evaluated string, now time.Time, stamp string,
	lease publishLease, out []webhook.Published) error {
	in, err := json.Marshal(msgs)
	if err != nil {
		return err
	}
	rows, err := events.QueryContext(ctx, string(in), uuidTime(now), stamp, max(lease.limit, 0), lease.token,
		micros(now.Add(lease.lease)), evaluated)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r := eventRow{State: string(webhook.StatePending), CreatedAt: now, ModifiedAt: now}
		if err := rows.Scan(&r.ID, &r.UUID, &r.MessageID, &r.WebhookID, &r.UserID, &r.LeaseOwner, &r.LeaseUntil); err != nil {
			return err
		}
		i, ok := written[r.MessageID]
		if !ok {
			return fmt.Errorf("publish: event %d of message %d, which this publish did not write", r.ID, r.MessageID)
		}
		r.EventType, r.NextAttemptAt = reqs[i].EventType, micros(now.Add(reqs[i].Hold))
		ev := r.domain(payloads[i])
		out[i].Events = append(out[i].Events, ev)
		if r.LeaseOwner != nil {
			out[i].Jobs = append(out[i].Jobs, webhook.Job{Event: ev})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// RETURNING order is unspecified; answer in hook order like
	// PostgreSQL.
	byHook := func(a, b webhook.Event) int { return cmp.Compare(a.WebhookID, b.WebhookID) }
	for i := range out {
		slices.SortFunc(out[i].Events, byHook)
		slices.SortFunc(out[i].Jobs, func(a, b webhook.Job) int { return byHook(a.Event, b.Event) })
	}
	return nil
}

// leasedJobs fills in the Jobs of the events in out that the publish
// leased: their hooks are read in one statement, in the transaction.
func (d *sqliteDriver) leasedJobs(ctx context.Context, hooksStmt *sql.Stmt, out []webhook.Published, token string) error {
	var ids []int64
	for i := range out {
		for _, j := range out[i].Jobs {
			ids = append(ids, j.Event.WebhookID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	list, _ := json.Marshal(dedupe(ids))
	rows, err := hooksStmt.QueryContext(ctx, string(list))
	if err != nil {
		return err
	}
	defer rows.Close()
	hooks := map[int64]webhook.Webhook{}
	for rows.Next() {
		var w webhookRow
		if err := rows.Scan(hookTargets(&w)...); err != nil {
			return err
		}
		hooks[w.ID] = w.domain(d.s.sealer)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range out {
		for k := range out[i].Jobs {
			j := &out[i].Jobs[k]
			j.Webhook, j.Lease = hooks[j.Event.WebhookID], token
		}
	}
	return nil
}

// writeValues writes the placeholders of a VALUES list of rows rows of
// cols columns: "(?, ?), (?, ?)".
func writeValues(b *strings.Builder, rows, cols int) {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
}

func (d *sqliteDriver) giveBack(ctx context.Context, ids []int64, tokens []string, until time.Time) error {
	var b strings.Builder
	args := make([]any, 0, 2*len(ids)+1)
	args = append(args, micros(until))
	b.WriteString("UPDATE webhook_events SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ? WHERE state = 'pending' AND (id, lease_owner) IN (VALUES ")
	writeValues(&b, len(ids), 2)
	for i := range ids {
		args = append(args, ids[i], tokens[i])
	}
	b.WriteString(")")
	_, err := d.s.db.ExecContext(ctx, b.String(), args...)
	return err
}

// revocationsSeen reads PRAGMA data_version on the store's one connection:
// it changes whenever another connection (the CLI's `tokens revoke`) has
// committed, and a change forgets every cached token.
func (d *sqliteDriver) revocationsSeen(ctx context.Context) bool {
	c := &d.s.auth
	return c.versions.check(func() bool {
		st, err := d.versionStmt(ctx)
		if err != nil {
			return false
		}
		var v int64
		opened := d.conns.opens.Load()
		// Without ctx's end: the driver and database/sql would each start
		// a goroutine to watch it, for a read that takes microseconds
		// once the connection is free (and a transaction holds it for
		// a commit at most).
		if err := st.QueryRowContext(context.WithoutCancel(ctx)).Scan(&v); err != nil {
			return false
		}
		if d.conns.opens.Load() != opened { // read on a connection opened meanwhile
			c.invalidate()
			return false
		}
		c.observe(v, opened)
		return true
	})
}

// versionStmt returns the prepared PRAGMA data_version: read for most API
// requests, its parse was half of the read's cost.
func (d *sqliteDriver) versionStmt(ctx context.Context) (*sql.Stmt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version == nil {
		if err := d.prepare(ctx, []**sql.Stmt{&d.version}, []string{"PRAGMA data_version"}); err != nil {
			return nil, err
		}
	}
	return d.version, nil
}

// scrub zeroes what the writes free, and undo folds the WAL in and
// empties it: overwritten values survive neither in free space nor in the
// WAL. (SQLite has one connection, so the pragma applies to the writes.)
func (d *sqliteDriver) scrub(ctx context.Context) (func(), error) {
	if _, err := d.s.db.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return nil, err
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		_, _ = d.s.db.ExecContext(ctx, "PRAGMA secure_delete = OFF")
		_, _ = d.s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}, nil
}
