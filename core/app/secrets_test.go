package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
	"github.com/whisperer/whisperer/internal/testlog"
)

// PostgreSQL nodes share the rows, so a node without a key refuses to
// start and says how to make one.
func TestPostgresRefusesToStartWithoutAKey(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.Database.URL = storetest.URL(t, "postgres")
	var logs testlog.Buffer
	_, err := app.New(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
	if !errors.Is(err, app.ErrNoKey) || !strings.Contains(err.Error(), "whisperer keys generate") {
		t.Fatalf("start without a key: %v", err)
	}
}

// On SQLite without a configured key, the first start creates one beside
// the database, 0600, and logs its path (never the key); later starts
// reuse it.
func TestSQLiteKeyFile(t *testing.T) {
	url := storetest.URL(t, "sqlite")
	path := strings.TrimPrefix(url, "sqlite://") + ".key"
	start := func() string {
		cfg := app.DefaultConfig()
		cfg.Database.URL = url
		var logs testlog.Buffer
		a, err := app.New(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
		if err != nil {
			t.Fatal(err)
		}
		a.Store.Close()
		_ = a.Plugins.Stop(t.Context())
		return logs.String()
	}
	logs := start()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, path) || strings.Contains(logs, strings.TrimSpace(string(key))) {
		t.Fatalf("the creation log must name the file and not show the key:\n%s", logs)
	}
	if logs := start(); strings.Contains(logs, "created an encryption key") {
		t.Fatalf("second start created a key again:\n%s", logs)
	}
	if again, _ := os.ReadFile(path); string(again) != string(key) {
		t.Fatal("second start replaced the key")
	}
}

// Keys configured after a SQLite database got a key file: the file's key
// still opens (so the rows can be rotated), and the configured key seals.
func TestConfiguredKeyAfterKeyFile(t *testing.T) {
	url := storetest.URL(t, "sqlite")
	cfg := app.DefaultConfig()
	cfg.Database.URL = url
	var logs testlog.Buffer
	logger := app.NewLogger(cfg.Log, &logs)
	fileRing, err := app.Keyring(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Security.EncryptionKeys = []string{storetest.Key}
	ring, err := app.Keyring(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ring.IDs(); len(ids) != 2 || ids[0] != storetest.Keyring().KeyID() || ids[1] != fileRing.KeyID() {
		t.Fatalf("keyring %v; want the configured key first, then the file's %s", ids, fileRing.KeyID())
	}
	// An in-memory database gets a key of its own.
	cfg = app.DefaultConfig()
	cfg.Database.URL = "sqlite://:memory:"
	if _, err := app.Keyring(cfg, logger); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(".", ":memory:.key")); err == nil {
		t.Fatal("a key file was made for an in-memory database")
	}
}

// A database of the previous release (migrations 001-003, secrets in
// clear, events in every state) starts with this release: the secrets are
// sealed at rest at start, and the due events are delivered signed with
// the old secret, with its basic auth and headers.
func TestUpgradeDeliversLegacyHooks(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := storetest.Legacy(t, backend)
			var verified, bad atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mac := hmac.New(sha256.New, []byte(storetest.LegacySecret))
				mac.Write(body)
				wh, _ := standardwebhooks.NewWebhookRaw([]byte(storetest.LegacySecret))
				u, p, _ := r.BasicAuth()
				if r.Header.Get("X-Whisperer-Signature") == "sha256="+hex.EncodeToString(mac.Sum(nil)) &&
					wh.Verify(body, r.Header) == nil && u == "bob" && p == storetest.LegacyPassword &&
					r.Header.Get("X-Api-Key") == storetest.LegacyHeader {
					verified.Add(1)
				} else {
					bad.Add(1)
				}
			}))
			t.Cleanup(recv.Close)
			plain, err := store.Open(t.Context(), url, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plain.DB().ExecContext(t.Context(), "UPDATE webhooks SET target_url = ? WHERE id = 1", recv.URL+"/"); err != nil {
				t.Fatal(err)
			}
			plain.Close()

			n := startNode(t, backend, nil, func(c *config.Config) { c.Database.URL = url })
			poll.UntilNil(t, 15*time.Second, func() error {
				c, err := n.Store.Counts(t.Context())
				if err != nil {
					return err
				}
				if c[webhook.StateDelivered] != 3 || c[webhook.StateGivenUp] != 1 || c[webhook.StatePending] != 2 {
					return notYet(fmt.Sprint("counts ", c))
				}
				return nil
			})
			if verified.Load() != 2 || bad.Load() != 0 {
				t.Fatalf("receiver verified %d deliveries and refused %d; want the 2 due ones verified", verified.Load(), bad.Load())
			}
			var raw []struct {
				Secret  string `bun:"secret_key"`
				Headers string `bun:"additional_headers"`
				Config  string `bun:"config"`
			}
			if err := n.Store.DB().NewSelect().Table("webhooks").Column("secret_key", "additional_headers", "config").
				Scan(t.Context(), &raw); err != nil {
				t.Fatal(err)
			}
			for _, r := range raw {
				all := r.Secret + r.Headers + r.Config
				for _, clear := range []string{storetest.LegacySecret, storetest.LegacyPassword, storetest.LegacyHeader} {
					if strings.Contains(all, clear) {
						t.Errorf("a raw column still holds %q", clear)
					}
				}
				if !strings.HasPrefix(r.Headers, secret.Prefix) {
					t.Errorf("additional_headers not sealed: %q", r.Headers)
				}
			}
		})
	}
}

// With keys configured after a key file, the file's key is mentioned only
// while hooks are still sealed under it.
func TestKeyFileMentionedOnlyWhileInUse(t *testing.T) {
	url := storetest.URL(t, "sqlite")
	cfg := app.DefaultConfig()
	cfg.Database.URL = url
	open := func() string {
		t.Helper()
		var logs testlog.Buffer
		s, err := app.OpenStore(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Security.EncryptionKeys) == 0 {
			u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
			storetest.Hook(t, s, u.ID, "order-created", "https://a.example/", func(w *webhook.Webhook) { w.SecretKey = "s" })
		}
		s.Close()
		return logs.String()
	}
	open() // the key file seals a hook
	cfg.Security.EncryptionKeys = []string{storetest.Key}
	if logs := open(); !strings.Contains(logs, "sealed under the key file's key") || !strings.Contains(logs, "hooks=1") {
		t.Fatalf("a key file in use is not mentioned:\n%s", logs)
	}
	var logs testlog.Buffer
	s, err := app.OpenStore(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealSecrets(t.Context(), 0, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if logs := open(); strings.Contains(logs, "key file") || strings.Contains(logs, "keys rotate") {
		t.Fatalf("a key file no hook uses is mentioned:\n%s", logs)
	}
}
