package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

const (
	legacySecret   = storetest.LegacySecret
	legacyPassword = storetest.LegacyPassword
	legacyHeader   = storetest.LegacyHeader
)

type rawHook struct {
	ID       int64  `bun:"id"`
	Secret   string `bun:"secret_key"`
	Previous string `bun:"previous_secret_key"`
	Headers  string `bun:"additional_headers"`
	Config   string `bun:"config"`
	KeyID    string `bun:"secrets_key_id"`
}

func rawHooks(t *testing.T, s *store.Store) []rawHook {
	t.Helper()
	var rows []rawHook
	if err := s.DB().NewSelect().Table("webhooks").
		Column("id", "secret_key", "previous_secret_key", "additional_headers", "config", "secrets_key_id").
		OrderExpr("id").Scan(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

type rawEvent struct {
	ID         int64   `bun:"id"`
	State      string  `bun:"state"`
	Delivered  bool    `bun:"delivered"`
	RetryCount int     `bun:"retry_count"`
	RetryBase  int     `bun:"retry_base"`
	Next       int64   `bun:"next_attempt_at"`
	Lease      *string `bun:"lease_owner"`
	Status     *int    `bun:"response_http_status"`
	Content    string  `bun:"response_content"`
}

func rawEvents(t *testing.T, s *store.Store) []rawEvent {
	t.Helper()
	var rows []rawEvent
	if err := s.DB().NewSelect().Table("webhook_events").
		Column("id", "state", "delivered", "retry_count", "retry_base", "next_attempt_at", "lease_owner",
			"response_http_status", "response_content").
		OrderExpr("id").Scan(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// A database of the previous release migrates in place: every row is
// intact, the hooks' secrets are sealed at rest (the raw columns, and on
// SQLite the raw files, hold no clear secret), and they read and claim in
// clear.
func TestUpgradeSealsLegacySecrets(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := storetest.Legacy(t, backend)
			s, err := store.Open(ctx, url, store.Options{Sealer: storetest.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			before := rawEvents(t, s)
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			// Until sealed, reads take the clear form.
			if h, err := s.Webhook(ctx, webhook.Scope{All: true}, 1); err != nil || h.SecretKey != legacySecret {
				t.Fatalf("read a legacy hook: %q, %v", h.SecretKey, err)
			}
			var progress []store.SealProgress
			p, err := s.SealSecrets(ctx, 1, func(p store.SealProgress) { progress = append(progress, p) })
			if err != nil {
				t.Fatal(err)
			}
			if p.Done != 2 || p.Total != 2 || len(progress) != 2 {
				t.Fatalf("sealed %+v with progress %v; want 2 of 2 in 2 batches", p, progress)
			}
			if p, err := s.SealSecrets(ctx, 1, nil); err != nil || p.Total != 0 {
				t.Fatalf("a second run: %+v, %v; want nothing left", p, err)
			}
			kid := storetest.Keyring().KeyID()
			for _, r := range rawHooks(t, s) {
				all := r.Secret + r.Previous + r.Headers + r.Config
				for _, clear := range []string{legacySecret, legacyPassword, legacyHeader} {
					if strings.Contains(all, clear) {
						t.Errorf("hook %d holds %q in clear", r.ID, clear)
					}
				}
				if r.KeyID != kid || !strings.HasPrefix(r.Headers, secret.Prefix+kid+":") {
					t.Errorf("hook %d: key id %q, headers %q; want sealed under %s", r.ID, r.KeyID, r.Headers, kid)
				}
			}
			if r := rawHooks(t, s)[0]; !strings.HasPrefix(r.Secret, secret.Prefix) ||
				!strings.Contains(r.Config, `"rate_limit_per_second":5`) || !strings.Contains(r.Config, `"username":"bob"`) {
				t.Errorf("hook 1 raw: secret %q config %q", r.Secret, r.Config)
			}
			if after := rawEvents(t, s); !equalJSON(before, after) {
				t.Errorf("events changed by the upgrade:\nbefore %+v\nafter  %+v", before, after)
			}
			h, err := s.Webhook(ctx, webhook.Scope{All: true}, 1)
			if err != nil {
				t.Fatal(err)
			}
			auth, _ := h.BasicAuth()
			if h.SecretKey != legacySecret || auth != (webhook.BasicAuth{Username: "bob", Password: legacyPassword}) ||
				h.AdditionalHeaders["X-Api-Key"] != legacyHeader || h.Config["rate_limit_per_second"] != json.Number("5") {
				t.Fatalf("hook 1 after sealing: %+v", h)
			}
			// The due and the expired-lease events deliver with the secrets.
			jobs, err := s.Claim(ctx, "new-node", 10, time.Minute)
			if err != nil || len(jobs) != 2 {
				t.Fatalf("claim: %d jobs, %v", len(jobs), err)
			}
			for _, j := range jobs {
				if j.Webhook.SecretKey != legacySecret || j.Webhook.AdditionalHeaders["X-Api-Key"] != legacyHeader {
					t.Errorf("claimed job %d has hook %+v", j.Event.ID, j.Webhook)
				}
			}
			results := make([]webhook.Result, len(jobs))
			for i, j := range jobs {
				results[i] = webhook.Result{EventID: j.Event.ID, Lease: j.Lease, WebhookID: 1, RetryCount: 1, State: webhook.StateDelivered,
					Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 200}}
			}
			if err := s.Complete(ctx, results); err != nil {
				t.Fatal(err)
			}
			c, err := s.Counts(ctx)
			if err != nil || c[webhook.StateDelivered] != 3 || c[webhook.StateGivenUp] != 1 || c[webhook.StatePending] != 2 {
				t.Fatalf("counts after delivering: %v, %v", c, err)
			}
			if backend == store.SQLite {
				path := strings.TrimPrefix(url, "sqlite://")
				for _, f := range []string{path, path + "-wal", path + "-shm"} {
					b, _ := os.ReadFile(f)
					for _, clear := range []string{legacySecret, legacyPassword, legacyHeader} {
						if bytes.Contains(b, []byte(clear)) {
							t.Errorf("%s still holds %q", filepath.Base(f), clear)
						}
					}
				}
			}
		})
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// A sealed value moved to another row does not open: the read fails
// rather than sign with another hook's secret.
func TestSealedSecretsAreBoundToTheirRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		a := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/", func(w *webhook.Webhook) { w.SecretKey = "secret-a" })
		b := storetest.Hook(t, s, u.ID, "order-created", "https://b.example/", func(w *webhook.Webhook) { w.SecretKey = "secret-b" })
		raw := rawHooks(t, s)
		if _, err := s.DB().NewUpdate().Table("webhooks").Set("secret_key = ?", raw[0].Secret).
			Where("id = ?", b.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if h, err := s.Webhook(ctx, webhook.Scope{All: true}, b.ID); err != nil || h.SecretKey != "" || h.SecretsError == "" {
			t.Fatalf("hook b read with hook a's sealed secret: %q, %q, %v", h.SecretKey, h.SecretsError, err)
		}
		// The list still reads the other hooks; b comes without secrets.
		hooks, _, err := s.ListWebhooks(ctx, webhook.Scope{All: true}, webhook.HookFilter{}, webhook.Page{})
		if err != nil || len(hooks) != 2 {
			t.Fatalf("list: %v, %v", hooks, err)
		}
		for _, h := range hooks {
			if h.ID == b.ID && (h.SecretKey != "" || h.SecretsError == "") {
				t.Fatalf("list read a swapped secret: %q", h.SecretKey)
			}
		}
		if h, err := s.Webhook(ctx, webhook.Scope{All: true}, a.ID); err != nil || h.SecretKey != "secret-a" {
			t.Fatalf("hook a: %q, %v", h.SecretKey, err)
		}
	})
}

// keys rotate: a keyring with a new first key re-seals every hook, in
// batches, resumably; then the old key can go.
func TestSealSecretsRotatesKeys(t *testing.T) {
	oldKey, newKey := secret.Generate(), secret.Generate()
	ring := func(keys ...string) *secret.Keyring {
		r, err := secret.ParseKeyring(keys...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := storetest.URL(t, backend)
			open := func(r *secret.Keyring) *store.Store {
				return storetest.Open(t, url, store.Options{Sealer: r})
			}
			s := open(ring(oldKey))
			u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
			for _, target := range []string{"https://a.example/", "https://b.example/", "https://c.example/"} {
				storetest.Hook(t, s, u.ID, "order-created", target, func(w *webhook.Webhook) {
					w.SecretKey = "s-" + target
					w.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p-" + target}}
				})
			}
			s.Close()

			s = open(ring(newKey, oldKey))
			// Interrupted after the first batch: what was done stays done.
			cctx, cancel := context.WithCancel(ctx)
			_, err := s.SealSecrets(cctx, 1, func(store.SealProgress) { cancel() })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			p, err := s.SealSecrets(ctx, 1, nil)
			if err != nil || p.Done != 2 || p.Total != 2 {
				t.Fatalf("rerun: %+v, %v; want the 2 hooks left", p, err)
			}
			newID := ring(newKey).KeyID()
			for _, r := range rawHooks(t, s) {
				if r.KeyID != newID || !strings.HasPrefix(r.Secret, secret.Prefix+newID+":") ||
					!strings.Contains(r.Config, secret.Prefix+newID+":") {
					t.Errorf("hook %d not re-sealed under the new key: %+v", r.ID, r)
				}
			}
			s.Close()

			s = open(ring(newKey)) // the old key is gone
			hooks, _, err := s.ListWebhooks(ctx, webhook.Scope{All: true}, webhook.HookFilter{}, webhook.Page{})
			if err != nil || len(hooks) != 3 {
				t.Fatalf("list with the new key only: %d, %v", len(hooks), err)
			}
			for _, h := range hooks {
				auth, _ := h.BasicAuth()
				if h.SecretKey != "s-"+h.TargetURL || auth.Password != "p-"+h.TargetURL {
					t.Errorf("hook %d: %q %q", h.ID, h.SecretKey, auth.Password)
				}
			}
			s.Close()

			// A keyring without the key in use refuses: nothing to sign with.
			s = open(ring(oldKey))
			if _, err := s.SealSecrets(ctx, 10, nil); err == nil || !strings.Contains(err.Error(), newID) {
				t.Fatalf("seal with a keyring lacking the rows' key: %v", err)
			}
			if h, err := s.Webhook(ctx, webhook.Scope{All: true}, hooks[0].ID); err != nil || h.SecretKey != "" ||
				!strings.Contains(h.SecretsError, newID) {
				t.Fatalf("read a hook sealed under a key not configured: %q, %q, %v", h.SecretKey, h.SecretsError, err)
			}
		})
	}
}

// A store without a key cannot read sealed secrets, and says why.
func TestSealedSecretsNeedAKey(t *testing.T) {
	url := storetest.URL(t, store.SQLite)
	s, err := store.Open(ctx, url, store.Options{Sealer: storetest.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
	h := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/", func(w *webhook.Webhook) { w.SecretKey = "x" })
	s.Close()
	plain, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if got, err := plain.Webhook(ctx, webhook.Scope{All: true}, h.ID); err != nil || got.SecretKey != "" ||
		!strings.Contains(got.SecretsError, "security.encryption_keys") {
		t.Fatalf("read without a key: %q, %q, %v", got.SecretKey, got.SecretsError, err)
	}
}

// The SQLite database and its -wal and -shm are 0600 whatever the umask,
// and files an earlier release made 0644 are tightened.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	check := func(path string) {
		t.Helper()
		s, err := store.Open(ctx, "sqlite://"+path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), st.Mode().Perm())
			}
		}
	}
	check(filepath.Join(dir, "new.db"))
	legacy := filepath.Join(dir, "legacy.db")
	for _, f := range []string{legacy, legacy + "-wal", legacy + "-shm"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check(legacy)
}

// A rotated-out secret is stored sealed during the overlap and dropped by
// the first update after it.
func TestPreviousSecretStoredSealedAndDropped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		h := storetest.Hook(t, s, u.ID, "order-created", "https://a.example/", func(w *webhook.Webhook) { w.SecretKey = "old" })
		until := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		h.SecretKey, h.PreviousSecretKey, h.PreviousSecretUntil = "new", "old", &until
		h, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, h, false)
		if err != nil {
			t.Fatal(err)
		}
		if h.PreviousSecretKey != "old" || h.PreviousSecretUntil == nil || !h.PreviousSecretUntil.Equal(until) {
			t.Fatalf("previous %q until %v, want old until %v", h.PreviousSecretKey, h.PreviousSecretUntil, until)
		}
		if raw := rawHooks(t, s)[0]; !strings.HasPrefix(raw.Previous, secret.Prefix) {
			t.Fatalf("previous_secret_key not sealed: %q", raw.Previous)
		}
		s.SetClock(func() time.Time { return until.Add(time.Second) })
		defer s.SetClock(time.Now)
		h.Callback = ""
		if h, err = s.UpdateWebhook(ctx, webhook.Scope{All: true}, h, false); err != nil || h.PreviousSecretKey != "" || h.PreviousSecretUntil != nil {
			t.Fatalf("after the overlap: %q %v, %v", h.PreviousSecretKey, h.PreviousSecretUntil, err)
		}
	})
}

// Hostile sealed values: whatever one hook's columns hold, a claim and a
// list still return every hook, that one without its secrets (never a
// ciphertext) and with the cause, the others intact.
func TestUnreadableSecretsSpoilOnlyTheirHook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		kid := storetest.Keyring().KeyID()
		bad := map[string][2]string{ // what → column, raw value
			"malformed":   {"secret_key", "enc:v1:" + kid + ":%%%"},
			"unknown key": {"secret_key", "enc:v1:000000000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			"truncated":   {"secret_key", "enc:v1:" + kid + ":AAAA"},
			"headers":     {"additional_headers", "enc:v1:" + kid + ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			"password":    {"config", `{"auth": {"username": "bob", "password": "enc:v1:` + kid + `:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`},
			"previous":    {"previous_secret_key", "enc:v1:" + kid + ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			"config json": {"config", `{"password": `},
		}
		good := storetest.Hook(t, s, u.ID, "e", "https://good.example/", func(w *webhook.Webhook) {
			w.SecretKey, w.AdditionalHeaders = "good-secret", map[string]string{"X-Key": "good-header"}
		})
		what := map[int64]string{}
		for name, b := range bad {
			h := storetest.Hook(t, s, u.ID, "e", "https://bad.example/"+strings.ReplaceAll(name, " ", "-"), func(w *webhook.Webhook) {
				w.SecretKey, w.AdditionalHeaders = "s", map[string]string{"X-Key": "h"}
				w.Config = map[string]any{"auth": map[string]any{"username": "bob", "password": "p"}}
			})
			if _, err := s.DB().NewUpdate().Table("webhooks").Set("? = ?", bun.Ident(b[0]), b[1]).
				Where("id = ?", h.ID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			what[h.ID] = name
		}
		check := func(where string, h webhook.Webhook) {
			t.Helper()
			if h.ID == good.ID {
				if h.SecretsError != "" || h.SecretKey != "good-secret" || h.AdditionalHeaders["X-Key"] != "good-header" {
					t.Errorf("%s: the good hook read %+v", where, h)
				}
				return
			}
			all := fmt.Sprint(h.SecretKey, h.PreviousSecretKey, h.AdditionalHeaders, h.Config)
			if h.SecretsError == "" || h.SecretKey != "" || len(h.AdditionalHeaders) != 0 || strings.Contains(all, "enc:v1") ||
				strings.Contains(h.SecretsError, "AAAA") || hasPassword(h) {
				t.Errorf("%s: hook %q read %q, error %q", where, what[h.ID], all, h.SecretsError)
			}
		}
		storetest.Publish(t, s, "e", `{}`)
		jobs, err := s.Claim(ctx, "n", 100, time.Minute)
		if err != nil || len(jobs) != len(bad)+1 {
			t.Fatalf("claim: %d jobs, %v; want %d", len(jobs), err, len(bad)+1)
		}
		for _, j := range jobs {
			check("claim", j.Webhook)
		}
		hooks, _, err := s.ListWebhooks(ctx, webhook.Scope{UserID: u.ID}, webhook.HookFilter{}, webhook.Page{})
		if err != nil || len(hooks) != len(bad)+1 {
			t.Fatalf("list: %d hooks, %v", len(hooks), err)
		}
		for _, h := range hooks {
			check("list", h)
		}
	})
}

func hasPassword(h webhook.Webhook) bool {
	auth, _ := h.Config["auth"].(map[string]any)
	_, ok := auth["password"]
	return ok
}
