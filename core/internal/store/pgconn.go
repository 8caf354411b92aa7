package store

import (
	"context"
	sqldriver "database/sql/driver"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The hot statements (publish, claim, complete, give back) run on the
// pooled connection's own pgx.Conn, taken from database/sql's pool with
// sql.Conn.Raw, not through DB.QueryContext: database/sql starts a
// goroutine for every query whose context can end (Rows.awaitDone, to
// close the rows then), and each start woke an idle thread — 1.3 per event
// at 150 events/s. pgx watches the context with context.AfterFunc, no
// goroutine. The connection, its prepared statements and the pool are the
// same either way.

// query runs q and yields each row of its answer; a failure, of the
// statement or of reading its answer, is yielded last, with nil rows, and
// the loop's body must check for it first. The connection goes back to
// the pool when the loop ends, however it ends: a body must not keep rows.
func (d *postgresDriver) query(ctx context.Context, q string, args ...any) iter.Seq2[pgx.Rows, error] {
	return func(yield func(pgx.Rows, error) bool) {
		stopped := false
		err := d.onConn(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if !yield(rows, nil) {
					stopped = true
					return nil
				}
			}
			rows.Close()
			return rows.Err()
		})
		if err != nil && !stopped {
			yield(nil, err)
		}
	}
}

// exec runs q, which returns no rows.
func (d *postgresDriver) exec(ctx context.Context, q string, args ...any) error {
	return d.onConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, q, args...)
		return err
	})
}

// onConn calls f with a pooled connection's pgx.Conn. A failure before
// anything was sent (the connection was closed while idle in the pool)
// discards that connection and tries another, up to one more than the
// pool holds: the last is a new one. A connection closed by a failure
// after sending is discarded when next taken from the pool
// (stdlib.Conn.ResetSession), as with database/sql's own queries.
func (d *postgresDriver) onConn(ctx context.Context, f func(*pgx.Conn) error) error {
	for try := 1; ; try++ {
		unsent, err := d.onConnOnce(ctx, f)
		if !unsent || try > d.s.db.DB.Stats().MaxOpenConnections {
			return err
		}
	}
}

// onConnOnce is one try of onConn; unsent reports a failure before
// anything was sent, on a connection now discarded.
func (d *postgresDriver) onConnOnce(ctx context.Context, f func(*pgx.Conn) error) (unsent bool, err error) {
	conn, err := d.s.db.DB.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: a PostgreSQL connection is a %T, not pgx's", dc)
		}
		err := f(c.Conn())
		if err != nil && pgconn.SafeToRetry(err) {
			unsent = true
			// Raw closes the connection on ErrBadConn, which also marks
			// the error unavailable (markUnavailable).
			return fmt.Errorf("%w: %w", sqldriver.ErrBadConn, err)
		}
		return err
	})
	return unsent, err
}
