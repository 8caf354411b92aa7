package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A target_url with credentials, written by a release that accepted them,
// loses them to config.auth (password sealed) on the sealing pass; a hook
// with a config.auth keeps it; a hook whose stripped URL is another hook's
// is left alone and reported; an "@" outside the userinfo is no credential.
func TestSealSecretsMovesURLCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		// Hook 1 sealed under the current key, so the key pass skips it.
		h1 := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/one")
		h2 := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/two", func(w *webhook.Webhook) {
			w.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "bob", "password": "kept-pw"}}
		})
		taken := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/three")
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`UPDATE webhooks SET target_url = ? WHERE id = ?`, "https://carol:URLPW%40one@a.example/one?x=1", h1.ID)
		exec(`UPDATE webhooks SET target_url = ? WHERE id = ?`, "https://dave:URLPW-two@a.example/two", h2.ID)
		// Hooks 4 to 6 in clear, as before encryption.
		for _, r := range []struct {
			id     int64
			target string
		}{{taken.ID + 1, "https://eve:URLPW-three@a.example/three"}, {taken.ID + 2, "https://a.example/four?mail=a@b.example"},
			{taken.ID + 3, "https://frank@a.example/five"}} {
			exec(`INSERT INTO webhooks (id, user_id, target_url, event_type, retry_countdown_config, created_at, modified_at)
				VALUES (?, ?, ?, 'order-created', '{"choice":"fixed","kwargs":{"seconds":1}}', ?, ?)`,
				r.id, u.ID, r.target, h1.CreatedAt, h1.CreatedAt)
		}
		p, err := s.SealSecrets(ctx, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.URLs != 3 || !slices.Equal(p.URLsKept, []int64{taken.ID + 1}) {
			t.Fatalf("progress %+v; want 3 URLs moved, hook %d kept", p, taken.ID+1)
		}
		want := []struct {
			id     int64
			target string
			auth   webhook.BasicAuth
			hasAut bool
		}{
			{h1.ID, "https://a.example/one?x=1", webhook.BasicAuth{Username: "carol", Password: "URLPW@one"}, true},
			{h2.ID, "https://a.example/two", webhook.BasicAuth{Username: "bob", Password: "kept-pw"}, true},
			{taken.ID + 1, "https://eve:URLPW-three@a.example/three", webhook.BasicAuth{}, false},
			{taken.ID + 2, "https://a.example/four?mail=a@b.example", webhook.BasicAuth{}, false},
			{taken.ID + 3, "https://a.example/five", webhook.BasicAuth{Username: "frank"}, true},
		}
		for _, w := range want {
			h, err := s.Webhook(ctx, webhook.Scope{All: true}, w.id)
			if err != nil {
				t.Fatal(err)
			}
			auth, ok := h.BasicAuth()
			if h.TargetURL != w.target || auth != w.auth || ok != w.hasAut {
				t.Errorf("hook %d: %q %+v %v; want %q %+v", w.id, h.TargetURL, auth, ok, w.target, w.auth)
			}
		}
		var raw []struct {
			Target string `bun:"target_url"`
			Config string `bun:"config"`
		}
		if err := s.DB().NewSelect().Table("webhooks").Column("target_url", "config").Where("id <> ?", taken.ID+1).
			Scan(ctx, &raw); err != nil {
			t.Fatal(err)
		}
		for _, r := range raw {
			if strings.Contains(r.Target+r.Config, "URLPW") {
				t.Errorf("a credential is in clear: %+v", r)
			}
		}
		if p, err := s.SealSecrets(ctx, 2, nil); err != nil || p.URLs != 0 || len(p.URLsKept) != 1 {
			t.Fatalf("a second run: %+v, %v", p, err)
		}
	})
}

// One row the URL pass cannot move stops neither the pass nor the rows
// after it: an "@" outside the userinfo is the next row's turn, and a hook
// whose sealed values do not open is left as it is and reported (before,
// the first ended the batch early, and every rerun skipped the rows after
// it; the second failed the pass, and with it the node's start).
func TestSealSecretsSkipsWhatItCannotMove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bad := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/c")
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`UPDATE webhooks SET target_url = ?, secret_key = ? WHERE id = ?`, "https://x:URLPW-bad@a.example/c",
			"enc:v1:"+storetest.Keyring().KeyID()+":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", bad.ID)
		for i, target := range []string{"https://a.example/q?mail=a@b.example", "https://frank:URLPW-b@a.example/b"} {
			exec(`INSERT INTO webhooks (id, user_id, target_url, event_type, retry_countdown_config, created_at, modified_at)
				VALUES (?, ?, ?, 'order-created', '{"choice":"fixed","kwargs":{"seconds":1}}', ?, ?)`,
				bad.ID+1+int64(i), u.ID, target, bad.CreatedAt, bad.CreatedAt)
		}
		p, err := s.SealSecrets(ctx, 100, nil)
		if err != nil {
			t.Fatalf("SealSecrets: %v", err)
		}
		if p.URLs != 1 || !slices.Equal(p.Unreadable, []int64{bad.ID}) {
			t.Errorf("progress %+v; want 1 URL moved and hook %d unreadable", p, bad.ID)
		}
		h, err := s.Webhook(ctx, webhook.Scope{All: true}, bad.ID+2)
		if err != nil {
			t.Fatal(err)
		}
		if auth, _ := h.BasicAuth(); h.TargetURL != "https://a.example/b" || auth.Password != "URLPW-b" {
			t.Errorf("the hook after the query's @: %q %+v", h.TargetURL, auth)
		}
	})
}
