package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

var portalURL = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/portal#code=[0-9a-f]{64}$`)

// POST portal/sessions/ makes a one-time portal URL for publishers and
// admins; every bad input is a DRF field error.
func TestPortalSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		for _, tok := range []string{e.pub, e.root} {
			r := e.do("POST", "/whisperer/portal/sessions/", tok, map[string]any{"user": "alice", "capabilities": []string{"manage_hooks", "read"}, "ttl": "2h"})
			if r.status != http.StatusCreated {
				t.Fatalf("create = %d %s", r.status, r.raw)
			}
			o := r.obj(t)
			if !portalURL.MatchString(o["url"].(string)) || o["user"] != "alice" || o["ttl"] != "2h0m0s" ||
				!jsonEqual(o["capabilities"], []any{"read", "manage_hooks"}) {
				t.Fatalf("answer %s", r.raw)
			}
		}
		// Defaults: read only, 15 minutes.
		r := e.do("POST", "/whisperer/portal/sessions", e.pub, map[string]any{"user": "bob"})
		if r.status != http.StatusCreated || !jsonEqual(r.obj(t)["capabilities"], []any{"read"}) || r.obj(t)["ttl"] != "15m0s" {
			t.Fatalf("defaults: %d %s", r.status, r.raw)
		}
		want(t, e.do("POST", "/whisperer/portal/sessions/", e.alice, map[string]any{"user": "alice"}), http.StatusForbidden, "")
		want(t, e.do("POST", "/whisperer/portal/sessions/", "", map[string]any{"user": "alice"}), http.StatusUnauthorized, "")
		for _, c := range []struct{ body, want string }{
			{`{}`, `{"user":["This field is required."]}`},
			{`{"user":"nobody"}`, `{"user":["Object with username=nobody does not exist."]}`},
			{`{"user":null}`, `{"user":["This field may not be null."]}`},
			{`{"user":"alice","capabilities":"read"}`, `{"capabilities":["Expected a list of items but got type \"str\"."]}`},
			{`{"user":"alice","capabilities":["admin"]}`, `{"capabilities":["\"admin\" is not a valid choice."]}`},
			{`{"user":"alice","capabilities":["<script>alert(1)</script>"]}`, `{"capabilities":["\"<script>alert(1)</script>\" is not a valid choice."]}`},
			{`{"user":"alice","capabilities":["read","read","read","read"]}`, `{"capabilities":["Ensure this field has no more than 3 elements."]}`},
			{`{"user":"alice","ttl":"30s"}`, `{"ttl":["Ensure this duration is between 1m0s and 24h0m0s."]}`},
			{`{"user":"alice","ttl":"25h"}`, `{"ttl":["Ensure this duration is between 1m0s and 24h0m0s."]}`},
			{`{"user":"alice","ttl":"soon"}`, `{"ttl":["Enter a duration like \"15m\" or \"2h\"."]}`},
			{`{"user":"alice","ttl":900}`, `{"ttl":["Enter a duration like \"15m\" or \"2h\"."]}`},
			{`{"user":"alice","extra":1}`, `{"extra":["Unknown field."]}`},
			{`{"user":"` + strings.Repeat("a", 300) + `"}`, `{"user":["Ensure this field has no more than 255 characters."]}`},
		} {
			r := e.do("POST", "/whisperer/portal/sessions/", e.root, c.body)
			want(t, r, http.StatusBadRequest, c.want)
		}
	})
}
