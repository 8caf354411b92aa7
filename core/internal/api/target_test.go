package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// The delivery guard's own policy, as core/app passes it.
func guardEnv(t *testing.T, s *store.Store, allow ...string) *env {
	return newEnvDeps(t, s, api.Config{}, s, func(d *api.Deps) {
		d.TargetPolicy = delivery.TargetPolicy(delivery.Config{AllowNetworks: allow}.WithDefaults())
	})
}

// A literal address deliveries may not reach is refused at create and
// update, naming why and the setting; a name resolving to one is saved
// with a warning.
func TestHookTargetBlockedAddress(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := guardEnv(t, s)
		for _, target := range []string{"http://127.0.0.1:9/hook", "http://[::1]:9/", "http://[::ffff:127.0.0.1]/", "https://10.1.2.3/",
			"http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/"} {
			r := e.do("POST", "/whisperer/hooks/", e.alice, hookBody(target))
			msgs, _ := r.obj(t)["target_url"].([]any)
			if r.status != http.StatusBadRequest || len(msgs) != 1 || len(r.obj(t)) != 1 {
				t.Errorf("%s: %d %s", target, r.status, r.raw)
				continue
			}
			msg := msgs[0].(string)
			if !strings.HasPrefix(msg, "Deliveries to this address would be refused: ") || !strings.Contains(msg, "delivery.allow_networks") ||
				!strings.Contains(msg, "/") {
				t.Errorf("%s: %q", target, msg)
			}
		}
		// Public addresses and names that do not resolve: saved, no warnings.
		for _, target := range []string{"https://93.184.215.14/hook", "https://hooks.invalid/x"} {
			r := e.do("POST", "/whisperer/hooks/", e.alice, hookBody(target))
			if r.status != http.StatusCreated || strings.Contains(string(r.raw), "warnings") {
				t.Errorf("%s: %d %s", target, r.status, r.raw)
			}
		}
		// A name resolving to loopback: saved, with a warning.
		r := e.do("POST", "/whisperer/hooks/", e.alice, hookBody("http://LOCALHOST:9/hook"))
		var saved struct {
			ID       int64    `json:"id"`
			Warnings []string `json:"warnings"`
		}
		if err := json.Unmarshal(r.raw, &saved); err != nil || r.status != http.StatusCreated || len(saved.Warnings) == 0 {
			t.Fatalf("localhost: %d %s", r.status, r.raw)
		}
		for _, w := range saved.Warnings {
			if !strings.HasPrefix(w, "target_url: localhost resolves to ") || !strings.Contains(w, "delivery.allow_networks") {
				t.Errorf("warning %q", w)
			}
		}
		path := idPath("/whisperer/hooks/", float64(saved.ID))
		// GET never carries warnings.
		if r := e.do("GET", path, e.alice, nil); strings.Contains(string(r.raw), "warnings") {
			t.Errorf("GET: %s", r.raw)
		}
		// Updates: the same rules.
		want(t, e.do("PATCH", path, e.alice, `{"target_url":"http://192.168.1.1/"}`), http.StatusBadRequest,
			`{"target_url":["Deliveries to this address would be refused: 192.168.1.1 is in 192.168.0.0/16, a special-purpose network (loopback, private, link-local or reserved) that deliveries may not reach unless delivery.allow_networks allows it."]}`)
		if r := e.do("PATCH", path, e.alice, `{"is_active":true}`); r.status != http.StatusOK || strings.Contains(string(r.raw), "warnings") {
			t.Errorf("PATCH without target_url: %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", path, e.alice, hookBody("http://localhost:10/")); r.status != http.StatusOK || !strings.Contains(string(r.raw), `"warnings":["target_url: localhost resolves to`) {
			t.Errorf("PUT to localhost: %d %s", r.status, r.raw)
		}
	})
}

// With delivery.allow_networks covering it, the address is accepted, and
// a name resolving to it gets no warning.
func TestHookTargetAllowedNetwork(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := guardEnv(t, s, "127.0.0.0/8", "::1/128")
		for _, target := range []string{"http://127.0.0.1:9/hook", "http://localhost:9/hook"} {
			if r := e.do("POST", "/whisperer/hooks/", e.alice, hookBody(target)); r.status != http.StatusCreated || strings.Contains(string(r.raw), "warnings") {
				t.Errorf("%s: %d %s", target, r.status, r.raw)
			}
		}
		// Still refused: another blocked range.
		if r := e.do("POST", "/whisperer/hooks/", e.alice, hookBody("http://10.0.0.1/")); r.status != http.StatusBadRequest {
			t.Errorf("10.0.0.1 with loopback allowed: %d %s", r.status, r.raw)
		}
	})
}
