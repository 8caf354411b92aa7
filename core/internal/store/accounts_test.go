package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// addToken stores key for userID as CreateToken does, so that two tokens
// can share a prefix.
func addToken(t *testing.T, s *store.Store, userID int64, key string) {
	t.Helper()
	sum := sha256.Sum256([]byte(key))
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO api_tokens (user_id, key_hash, prefix, created_at) VALUES (?, ?, ?, ?)`,
		userID, hex.EncodeToString(sum[:]), key[:8], time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
}

// A prefix two users' live tokens share revokes neither: it used to revoke
// both.
func TestRevokeAmbiguousPrefix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bob, _ := storetest.User(t, s, "bob", webhook.RoleUser)
		const prefix = "abcdef01"
		ka, kb := prefix+strings.Repeat("a", 32), prefix+strings.Repeat("b", 32)
		addToken(t, s, alice.ID, ka)
		addToken(t, s, bob.ID, kb)
		n, err := s.RevokeToken(ctx, prefix)
		var conflict *webhook.ConflictError
		if !errors.As(err, &conflict) || n != 0 || !strings.Contains(err.Error(), "2 live tokens start with \"abcdef01\" (users alice, bob)") {
			t.Fatalf("RevokeToken(shared prefix) = %d, %v; want a conflict naming both users", n, err)
		}
		for _, k := range []string{ka, kb} {
			if _, err := s.Authenticate(ctx, k); err != nil {
				t.Fatalf("a refused prefix revoked a token: %v", err)
			}
		}
		// The whole key revokes one; then the prefix is unique again.
		if n, err := s.RevokeToken(ctx, ka); n != 1 || err != nil {
			t.Fatalf("RevokeToken(key) = %d, %v", n, err)
		}
		if _, err := s.Authenticate(ctx, kb); err != nil {
			t.Fatalf("revoking alice's key revoked bob's: %v", err)
		}
		if n, err := s.RevokeToken(ctx, prefix); n != 1 || err != nil {
			t.Fatalf("RevokeToken(unique prefix) = %d, %v", n, err)
		}
		for _, k := range []string{ka, kb} {
			if _, err := s.Authenticate(ctx, k); !errors.Is(err, webhook.ErrUnauthenticated) {
				t.Fatalf("revoked token accepted: %v", err)
			}
		}
		// Nothing left to match; odd inputs are not found, never a wildcard.
		for _, in := range []string{prefix, "%%%%%%%%", "abcdef0_", "", ka} {
			if _, err := s.RevokeToken(ctx, in); !errors.Is(err, webhook.ErrNotFound) {
				t.Errorf("RevokeToken(%q) = %v, want not found", in, err)
			}
		}
	})
}

// A revocation made by another process on the same database (the CLI's
// `tokens revoke`) is honoured by a server whose cache holds the token: on
// SQLite by the very next request, on PostgreSQL as soon as the
// notification arrives. Two stores on one database are two processes'
// connections.
func TestRevocationByAnotherProcess(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := storetest.URL(t, backend)
			open := func(ttl time.Duration) *store.Store {
				s, err := store.Open(ctx, url, store.Options{AuthCacheTTL: ttl})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			server := open(time.Hour)
			if err := server.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if backend == store.Postgres {
				wctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- server.WatchRevocations(wctx, nil) }()
				t.Cleanup(func() { cancel(); <-done })
				poll.Until(t, 10*time.Second, "revocations to be watched", server.RevocationsWatched)
			}
			_, tok := storetest.User(t, server, "alice", webhook.RoleUser)
			_, other := storetest.User(t, server, "bob", webhook.RoleUser)
			for _, k := range []string{tok, other} {
				if _, err := server.Authenticate(ctx, k); err != nil { // now cached
					t.Fatal(err)
				}
			}
			cli := open(0)
			if _, err := cli.RevokeToken(ctx, tok[:8]); err != nil {
				t.Fatal(err)
			}
			refused := func() bool {
				_, err := server.Authenticate(ctx, tok)
				return errors.Is(err, webhook.ErrUnauthenticated)
			}
			if backend == store.SQLite {
				if !refused() {
					t.Fatal("the server accepted a token the CLI had revoked")
				}
			} else {
				poll.Until(t, 10*time.Second, "the revoked token to be refused", refused)
			}
			if _, err := server.Authenticate(ctx, other); err != nil {
				t.Fatalf("another token refused: %v", err)
			}
		})
	}
}

// BenchmarkAuthenticate measures one API request's authentication: from
// the cache (which on SQLite first reads PRAGMA data_version, on
// PostgreSQL only checks that revocations are watched) and without it.
func BenchmarkAuthenticate(b *testing.B) {
	for _, backend := range storetest.Backends {
		for _, ttl := range []time.Duration{time.Hour, 0} {
			name := backend + "/cached"
			if ttl == 0 {
				name = backend + "/uncached"
			}
			b.Run(name, func(b *testing.B) {
				s := storetest.NewWith(b, backend, store.Options{AuthCacheTTL: ttl})
				if backend == store.Postgres && ttl > 0 {
					wctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- s.WatchRevocations(wctx, nil) }()
					b.Cleanup(func() { cancel(); <-done })
					for !s.RevocationsWatched() {
						time.Sleep(time.Millisecond)
					}
				}
				_, tok := storetest.User(b, s, "bench", webhook.RoleUser)
				b.ResetTimer()
				for b.Loop() {
					if _, err := s.Authenticate(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
