package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A console session lives until sign-out, expiry or its token's
// revocation, and only its hash is stored.
func TestConsoleSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		alice, key := storetest.User(t, s, "alice", webhook.RoleAdmin)
		if _, _, err := s.CreateSession(ctx, "nonsense", time.Hour); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("CreateSession(unknown key) = %v, want ErrUnauthenticated", err)
		}
		id, sess, err := s.CreateSession(ctx, key, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 64 || len(sess.CSRF) != 64 || sess.User.ID != alice.ID || sess.User.Role != webhook.RoleAdmin {
			t.Fatalf("CreateSession = %q, %+v", id, sess)
		}
		var stored int
		sum := sha256.Sum256([]byte(id))
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = ? OR id_hash = ?`,
			hex.EncodeToString(sum[:]), id).Scan(&stored); err != nil || stored != 1 {
			t.Fatalf("sessions stored by hash: %d, %v", stored, err)
		}
		var clear int
		_ = s.DB().QueryRowContext(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = ?`, id).Scan(&clear)
		if clear != 0 {
			t.Fatal("the session id is stored in clear")
		}
		got, err := s.Session(ctx, id)
		if err != nil || got.User.Username != "alice" || got.CSRF != sess.CSRF || !got.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Fatalf("Session = %+v, %v; want %+v", got, err, sess)
		}
		other := id[:63] + "0" // another id: its last digit changed
		if id[63] == '0' {
			other = id[:63] + "1"
		}
		if _, err := s.Session(ctx, other); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("Session(other id) = %v", err)
		}

		// Sign-out.
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("Session after sign-out = %v", err)
		}

		// Expiry, by the store's clock.
		id, _, _ = s.CreateSession(ctx, key, time.Hour)
		s.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
		if _, err := s.Session(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("Session after expiry = %v", err)
		}
		s.SetClock(time.Now)

		// A revoked token ends its sessions.
		id, _, _ = s.CreateSession(ctx, key, time.Hour)
		if _, err := s.RevokeToken(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("Session after revocation = %v", err)
		}
		if _, _, err := s.CreateSession(ctx, key, time.Hour); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("CreateSession(revoked key) = %v", err)
		}
	})
}

// One token keeps a bounded number of sessions: signing in again and again
// ends the oldest.
func TestConsoleSessionsBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		_, key := storetest.User(t, s, "bob", webhook.RoleUser)
		first, _, err := s.CreateSession(ctx, key, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		clock := time.Now()
		for i := range 30 {
			s.SetClock(func() time.Time { return clock.Add(time.Duration(i+1) * time.Second) })
			if _, _, err := s.CreateSession(ctx, key, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM console_sessions`).Scan(&n); err != nil || n != 20 {
			t.Fatalf("%d sessions kept (%v), want 20", n, err)
		}
		if _, err := s.Session(ctx, first); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("the oldest session survived: %v", err)
		}
	})
}
