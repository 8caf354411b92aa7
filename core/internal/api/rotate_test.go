package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// PATCH {"secret_key": new, "rotate": true} keeps the old secret signing
// for the overlap (24h by default); a change without rotate, or a later
// one, drops it at once. The old secret is never shown.
func TestRotateSecret(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{"event_type": "package-created", "target_url": "https://example.com/", "secret_key": "old-secret"}`)
		want(t, r, http.StatusCreated, "")
		path := fmt.Sprintf("/whisperer/hooks/%v/", r.obj(t)["id"])
		before := time.Now()
		r = e.do("PATCH", path, e.alice, `{"secret_key": "new-secret", "rotate": true}`)
		want(t, r, http.StatusOK, "")
		if strings.Contains(string(r.raw), "old-secret") || r.obj(t)["secret_key"] != "new-secret" {
			t.Fatalf("rotate answer: %s", r.raw)
		}
		id := int64(r.obj(t)["id"].(float64))
		h, err := s.Webhook(t.Context(), scopeAll, id)
		if err != nil {
			t.Fatal(err)
		}
		if old, ok := h.PreviousSecret(before.Add(23 * time.Hour)); !ok || old != "old-secret" || h.SecretKey != "new-secret" {
			t.Fatalf("after rotate: secret %q previous %q until %v", h.SecretKey, h.PreviousSecretKey, h.PreviousSecretUntil)
		}
		if _, ok := h.PreviousSecret(before.Add(24*time.Hour + time.Minute)); ok {
			t.Fatalf("the old secret signs after the overlap: until %v", h.PreviousSecretUntil)
		}
		// Another field changes: the rotation stays.
		want(t, e.do("PATCH", path, e.alice, `{"callback": ""}`), http.StatusOK, "")
		if h, _ := s.Webhook(t.Context(), scopeAll, id); h.PreviousSecretKey != "old-secret" {
			t.Fatal("an unrelated update ended the rotation")
		}
		// A new secret without rotate revokes the old ones at once.
		want(t, e.do("PATCH", path, e.alice, `{"secret_key": "leaked-fix"}`), http.StatusOK, "")
		if h, _ := s.Webhook(t.Context(), scopeAll, id); h.PreviousSecretKey != "" || h.PreviousSecretUntil != nil {
			t.Fatalf("a plain secret change kept %q", h.PreviousSecretKey)
		}
	})
}

func TestRotateValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{"event_type": "package-created", "target_url": "https://example.com/", "secret_key": "s"}`)
		want(t, r, http.StatusCreated, "")
		path := fmt.Sprintf("/whisperer/hooks/%v/", r.obj(t)["id"])
		for _, tc := range []struct{ method, path, body, doc string }{
			{"PATCH", path, `{"rotate": true}`, `{"rotate":["Send the new secret_key with rotate."]}`},
			{"PATCH", path, `{"rotate": "maybe", "secret_key": "x"}`, `{"rotate":["Must be a valid boolean."]}`},
			{"PATCH", path, `{"rotate": null, "secret_key": "x"}`, `{"rotate":["This field may not be null."]}`},
			{"POST", "/whisperer/hooks/", `{"event_type": "package-created", "target_url": "https://example.com/b", "secret_key": "x", "rotate": true}`,
				`{"rotate":["A new hook has no secret to rotate; send rotate with an update."]}`},
		} {
			want(t, e.do(tc.method, tc.path, e.alice, tc.body), http.StatusBadRequest, tc.doc)
		}
	})
}

// secret_key is returned to the hook's owner only: an admin listing every
// user's hooks and events does not see it, and a GET → PUT round trip by
// the admin keeps it.
func TestSecretKeyOnlyToItsOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{"event_type": "package-created", "target_url": "https://example.com/", "secret_key": "alice-secret"}`)
		want(t, r, http.StatusCreated, "")
		path := fmt.Sprintf("/whisperer/hooks/%v/", r.obj(t)["id"])
		if got := e.do("GET", path, e.alice, ""); !strings.Contains(string(got.raw), `"secret_key":"alice-secret"`) {
			t.Fatalf("the owner does not get the secret: %s", got.raw)
		}
		for _, p := range []string{path, "/whisperer/hooks/"} {
			got := e.do("GET", p, e.root, "")
			want(t, got, http.StatusOK, "")
			if strings.Contains(string(got.raw), "alice-secret") || strings.Contains(string(got.raw), `"secret_key"`) {
				t.Errorf("an admin's GET %s shows the secret: %s", p, got.raw)
			}
		}
		got := e.do("GET", path, e.root, "")
		put := e.do("PUT", path, e.root, string(got.raw))
		want(t, put, http.StatusOK, "")
		if strings.Contains(string(put.raw), "alice-secret") {
			t.Errorf("the admin's PUT answer shows the secret: %s", put.raw)
		}
		h, err := s.Webhook(t.Context(), scopeAll, int64(got.obj(t)["id"].(float64)))
		if err != nil || h.SecretKey != "alice-secret" {
			t.Fatalf("after the admin's round trip: %q, %v", h.SecretKey, err)
		}
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type": "package-created", "payload": {"n": 1}}`), http.StatusAccepted, "")
		if ev := e.do("GET", "/whisperer/hook_events/", e.root, ""); strings.Contains(string(ev.raw), "alice-secret") {
			t.Errorf("an admin's event list shows the secret: %s", ev.raw)
		}
	})
}
