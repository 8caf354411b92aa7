package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/secret"
	"github.com/whisperer/whisperer/core/store/storetest"
)

// keys generate makes a usable key; keys rotate moves every hook to the
// new first key in batches with progress on stderr, and a rerun has
// nothing left to do. Then the old key can go; a keyring without the key
// in use is refused with the key id named.
func TestKeysVerbs(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			newKey := strings.TrimSpace(d.ok("keys", "generate"))
			ring, err := secret.ParseKeyring(newKey)
			if err != nil {
				t.Fatalf("keys generate printed no key: %v", err)
			}
			d.fails(2, "unexpected arguments", "keys", "generate", "extra")
			d.fails(2, "--batch-size must be at least 1", "keys", "rotate", "--batch-size", "0")

			d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = newKey + "," + storetest.Key
			out, errs, code := d.run("keys", "rotate", "--batch-size", "1")
			if code != 0 || !strings.Contains(out, "re-encrypted 2 hook(s)") ||
				!strings.Contains(errs, "re-encrypted 1 of 2 hook(s)") || !strings.Contains(errs, "re-encrypted 2 of 2 hook(s)") {
				t.Fatalf("keys rotate: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if strings.Contains(out+errs, newKey) || strings.Contains(out+errs, storetest.Key) {
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
			d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = storetest.Key
			d.fails(1, ring.KeyID(), "keys", "rotate")
		})
	}
}
