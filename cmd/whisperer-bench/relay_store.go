package main

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the relay's SQLite, as the server's
)

// The relay's one table. It is named and shaped as far as the tool's
// checks read it (id, uuid, webhook_id, state) like Whisperer's
// webhook_events, with the event's type and payload in the row: one row,
// one index (the primary key) per event.
const (
	relaySchemaPG = `CREATE TABLE IF NOT EXISTS webhook_events (id bigint PRIMARY KEY, uuid text NOT NULL,
	webhook_id bigint NOT NULL DEFAULT 1, event_type text NOT NULL, payload text NOT NULL,
	state text NOT NULL DEFAULT 'pending', created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, delivered_at timestamptz)`
	relaySchemaSQLite = `CREATE TABLE IF NOT EXISTS webhook_events (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL,
	webhook_id INTEGER NOT NULL DEFAULT 1, event_type TEXT NOT NULL, payload TEXT NOT NULL,
	state TEXT NOT NULL DEFAULT 'pending', created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, delivered_at TEXT)`
	relayPending = `SELECT id, uuid, event_type, payload FROM webhook_events WHERE state = 'pending' ORDER BY id`
	relayMaxID   = `SELECT COALESCE(MAX(id), 0) FROM webhook_events`
)

// relayPG is PostgreSQL through pgx's own interface, each statement
// prepared once (pgx's statement cache) and autocommitted: one round
// trip and one commit per batch. Publishes and results have a connection
// each, used by one goroutine each.
type relayPG struct{ ins, res *pgx.Conn }

func openRelayPostgres(ctx context.Context, dsn string) (*relayPG, error) {
	s := &relayPG{}
	var err error
	if s.ins, err = pgx.Connect(ctx, dsn); err != nil {
		return nil, err
	}
	if s.res, err = pgx.Connect(ctx, dsn); err != nil {
		s.ins.Close(ctx)
		return nil, err
	}
	if _, err = s.ins.Exec(ctx, relaySchemaPG); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *relayPG) insert(ctx context.Context, evs []*relayEvent) error {
	ids, uuids, types, payloads := make([]int64, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
	for i, ev := range evs {
		ids[i], uuids[i], types[i], payloads[i] = ev.id, ev.uuid, ev.typ, string(ev.payload)
	}
	_, err := s.ins.Exec(ctx, `INSERT INTO webhook_events (id, uuid, event_type, payload)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])`, ids, uuids, types, payloads)
	return err
}

// delivered's statement is joined by the primary key at any table size:
// the condition on the batch makes the planner expect one row of it (the
// server's fewRows). With `id = ANY($1)`, the generic plan PostgreSQL
// keeps after five runs on the new, small table is a sequential scan, and
// every result then reads the whole table.
func (s *relayPG) delivered(ctx context.Context, ids []int64) error {
	_, err := s.res.Exec(ctx, `UPDATE webhook_events e SET state = 'delivered', delivered_at = CURRENT_TIMESTAMP
		FROM unnest($1::bigint[]) AS i(id) WHERE e.id = i.id AND i.id BETWEEN 1 AND 9223372036854775807`, ids)
	return err
}

func (s *relayPG) pending(ctx context.Context) ([]*relayEvent, int64, error) {
	var maxID int64
	if err := s.ins.QueryRow(ctx, relayMaxID).Scan(&maxID); err != nil {
		return nil, 0, err
	}
	rows, _ := s.ins.Query(ctx, relayPending)
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*relayEvent, error) {
		ev := &relayEvent{}
		return ev, row.Scan(&ev.id, &ev.uuid, &ev.typ, &ev.payload)
	})
	return evs, maxID, err
}

func (s *relayPG) close() {
	s.ins.Close(context.Background())
	s.res.Close(context.Background())
}

// relaySQLite is one SQLite connection in WAL mode with Whisperer's
// settings (synchronous NORMAL: a commit survives the process; BEGIN
// IMMEDIATE): one writer, one statement per batch, prepared once for each
// batch size.
type relaySQLite struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt // by SQL; used by the one connection's callers in turn
	mu    sync.Mutex
}

func openRelaySQLite(ctx context.Context, file string) (*relaySQLite, error) {
	q := url.Values{"_pragma": {"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)"}, "_txlock": {"immediate"}}
	db, err := sql.Open("sqlite", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err = db.ExecContext(ctx, relaySchemaSQLite); err != nil {
		db.Close()
		return nil, err
	}
	return &relaySQLite{db: db, stmts: map[string]*sql.Stmt{}}, nil
}

func (s *relaySQLite) insert(ctx context.Context, evs []*relayEvent) error {
	args := make([]any, 0, 4*len(evs))
	for _, ev := range evs {
		args = append(args, ev.id, ev.uuid, ev.typ, ev.payload)
	}
	return s.exec(ctx, "INSERT INTO webhook_events (id, uuid, event_type, payload) VALUES "+marks("(?, ?, ?, ?)", len(evs)), args)
}

func (s *relaySQLite) delivered(ctx context.Context, ids []int64) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.exec(ctx, "UPDATE webhook_events SET state = 'delivered', delivered_at = CURRENT_TIMESTAMP WHERE id IN ("+marks("?", len(ids))+")", args)
}

// exec runs q, prepared the first time, autocommitted.
func (s *relaySQLite) exec(ctx context.Context, q string, args []any) error {
	s.mu.Lock()
	st, ok := s.stmts[q]
	if !ok {
		var err error
		if st, err = s.db.PrepareContext(ctx, q); err != nil {
			s.mu.Unlock()
			return err
		}
		s.stmts[q] = st
	}
	s.mu.Unlock()
	_, err := st.ExecContext(ctx, args...)
	return err
}

// marks is n copies of one, comma-separated.
func marks(one string, n int) string {
	return strings.Repeat(one+", ", n-1) + one
}

func (s *relaySQLite) pending(ctx context.Context) ([]*relayEvent, int64, error) {
	var maxID int64
	if err := s.db.QueryRowContext(ctx, relayMaxID).Scan(&maxID); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, relayPending)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var evs []*relayEvent
	for rows.Next() {
		ev := &relayEvent{}
		if err := rows.Scan(&ev.id, &ev.uuid, &ev.typ, &ev.payload); err != nil {
			return nil, 0, err
		}
		evs = append(evs, ev)
	}
	return evs, maxID, rows.Err()
}

func (s *relaySQLite) close() { s.db.Close() }
