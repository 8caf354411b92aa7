// Package store is Whisperer's persistence on SQLite (the embedded default,
// pure Go) and PostgreSQL (production, multi-node), through bun. The
// webhook_events table is also the delivery queue: a row is the job.
package store

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

//go:embed migrations
var migrations embed.FS

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxOpenConns bounds PostgreSQL connections. Defaults to
	// DefaultMaxOpenConns, the server's database.max_open_conns. SQLite
	// always uses one connection: it has a single writer, and one
	// connection makes that explicit instead of a busy-retry loop.
	MaxOpenConns int
	// AuthCacheTTL is how long Authenticate remembers a verified token.
	// A revocation by another process is still honoured at once on SQLite
	// and when its notification arrives on PostgreSQL, where the cache is
	// used only while WatchRevocations listens (see authCache). Zero
	// disables the cache.
	AuthCacheTTL time.Duration
	// DisableAfter deactivates a hook whose attempts have all failed for
	// this long (measured between its attempts' times). If zero, failing
	// hooks are never deactivated for it (a 410 Gone still deactivates).
	DisableAfter time.Duration
	// Sealer encrypts the hooks' secrets at rest (see secrets.go). Nil
	// writes them in clear and cannot read sealed ones: for tools and
	// tests only; the server always sets it.
	Sealer Sealer
}

// DefaultMaxOpenConns is Options.MaxOpenConns's default.
const DefaultMaxOpenConns = 20

// Store is the database. It is safe for concurrent use. After Close every
// method fails.
type Store struct {
	db   *bun.DB
	drv  driver // the dialect's SQL and behaviour
	dsn  string // PostgreSQL DSN, for LISTEN connections
	now  func() time.Time
	auth authCache
	// disableAfter is Options.DisableAfter.
	disableAfter time.Duration
	sealer       Sealer
	rollups      rollupState // rollup.go
	changes      changesSink // ops.go
	// filters caches the compiled filters of hooks, filtered the filtered
	// hooks of event types (fanout.go).
	filters  filterCache
	filtered filteredCache
	// pluginFilters and filterFailed run plugin filters and hear of their
	// failures (SetPluginFilters).
	pluginFilters filter.Plugins
	filterFailed  func(name string, err error)
	// tag names this store in the notifications of its publishes, so that
	// its own listener skips them (Listen).
	tag string

	// afterRedeliverRead, when set (tests), runs between Redeliver's read
	// and its update: where retention can delete the event.
	afterRedeliverRead func()
}

// Open connects to url ("sqlite://path", "sqlite://:memory:" or
// "postgres://…") and checks that the database answers, creating a SQLite
// file that does not exist. It does not migrate.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	return open(ctx, rawURL, opts, true)
}

// ErrNoDatabase is OpenExisting's error when the SQLite file is missing.
var ErrNoDatabase = errors.New("no database")

// OpenExisting is Open for tools that only read: a missing SQLite file is
// ErrNoDatabase (wrapped with its path), not created.
func OpenExisting(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	return open(ctx, rawURL, opts, false)
}

func open(ctx context.Context, rawURL string, opts Options, create bool) (*Store, error) {
	s := &Store{now: time.Now, auth: authCache{ttl: opts.AuthCacheTTL}, disableAfter: max(opts.DisableAfter, 0),
		sealer: opts.Sealer, tag: newLeaseToken("store")}
	var sqliteFile string
	var err error
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		var conns *sqliteConnector
		s.db, conns, sqliteFile, err = openSQLite(strings.TrimPrefix(rawURL, "sqlite://"), create)
		s.drv = &sqliteDriver{s: s, conns: conns}
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		s.db, err = openPostgres(rawURL, cmpOr(opts.MaxOpenConns, DefaultMaxOpenConns))
		s.drv = &postgresDriver{s: s}
		s.dsn = rawURL
	default:
		return nil, fmt.Errorf("open database: unsupported url %q (want sqlite://FILE or postgres://…)", redact(rawURL))
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if sqliteFile != "" {
		// Ping opened the connection, which created -wal and -shm.
		if err := restrictFiles(sqliteFile); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	return s, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// redact hides a password in a database URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Dialect returns SQLite or Postgres.
func (s *Store) Dialect() string { return s.drv.name() }

// DB exposes the bun handle for tests and tools.
func (s *Store) DB() *bun.DB { return s.db }

// SetClock replaces time.Now, for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the database.
func (s *Store) Close() error {
	s.drv.close()
	return s.db.Close()
}

// Ping reports whether the database answers; a failure wraps
// webhook.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %v", webhook.ErrUnavailable, err)
	}
	return nil
}

// Migrate applies the embedded migrations not yet applied, each in its own
// transaction. On PostgreSQL an advisory lock lets several nodes start at
// once.
func (s *Store) Migrate(ctx context.Context) error { return s.MigrateTo(ctx, 1<<30) }

// MigrateTo applies the migrations numbered up to last: the schema the
// release that shipped last left, for upgrade tests.
func (s *Store) MigrateTo(ctx context.Context, last int) error {
	dir := path.Join("migrations", s.drv.name())
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		if version > last {
			break
		}
		body, err := migrations.ReadFile(path.Join(dir, name))
		if err != nil {
			return err
		}
		err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if err := s.drv.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitSQL(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, version, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// PendingMigrations lists the embedded migrations the database has not
// applied, reading only: every one of them when it has no schema at all.
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	dir := path.Join("migrations", s.drv.name())
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.drv.migrationsTableSQL()).Scan(&n); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	applied := map[int]bool{}
	if n > 0 {
		var versions []int
		if err := s.db.NewSelect().Table("schema_migrations").Column("version").Scan(ctx, &versions); err != nil {
			return nil, fmt.Errorf("read schema version: %w", err)
		}
		for _, v := range versions {
			applied[v] = true
		}
	}
	var pending []string
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil || !applied[v] {
			pending = append(pending, e.Name())
		}
	}
	sort.Strings(pending)
	return pending, nil
}

// splitSQL splits a migration on the semicolons that end lines, outside
// a $$-quoted body (a PL/pgSQL function's or a DO block's). It knows only
// what the migrations use: whole-line -- comments, bare $$ (no $tag$), no
// $$ inside a string or a comment of a body, and no statement ending in
// a comment on its line.
func splitSQL(body string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, line := range strings.Split(body, "\n") {
		if !quoted && strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
		if strings.Count(line, "$$")%2 == 1 {
			quoted = !quoted
		}
		if !quoted && strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		out = append(out, s)
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// isUniqueViolation reports a unique-constraint error on either dialect.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

// notFound maps sql.ErrNoRows to webhook.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.ErrNotFound
	}
	return err
}

// markUnavailable makes *err a webhook.ErrUnavailable, keeping its text and
// chain, when it says the database cannot be reached (the pool closed, a
// broken connection, a network failure or timeout) rather than a bug. The
// methods the API calls defer it, so that the API needs only
// webhook.ErrUnavailable to answer 503 and never reads a driver's errors.
func markUnavailable(err *error) {
	if *err == nil || errors.Is(*err, webhook.ErrUnavailable) {
		return
	}
	var ne net.Error
	if errors.Is(*err, sql.ErrConnDone) || errors.Is(*err, sqldriver.ErrBadConn) || errors.As(*err, &ne) {
		*err = unavailableError{*err}
	}
}

// unavailableError is an error of the database's, marked unavailable.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{webhook.ErrUnavailable, e.err} }
