package secret_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/secret"
)

func ring(t *testing.T, texts ...string) *secret.Keyring {
	t.Helper()
	r, err := secret.ParseKeyring(texts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	a, b := secret.Generate(), secret.Generate()
	old := ring(t, a)
	sealed := old.Seal("s3cret", "webhooks.secret_key:1")
	if !strings.HasPrefix(sealed, secret.Prefix+old.KeyID()+":") || strings.Contains(sealed, "s3cret") {
		t.Fatalf("sealed value %q does not name its key or shows the plaintext", sealed)
	}
	if strings.Contains(sealed, a) || strings.Contains(old.KeyID(), a[:8]) {
		t.Fatal("the key appears in the sealed value or the key id")
	}
	if again := old.Seal("s3cret", "webhooks.secret_key:1"); again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	// The new keyring seals with b and still opens what a sealed.
	rotated := ring(t, b, a)
	if got, err := rotated.Open(sealed, "webhooks.secret_key:1"); err != nil || got != "s3cret" {
		t.Fatalf("open with the old key second: %q, %v", got, err)
	}
	if strings.Contains(rotated.Seal("x", "ad"), old.KeyID()) {
		t.Fatal("the rotated keyring seals with the old key")
	}
	if _, err := ring(t, b).Open(sealed, "webhooks.secret_key:1"); err == nil || !strings.Contains(err.Error(), old.KeyID()) {
		t.Fatalf("open without the key: %v, want an error naming key %s", err, old.KeyID())
	}
}

// A value moved to another row or column, or altered, does not open.
func TestOpenRefusesSwappedOrAltered(t *testing.T) {
	k := secret.Generate()
	r := ring(t, k)
	sealed := r.Seal("s3cret", "webhooks.secret_key:1")
	for name, tc := range map[string]struct{ value, ad string }{
		"other row":    {sealed, "webhooks.secret_key:2"},
		"other column": {sealed, "webhooks.additional_headers:1"},
		"altered":      {sealed[:len(sealed)-2] + flip(sealed[len(sealed)-2:]), "webhooks.secret_key:1"},
		"truncated":    {sealed[:len(secret.Prefix)+14], "webhooks.secret_key:1"},
		"not base64":   {secret.Prefix + r.KeyID() + ":!!!", "webhooks.secret_key:1"},
		"no key id":    {secret.Prefix + "abc", "webhooks.secret_key:1"},
		"plaintext":    {"s3cret", "webhooks.secret_key:1"},
		"empty":        {"", "webhooks.secret_key:1"},
	} {
		got, err := r.Open(tc.value, tc.ad)
		if err == nil {
			t.Errorf("%s: opened to %q", name, got)
			continue
		}
		if strings.Contains(err.Error(), k) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error %q shows the key or the plaintext", name, err)
		}
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestParseKeyErrorsHideTheKey(t *testing.T) {
	short := "c2hvcnQta2V5LXRleHQ=" // "short-key-text"
	for _, text := range []string{"", "not base64 at all!", short, secret.Generate() + "AAAA"} {
		_, err := secret.ParseKey(text)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", text)
			continue
		}
		if text != "" && strings.Contains(err.Error(), text) {
			t.Errorf("error %q quotes the key text", err)
		}
	}
	k := secret.Generate()
	if _, err := secret.ParseKeyring(k, k); err == nil {
		t.Error("a keyring with one key twice is accepted")
	}
	if _, err := secret.ParseKeyring(); err == nil {
		t.Error("an empty keyring is accepted")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "whisperer.db.key")
	k, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	again, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil || created || again.ID() != k.ID() {
		t.Fatalf("reload: id %s vs %s, created %v, %v", again.ID(), k.ID(), created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secret.LoadOrCreateKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secret.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a key file of garbage is accepted")
	}
}

// The cost a claim pays per hook (once per batch) to open a secret.
func BenchmarkOpen(b *testing.B) {
	r, err := secret.ParseKeyring(secret.Generate())
	if err != nil {
		b.Fatal(err)
	}
	sealed := r.Seal("a-typical-secret-key-of-32-bytes", "webhooks.secret_key:123")
	for b.Loop() {
		if _, err := r.Open(sealed, "webhooks.secret_key:123"); err != nil {
			b.Fatal(err)
		}
	}
}
