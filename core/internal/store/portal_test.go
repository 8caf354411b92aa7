package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A portal code is stored by its hash, works once and briefly, and opens
// a session limited to its user (as a plain user) and capabilities.
func TestPortalCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		root, _ := storetest.User(t, s, "root", webhook.RoleAdmin)
		if _, _, _, err := s.CreatePortalCode(ctx, "nobody", []string{"read"}, time.Hour); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		u, code, expires, err := s.CreatePortalCode(ctx, "root", []string{"read", "redeliver"}, time.Hour)
		if err != nil || u.ID != root.ID || len(code) != 64 || time.Until(expires) > store.PortalCodeTTL {
			t.Fatalf("CreatePortalCode = %v %q %v %v", u, code, expires, err)
		}
		var clear int
		_ = s.DB().QueryRowContext(ctx, `SELECT count(*) FROM portal_codes WHERE code_hash = ?`, code).Scan(&clear)
		if clear != 0 {
			t.Fatal("the code is stored in clear")
		}
		id, sess, err := s.RedeemPortalCode(ctx, code)
		if err != nil || !sess.Portal || sess.User.ID != root.ID || sess.User.Role != webhook.RoleUser ||
			!reflect.DeepEqual(sess.Capabilities, []string{"read", "redeliver"}) || sess.Can(webhook.CapManageHooks) || !sess.Can(webhook.CapRedeliver) {
			t.Fatalf("RedeemPortalCode = %+v, %v", sess, err)
		}
		if time.Until(sess.ExpiresAt) < 59*time.Minute {
			t.Fatalf("session ends at %v, want in an hour", sess.ExpiresAt)
		}
		if _, _, err := s.RedeemPortalCode(ctx, code); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("second use: %v", err)
		}
		got, err := s.PortalSession(ctx, id)
		if err != nil || got.User.ID != root.ID || got.CSRF != sess.CSRF || !got.Portal {
			t.Fatalf("PortalSession = %+v, %v", got, err)
		}
		// A portal session is not a console session, nor the reverse.
		if _, err := s.Session(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("Session(portal id) = %v", err)
		}
		if err := s.DeletePortalSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PortalSession(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("after delete: %v", err)
		}
		// Expiry of a code, and of a session, by the store's clock.
		_, code, _, _ = s.CreatePortalCode(ctx, "root", []string{"read"}, time.Minute)
		_, code2, _, _ := s.CreatePortalCode(ctx, "root", []string{"read"}, time.Minute)
		id, _, _ = s.RedeemPortalCode(ctx, code2)
		s.SetClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
		defer s.SetClock(time.Now)
		if _, _, err := s.RedeemPortalCode(ctx, code); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("expired code: %v", err)
		}
		if _, err := s.PortalSession(ctx, id); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("expired session: %v", err)
		}
	})
}

// Migration 006 adds the portal's and rollups' tables to a database of an earlier
// release in place: its rows are all there and portals work.
func TestPortalMigratesLegacy(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := migrateLegacy(t, backend, 5)
			_, code, _, err := s.CreatePortalCode(ctx, "alice", []string{"read"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, sess, err := s.RedeemPortalCode(ctx, code); err != nil || sess.User.ID != 1 {
				t.Fatalf("redeem on a migrated database: %+v %v", sess, err)
			}
			if h, err := s.Webhook(ctx, webhook.Scope{UserID: 1}, 1); err != nil || h.SecretKey != storetest.LegacySecret {
				t.Fatalf("legacy hook: %v", err)
			}
		})
	}
}
