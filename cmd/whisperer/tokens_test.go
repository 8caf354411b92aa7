package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app/apptest"
	"github.com/whisperer/whisperer/internal/poll"
)

// `tokens revoke PREFIX` refuses a prefix two users' tokens share (it used
// to revoke both), and a revocation is honoured at once by a server on the
// same database whose cache holds the token.
func TestTokensRevokeSharedPrefix(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			ctx := context.Background()
			// The server's store, with its authentication cache.
			srv, err := apptest.Open(ctx, d.env["WHISPERER_DATABASE_URL"], apptest.Options{AuthCacheTTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			if backend == apptest.Postgres {
				wctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- srv.WatchRevocations(wctx, nil) }()
				t.Cleanup(func() { cancel(); <-done })
			}
			keys := map[string]string{"alice": "0badc0de" + strings.Repeat("a", 32), "bob": "0badc0de" + strings.Repeat("b", 32)}
			for name, key := range keys {
				u, err := d.s.UserByName(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256([]byte(key))
				if _, err := d.s.DB().ExecContext(ctx, `INSERT INTO api_tokens (user_id, key_hash, prefix, created_at) VALUES (?, ?, ?, ?)`,
					u.ID, hex.EncodeToString(sum[:]), key[:8], time.Now().UTC()); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, code := d.run("tokens", "revoke", "0badc0de")
			if code != 1 || out != "" || !strings.Contains(stderr, `2 live tokens start with "0badc0de" (users alice, bob); give the whole token`) {
				t.Fatalf("shared prefix: code %d, stdout %q, stderr %q", code, out, stderr)
			}
			for _, key := range keys {
				if _, err := srv.Authenticate(ctx, key); err != nil {
					t.Fatalf("a refused revocation revoked a token: %v", err)
				}
			}
			if out, stderr, code := d.run("tokens", "revoke", keys["alice"]); code != 0 || out != "revoked 1 token\n" {
				t.Fatalf("whole key: code %d, stdout %q, stderr %q", code, out, stderr)
			}
			refused := func() bool {
				_, err := srv.Authenticate(ctx, keys["alice"])
				return errors.Is(err, apptest.ErrUnauthenticated)
			}
			// SQLite: the next request; PostgreSQL: when the notification
			// arrives.
			if backend == apptest.SQLite {
				if !refused() {
					t.Fatal("the server accepted a token the CLI had revoked")
				}
			} else {
				poll.Until(t, 10*time.Second, "the server to refuse the token the CLI had revoked", refused)
			}
			if _, err := srv.Authenticate(ctx, keys["bob"]); err != nil {
				t.Fatalf("bob's token refused: %v", err)
			}
		})
	}
}

// An unknown token is a clear error that shows no more than the first 8
// characters of what was given.
func TestTokensRevokeUnknown(t *testing.T) {
	d := newCLIDB(t, apptest.SQLite)
	secretTail := strings.Repeat("z", 32)
	for arg, want := range map[string]string{
		"deadbeef":              `no live token matches the prefix "deadbeef": give a live token whole or its first 8 characters`,
		"deadbeef" + secretTail: `no live token matches the token starting "deadbeef": give a live token whole or its first 8 characters`,
	} {
		out, stderr, code := d.run("tokens", "revoke", arg)
		if code != 1 || out != "" || !strings.Contains(stderr, want) || strings.Contains(stderr, "zzz") ||
			strings.Contains(stderr, "webhook:") {
			t.Errorf("revoke %.8s…: code %d, stdout %q, stderr %q", arg, code, out, stderr)
		}
	}
}
