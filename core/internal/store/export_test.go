package store

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"net"
	"reflect"

	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// RevocationsWatched reports whether WatchRevocations is listening.
func (s *Store) RevocationsWatched() bool { return s.auth.watching.Load() }

// SetAfterRedeliverRead makes Redeliver call fn between its read and its
// update, so a test can delete the event there.
func SetAfterRedeliverRead(s *Store, fn func()) { s.afterRedeliverRead = fn }

// SQLiteJobsSQL is the SQLite claim's read of its events as jobs.
var SQLiteJobsSQL = sqliteJobs

// SQLiteReprepares is how many times SQLite parsed and planned again each
// statement prepared on the store's one connection (its SQL → count):
// sqlite3_stmt_status(SQLITE_STMTSTATUS_REPREPARE), which no SQL reads.
// It reads the driver's connection handle by its layout in
// modernc.org/sqlite (db, then tls, first in its conn), checked by asking
// SQLite for the connection's file name first.
func SQLiteReprepares(s *Store, file string) (map[string]int, error) {
	conn, err := s.db.DB.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := map[string]int{}
	err = conn.Raw(func(dc any) error {
		h := (*struct {
			db  uintptr
			tls *libc.TLS
		})(reflect.ValueOf(dc).UnsafePointer())
		if h.db == 0 || h.tls == nil {
			return errors.New("modernc.org/sqlite's conn is not laid out as this test reads it")
		}
		main, err := libc.CString("main")
		if err != nil {
			return err
		}
		defer libc.Xfree(h.tls, main)
		name := libc.GoString(sqlite3.Xsqlite3_db_filename(h.tls, h.db, main))
		if name != file {
			return fmt.Errorf("modernc.org/sqlite's conn is not laid out as this test reads it (file %q)", name)
		}
		for p := sqlite3.Xsqlite3_next_stmt(h.tls, h.db, 0); p != 0; p = sqlite3.Xsqlite3_next_stmt(h.tls, h.db, p) {
			out[libc.GoString(sqlite3.Xsqlite3_sql(h.tls, p))] += int(sqlite3.Xsqlite3_stmt_status(h.tls, p, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0))
		}
		return nil
	})
	return out, err
}

// DropSQLiteConn makes database/sql discard the store's one connection (as
// after an interrupted statement: modernc.org/sqlite's ResetSession then
// reports it unusable), so the next statement opens a new one.
func DropSQLiteConn(s *Store) error {
	conn, err := s.db.DB.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.Raw(func(any) error { return sqldriver.ErrBadConn })
	return nil
}

// BreakPostgresConns fills the pool with n connections and closes each
// one's socket underneath pgx, which does not notice: the next statement
// on each fails before sending anything, as on a connection the server or
// a proxy closed while it was idle.
func BreakPostgresConns(s *Store, n int) error {
	ctx := context.Background()
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := s.db.DB.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		err := c.Raw(func(dc any) error { return dc.(*stdlib.Conn).Conn().PgConn().Conn().Close() })
		if err != nil && !errors.Is(err, net.ErrClosed) { // closed by an earlier call
			return err
		}
	}
	return nil
}

// HoldConn takes one of the store's connections (SQLite's only one) until
// release is called.
func HoldConn(s *Store) (release func(), err error) {
	c, err := s.db.DB.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	return func() { c.Close() }, nil
}
