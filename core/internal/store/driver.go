package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// driver is what differs between the two databases: each dialect's SQL and
// behaviour lives in sqlite.go or postgres.go, behind this one interface,
// so that the rest of the package states each operation once (the shape of
// riverqueue/river's drivers). storetest.Each is the behaviour suite both
// must pass.
type driver interface {
	// name is the dialect, SQLite or Postgres: Store.Dialect and the
	// directory of the migrations.
	name() string
	// supportsListener reports whether the database announces other
	// processes' writes (LISTEN/NOTIFY). Without it, it is one node's.
	supportsListener() bool
	// notify announces on channel through db, at commit when db is a
	// transaction; without a listener it does nothing.
	notify(ctx context.Context, db bun.IDB, channel string) error
	// lower is the name of a lower() that folds all of Unicode.
	lower() string
	// unindexed makes column a term no index serves (SQLite, which has no
	// statistics, takes a heuristic's word for an index's worth); on
	// PostgreSQL, which has, the planner chooses and it is column.
	unindexed(column string) string
	// clock returns the SQL of "now" in µs for a queue time, and its
	// arguments: every queue time is measured on the same clock.
	clock() (string, []any)
	// skipLocked makes q lock the rows it selects, leaving those another
	// transaction holds for a later run.
	skipLocked(q *bun.SelectQuery) *bun.SelectQuery
	// lockMigrations makes nodes starting at once migrate one at a time.
	lockMigrations(ctx context.Context, tx bun.Tx) error
	// migrationsTableSQL counts the schema_migrations tables (0 or 1).
	migrationsTableSQL() string

	// publish writes reqs, their payloads compacted, in one transaction:
	// for each, its message and one pending event per active hook of its
	// type. A request of an unknown event type gets a
	// *webhook.UnknownEventTypeError in errs and writes nothing; err is the
	// transaction's failure, when nothing was written. The first
	// lease.limit new rows of requests without a hold are written leased
	// under lease.token and returned in Published.Jobs, with their hooks,
	// as claimDue returns them, and announce nothing.
	publish(ctx context.Context, reqs []webhook.PublishRequest, payloads []string, lease publishLease) (out []webhook.Published, errs []error, err error)
	// claimDue leases up to limit due events under token, oldest due
	// first; claimEvents the claimable ones of ids (see Store.ClaimEvents).
	claimDue(ctx context.Context, token string, lease time.Duration, limit int) ([]webhook.Job, error)
	claimEvents(ctx context.Context, token string, lease time.Duration, ids []int64) ([]webhook.Job, error)
	// complete writes results (one per event and lease) and their hooks'
	// health (see Store.Complete and health.go), and reports the given-up
	// results it wrote and the hooks it deactivated (ops.go).
	complete(ctx context.Context, results []webhook.Result, now time.Time) (completed, error)
	// giveBack clears the leases (tokens[i] of event ids[i]) of pending
	// events and makes them due at until, by the store's clock.
	giveBack(ctx context.Context, ids []int64, tokens []string, until time.Time) error
	// revocationsSeen reports whether the authentication cache has caught
	// up with the revocations other processes made (see authCache).
	revocationsSeen(ctx context.Context) bool
	// scrub makes the writes that follow leave no trace of the values they
	// overwrite, until undo.
	scrub(ctx context.Context) (undo func(), err error)
	// analyzeGrown refreshes the planner's statistics of the queue's
	// tables that grew past them (see Store.AnalyzeGrown).
	analyzeGrown(ctx context.Context) ([]string, error)
	// close releases what the driver holds beside the connection pool.
	close()
}
