package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/app/apptest"
)

// hooks test is the dry run on a real database: the filter's verdict and
// the request signed with the hook's secret; nothing is written.
func TestHooksTestVerb(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			alice := d.hooks[0]
			alice.Filter = json.RawMessage(`{"payload.n":{"$gt":10}}`)
			if _, err := d.s.UpdateWebhook(t.Context(), apptest.Scope{All: true}, alice, false); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			write := func(name, body string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			big, small := write("big.json", `{"n": 11}`), write("small.json", `{"n": 3}`)
			id := fmt.Sprint(alice.ID)

			out := decode[app.HookTest](t, d.ok("hooks", "test", id, "--payload", big, "--json"))
			hdr := http.Header(out.Headers)
			wh, _ := standardwebhooks.NewWebhookRaw([]byte("top-secret-key"))
			if !out.Deliver || out.Body != `{"event":{"type":"order-created","uuid":"`+hdr.Get("Webhook-Id")+`"},"payload":{"n":11}}` ||
				wh.Verify([]byte(out.Body), hdr) != nil || hdr.Get("X-Api-Key") != "header-secret" {
				t.Fatalf("passing event: %+v", out)
			}
			text := d.ok("hooks", "test", id, "--payload", small)
			for _, want := range []string{`delivered: no: The filter refuses the event: {"payload.n":{"$gt":10}}`, "POST https://alice.example/hook", "Webhook-Signature: v1,"} {
				if !strings.Contains(text, want) {
					t.Errorf("hooks test lacks %q:\n%s", want, text)
				}
			}
			if out := decode[app.HookTest](t, d.ok("hooks", "test", id, "--payload", big, "--event-type", "package-created", "--json")); out.Deliver {
				t.Errorf("another type delivers: %+v", out)
			}
			d.fails(1, "not JSON", "hooks", "test", id, "--payload", write("bad.json", `{`))
			d.fails(1, "no hook with id 999", "hooks", "test", "999", "--payload", big)
			d.fails(2, "--payload", "hooks", "test", id)
		})
	}
}
