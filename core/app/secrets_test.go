package app_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/config"
	"github.com/whisperer/whisperer/core/store/storetest"
)

// PostgreSQL nodes share the rows, so a node without a key refuses to
// start and says how to make one.
func TestPostgresRefusesToStartWithoutAKey(t *testing.T) {
	cfg := config.Default()
	cfg.Database.URL = storetest.URL(t, "postgres")
	var logs syncBuffer
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
		cfg := config.Default()
		cfg.Database.URL = url
		var logs syncBuffer
		a, err := app.New(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
		if err != nil {
			t.Fatal(err)
		}
		a.Store.Close()
		_ = a.Plugins.Close(t.Context())
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
	cfg := config.Default()
	cfg.Database.URL = url
	var logs syncBuffer
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
	cfg = config.Default()
	cfg.Database.URL = "sqlite://:memory:"
	if _, err := app.Keyring(cfg, logger); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(".", ":memory:.key")); err == nil {
		t.Fatal("a key file was made for an in-memory database")
	}
}
