package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// Page links never come from the request: a Host (or forwarding) header
// naming another host must not turn up in next or previous, which are
// relative, or start with server.public_url when it is set.
func TestPageLinksIgnoreHost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		for i := range 3 {
			e.createHook(e.alice, hookBody("https://example.com/"+string(rune('a'+i))))
		}
		// get sends path to srv with a hostile Host header (which
		// http.Header cannot set) and forwarding headers.
		get := func(srv *httptest.Server, path string) map[string]any {
			t.Helper()
			req, err := http.NewRequest("GET", srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "evil.example"
			req.Header.Set("Authorization", "Token "+e.alice)
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Forwarded", "host=evil.example;proto=https")
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
			}
			return m
		}
		next, _ := get(e.srv, "/whisperer/hooks/?page_size=1")["next"].(string)
		if !strings.HasPrefix(next, "/") || strings.Contains(next, "evil") {
			t.Fatalf("next %q, want a relative link", next)
		}
		prev, _ := get(e.srv, next)["previous"].(string)
		for _, l := range []string{next, prev} {
			if !strings.HasPrefix(l, "/whisperer/hooks/?") || strings.Contains(l, "evil") {
				t.Errorf("link %q, want a relative one", l)
			}
		}

		// With server.public_url, links start with it.
		h, err := api.New(api.Config{PublicURL: "https://api.example.com/proxy/"}, api.Deps{Store: s, Countdowns: countdown.NewRegistry()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		if next, _ := get(srv, "/whisperer/hooks/?page_size=1")["next"].(string); !strings.HasPrefix(next, "https://api.example.com/proxy/whisperer/hooks/?") || strings.Contains(next, "evil") {
			t.Errorf("next %q, want it under the public URL", next)
		}
	})
}

// A public URL that is not an http(s) origin is refused.
func TestPublicURLValidated(t *testing.T) {
	for _, bad := range []string{"evil.example", "//evil.example", "javascript:alert(1)", "https://u:p@api.example", "https://api.example/?q", "https://api.example/#f"} {
		if _, err := api.New(api.Config{PublicURL: bad}, api.Deps{Store: (*store.Store)(nil), Countdowns: countdown.NewRegistry()}, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
