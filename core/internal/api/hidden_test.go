package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// additional_headers values are secrets: an admin reading another user's
// hook sees the names with a placeholder; the admin's GET → PUT/PATCH
// round trip keeps the stored values; the placeholder for a header the
// hook lacks is refused. The owner sees and can set the values.
func TestHeaderValuesOnlyToTheirOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{"event_type": "package-created", "target_url": "https://example.com/",
			"additional_headers": {"X-Api-Key": "alice-header-secret", "X-Other": "other-secret"}}`)
		want(t, r, http.StatusCreated, "")
		id := r.obj(t)["id"]
		path := fmt.Sprintf("/whisperer/hooks/%v/", id)
		if got := e.do("GET", path, e.alice, ""); !strings.Contains(string(got.raw), `"X-Api-Key":"alice-header-secret"`) {
			t.Fatalf("the owner does not get the header: %s", got.raw)
		}
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type": "package-created", "payload": {"n": 1}}`), http.StatusAccepted, "")
		for _, p := range []string{path, "/whisperer/hooks/", "/whisperer/hook_events/"} {
			got := e.do("GET", p, e.root, "")
			want(t, got, http.StatusOK, "")
			if strings.Contains(string(got.raw), "header-secret") || strings.Contains(string(got.raw), "other-secret") ||
				!strings.Contains(string(got.raw), `"X-Api-Key":"********"`) {
				t.Errorf("an admin's GET %s: %s", p, got.raw)
			}
		}
		got := e.do("GET", path, e.root, "")
		want(t, e.do("PUT", path, e.root, string(got.raw)), http.StatusOK, "")
		want(t, e.do("PATCH", path, e.root, `{"additional_headers": {"X-Api-Key": "********", "X-New": "v"}}`), http.StatusOK, "")
		h := storedHook(t, s, id)
		if h.AdditionalHeaders["X-Api-Key"] != "alice-header-secret" || h.AdditionalHeaders["X-New"] != "v" ||
			len(h.AdditionalHeaders) != 2 {
			t.Fatalf("after the admin's round trips: %v", h.AdditionalHeaders)
		}
		want(t, e.do("PATCH", path, e.root, `{"additional_headers": {"X-Other": "********"}}`), http.StatusBadRequest,
			`{"additional_headers":{"X-Other":["This hook has no such header, so there is no hidden value to keep: send the value."]}}`)
		// The kept values count towards the 16 KiB bound.
		want(t, e.do("PATCH", path, e.alice, fmt.Sprintf(`{"additional_headers": {"X-Api-Key": %q}}`, strings.Repeat("k", 8000))),
			http.StatusOK, "")
		want(t, e.do("PATCH", path, e.root, fmt.Sprintf(`{"additional_headers": {"X-Api-Key": "********", "X-Big": %q, "X-Big2": %q}}`,
			strings.Repeat("b", 8192), strings.Repeat("c", 300))), http.StatusBadRequest,
			`{"additional_headers":["Ensure the header names and values total no more than 16384 bytes."]}`)
		// The owner's placeholder is a value like any other.
		want(t, e.do("PATCH", path, e.alice, `{"additional_headers": {"X-Api-Key": "********"}}`), http.StatusOK, "")
		if h := storedHook(t, s, id); h.AdditionalHeaders["X-Api-Key"] != "********" {
			t.Fatalf("the owner's value: %v", h.AdditionalHeaders)
		}
	})
}

// A target_url with credentials, as an older release stored it, is shown
// to nobody with them, and a round trip of the redacted URL is refused.
func TestLegacyURLCredentialsRedacted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{"event_type": "package-created", "target_url": "https://example.com/x"}`)
		want(t, r, http.StatusCreated, "")
		id := r.obj(t)["id"]
		if _, err := s.DB().NewUpdate().Table("webhooks").Set("target_url = ?", "https://carol:url-pw-secret@example.com/x").
			Where("id = ?", id).Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("/whisperer/hooks/%v/", id)
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type": "package-created", "payload": {"n": 1}}`), http.StatusAccepted, "")
		for _, tok := range []string{e.alice, e.root} {
			for _, p := range []string{path, "/whisperer/hooks/", "/whisperer/hook_events/"} {
				got := e.do("GET", p, tok, "")
				if strings.Contains(string(got.raw), "carol") || strings.Contains(string(got.raw), "url-pw-secret") ||
					!strings.Contains(string(got.raw), `"target_url":"https://***@example.com/x"`) {
					t.Errorf("GET %s: %s", p, got.raw)
				}
			}
		}
		got := e.do("GET", path, e.alice, "")
		want(t, e.do("PUT", path, e.alice, string(got.raw)), http.StatusBadRequest,
			`{"target_url":["Enter a URL without credentials: set them in config.auth, whose password is write-only."]}`)
	})
}
