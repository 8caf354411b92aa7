package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/app/apptest"
)

// keys generate makes a usable key; keys rotate moves every hook to the
// new first key in batches with progress on stderr, and a rerun has
// nothing left to do. Then the old key can go; a keyring without the key
// in use is refused with the key id named.
func TestKeysVerbs(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			newKey := strings.TrimSpace(d.ok("keys", "generate"))
			ring, err := apptest.ParseKeyring(newKey)
			if err != nil {
				t.Fatalf("keys generate printed no key: %v", err)
			}
			d.fails(2, "unexpected arguments", "keys", "generate", "extra")
			d.fails(2, "--batch-size must be at least 1", "keys", "rotate", "--batch-size", "0")

			d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = newKey + "," + apptest.Key
			out, errs, code := d.run("keys", "rotate", "--batch-size", "1")
			if code != 0 || !strings.Contains(out, "re-encrypted 2 hook(s)") ||
				!strings.Contains(errs, "re-encrypted 1 of 2 hook(s)") || !strings.Contains(errs, "re-encrypted 2 of 2 hook(s)") {
				t.Fatalf("keys rotate: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if strings.Contains(out+errs, newKey) || strings.Contains(out+errs, apptest.Key) {
				t.Fatal("keys rotate printed a key")
			}
			var ids []string
			if err := d.s.DB().NewSelect().Table("webhooks").Column("secrets_key_id").Scan(t.Context(), &ids); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if id != ring.KeyID() {
					t.Errorf("a hook is under key %s after rotating to %s", id, ring.KeyID())
				}
			}
			if out := d.ok("keys", "rotate"); !strings.Contains(out, "re-encrypted 0 hook(s)") {
				t.Errorf("second rotate: %s", out)
			}
			d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = newKey
			if out := d.ok("hooks", "show", fmt.Sprint(d.hooks[0].ID)); !strings.Contains(out, "alice.example") {
				t.Errorf("hooks show with the new key only: %s", out)
			}
			d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = apptest.Key
			d.fails(1, ring.KeyID(), "keys", "rotate")
		})
	}
}

// `whisperer migrate` on a previous release's database applies 004 and
// seals the secrets written in clear, with progress on stderr.
func TestMigrateSealsLegacyHooks(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := apptest.Legacy(t, backend)
			env := map[string]string{"WHISPERER_CONFIG": os.DevNull, "WHISPERER_DATABASE_URL": url,
				"WHISPERER_SECURITY_ENCRYPTION_KEYS": apptest.Key}
			var out, errb bytes.Buffer
			if err := run(t.Context(), []string{"migrate"}, environ(env), &out, &errb); err != nil {
				t.Fatalf("migrate: %v\n%s", err, errb.String())
			}
			// The legacy schema stops before 004: migrate names what it applied.
			if !strings.Contains(out.String(), "004_secrets.sql") || strings.Contains(out.String(), "001_init") ||
				!strings.Contains(errb.String(), "hook secrets encrypted at rest") {
				t.Fatalf("migrate output:\n%s%s", out.String(), errb.String())
			}
			s, err := apptest.Open(t.Context(), url, apptest.Options{Sealer: apptest.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var secrets []string
			if err := s.DB().NewSelect().Table("webhooks").ColumnExpr("secret_key || additional_headers || config").
				Scan(t.Context(), &secrets); err != nil {
				t.Fatal(err)
			}
			for _, v := range secrets {
				if strings.Contains(v, apptest.LegacySecret) || strings.Contains(v, apptest.LegacyPassword) ||
					strings.Contains(v, apptest.LegacyHeader) {
					t.Errorf("a hook is still in clear after migrate: %s", v)
				}
			}
			if h, err := s.Webhook(t.Context(), apptest.Scope{All: true}, 1); err != nil || h.SecretKey != apptest.LegacySecret {
				t.Fatalf("hook 1 after migrate: %q, %v", h.SecretKey, err)
			}
		})
	}
}
