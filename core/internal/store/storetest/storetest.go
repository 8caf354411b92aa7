// Package storetest opens real, isolated, migrated stores for tests: a
// fresh SQLite file, or a fresh schema on a real PostgreSQL server.
//
// PostgreSQL tests use WHISPERER_TEST_POSTGRES_DSN (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). They skip with
// a message when no server answers, unless WHISPERER_TEST_POSTGRES=1, which
// makes an unreachable server a failure (CI sets it).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Key is the encryption key (security.encryption_keys) of test stores
// and test servers: PostgreSQL nodes refuse to start without one, and a
// test that opens a store beside a server must open its secrets too.
const Key = "d2hpc3BlcmVyIHRlc3Qga2V5LCBub3Qgc2VjcmV0ISE="

// Keyring is the keyring of Key.
func Keyring() *secret.Keyring {
	r, err := secret.ParseKeyring(Key)
	if err != nil {
		panic(err)
	}
	return r
}

// DefaultPostgresDSN is the development machines' PostgreSQL.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Backends are the dialects every behaviour test runs on.
var Backends = []string{store.SQLite, store.Postgres}

// Each runs fn as a parallel subtest on each backend, with a store of its
// own (see URL): nothing is shared between subtests, so they run beside
// each other and beside the other tests' subtests. A test calling Each may
// not use t.Setenv, and nothing after Each in it waits for the subtests.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	EachWith(t, store.Options{}, fn)
}

// PostgresDSN returns the base DSN tests use.
func PostgresDSN() string {
	if dsn := os.Getenv("WHISPERER_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

var (
	pgOnce sync.Once
	pgErr  error
)

// RequirePostgres skips t (or fails it when WHISPERER_TEST_POSTGRES=1) when
// no PostgreSQL server answers.
func RequirePostgres(t testing.TB) {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, PostgresDSN())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		pgErr = err
	})
	if pgErr == nil {
		return
	}
	if os.Getenv("WHISPERER_TEST_POSTGRES") == "1" {
		t.Fatalf("PostgreSQL is required (WHISPERER_TEST_POSTGRES=1) but %s is unreachable: %v", redacted(), pgErr)
	}
	t.Skipf("skipping PostgreSQL test: %s is unreachable (%v); set WHISPERER_TEST_POSTGRES_DSN", redacted(), pgErr)
}

func redacted() string {
	u, err := url.Parse(PostgresDSN())
	if err != nil {
		return "the PostgreSQL DSN"
	}
	return u.Redacted()
}

// URL returns a database URL for a fresh, empty database on backend,
// dropped when t ends: a file in a directory of t's own on SQLite, a
// schema of its own (random name) on PostgreSQL, so that tests run in
// parallel.
func URL(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case store.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "whisperer.db")
	case store.Postgres:
		RequirePostgres(t)
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "t_" + hex.EncodeToString(b[:])
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, PostgresDSN())
		if err != nil {
			t.Fatalf("connect to PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(ctx, PostgresDSN())
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		})
		u, _ := url.Parse(PostgresDSN())
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	t.Fatalf("unknown backend %q", backend)
	return ""
}

// EachWith is Each with stores opened with opts.
func EachWith(t *testing.T, opts store.Options, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			fn(t, NewWith(t, b, opts))
		})
	}
}

// New opens a migrated store on a fresh database of backend, closed when t
// ends.
func New(t testing.TB, backend string) *store.Store {
	t.Helper()
	return NewWith(t, backend, store.Options{})
}

// NewWith is New with opts; MaxOpenConns defaults to 8 and Sealer to
// Keyring().
func NewWith(t testing.TB, backend string, opts store.Options) *store.Store {
	t.Helper()
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = 8
	}
	if opts.Sealer == nil {
		opts.Sealer = Keyring()
	}
	return Open(t, URL(t, backend), opts)
}

// Open opens a store on url (from URL: several stores on one database are
// several nodes) and migrates it; it is closed when t ends.
func Open(t testing.TB, url string, opts store.Options) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate store: %v", err)
	}
	return s
}

// User creates a user with role and returns it with a fresh token.
func User(t testing.TB, s *store.Store, name string, role webhook.Role) (webhook.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, name, role)
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	tok, err := s.CreateToken(ctx, u.ID)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return u, tok
}

// Hook registers an active hook of userID for eventType at target, with the
// event type registered first and a fixed 1-second countdown.
func Hook(t testing.TB, s *store.Store, userID int64, eventType, target string, mutate ...func(*webhook.Webhook)) webhook.Webhook {
	t.Helper()
	ctx := context.Background()
	add := func() error { return s.AddEventTypes(ctx, eventType) }
	if webhook.Reserved(eventType) {
		add = func() error { return s.AddOpsEventTypes(ctx) }
	}
	if err := add(); err != nil {
		t.Fatal(err)
	}
	w := webhook.Webhook{
		UserID: userID, TargetURL: target, EventType: eventType, IsActive: true,
		RetryCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":1}`)},
	}
	for _, m := range mutate {
		m(&w)
	}
	w, err := s.CreateWebhook(ctx, w)
	if err != nil {
		t.Fatalf("create hook: %v", err)
	}
	return w
}

// Publish publishes payload as eventType and fails t on error.
func Publish(t testing.TB, s *store.Store, eventType string, payload string) []webhook.Event {
	t.Helper()
	p, err := s.Publish(context.Background(), webhook.PublishRequest{EventType: eventType, Payload: json.RawMessage(payload)})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return p.Events
}
