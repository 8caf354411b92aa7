package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func TestAuth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		revoked := e.bob
		if _, err := s.RevokeToken(t.Context(), revoked); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, header, doc string }{
			{"missing", "", `{"detail":"Authentication credentials were not provided."}`},
			{"other scheme", "Basic dXNlcjpwYXNz", `{"detail":"Authentication credentials were not provided."}`},
			{"no key", "Token", `{"detail":"Invalid token header. No credentials provided."}`},
			{"spaces", "Token a b", `{"detail":"Invalid token header. Token string should not contain spaces."}`},
			{"invalid", "Token 0123456789abcdef0123456789abcdef01234567", `{"detail":"Invalid token."}`},
			{"sql", "Token '||'1'='1", `{"detail":"Invalid token."}`},
			{"huge", "Token " + strings.Repeat("a", 5000), `{"detail":"Invalid token."}`},
			{"unicode", "Token ключ", `{"detail":"Invalid token."}`},
			{"revoked", "Token " + revoked, `{"detail":"Invalid token."}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/whisperer/hooks/", "/whisperer/hook_events/1/", "/whisperer/events/", "/whisperer/event_types/"} {
					r := e.do("GET", path, "", nil, "Authorization", tc.header)
					want(t, r, http.StatusUnauthorized, tc.doc)
					if r.header.Get("WWW-Authenticate") != "Token" {
						t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
					}
				}
			})
		}
		// Token, token and Bearer all work.
		for _, h := range []string{"Token " + e.alice, "token " + e.alice, "Bearer " + e.alice} {
			want(t, e.do("GET", "/whisperer/hooks/", "", nil, "Authorization", h), http.StatusOK, "")
		}
	})
}

func TestBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		h := e.createHook(e.alice, hookBody("https://example.com/a"))
		hook := idPath("/whisperer/hooks/", h["id"])
		valid := `{"target_url":"https://example.com/new","event_type":"package-created"}`
		for _, tc := range []struct {
			name, method, path, body, contentType string
			status                                int
			doc                                   string
		}{
			{"malformed", "POST", "/whisperer/hooks/", `{"target_url":`, "", 400, ""},
			{"trailing garbage", "POST", "/whisperer/hooks/", valid + `}`, "", 400, ""},
			{"two values", "POST", "/whisperer/hooks/", valid + valid, "", 400, ""},
			{"invalid utf-8", "POST", "/whisperer/hooks/", "{\"target_url\":\"https://example.com/\xff\",\"event_type\":\"package-created\"}", "", 400,
				`{"detail":"JSON parse error - the body is not valid UTF-8"}`},
			{"list", "POST", "/whisperer/hooks/", `[1]`, "", 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`},
			{"string", "PUT", hook, `"x"`, "", 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got str."]}`},
			{"number", "PATCH", hook, `1.5`, "", 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got float."]}`},
			{"null", "POST", "/whisperer/hooks/", `null`, "", 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got NoneType."]}`},
			{"deep", "POST", "/whisperer/hooks/", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "", 400, ""},
			{"text/plain", "POST", "/whisperer/hooks/", valid, "text/plain", 415, `{"detail":"Unsupported media type \"text/plain\" in request."}`},
			{"form", "PATCH", hook, "is_active=false", "application/x-www-form-urlencoded", 415, ""},
			{"bad media type", "PUT", hook, valid, "application/", 415, ""},
			{"json with charset", "POST", "/whisperer/hooks/", valid, "application/json; charset=utf-8", 201, ""},
			{"bad hook id", "GET", "/whisperer/hooks/abc/", "", "", 404, `{"detail":"Not found."}`},
			{"zero hook id", "PATCH", "/whisperer/hooks/0/", `{}`, "", 404, `{"detail":"Not found."}`},
			{"negative hook id", "DELETE", "/whisperer/hooks/-1/", "", "", 404, `{"detail":"Not found."}`},
			{"huge hook id", "GET", "/whisperer/hooks/99999999999999999999999/", "", "", 404, `{"detail":"Not found."}`},
			{"missing hook", "PUT", "/whisperer/hooks/424242/", valid, "", 404, `{"detail":"Not found."}`},
			{"sql hook id", "GET", "/whisperer/hooks/1%20OR%201=1/", "", "", 404, `{"detail":"Not found."}`},
			{"unknown path", "GET", "/whisperer/nope/", "", "", 404, `{"detail":"Not found."}`},
			{"method", "DELETE", "/whisperer/hooks/", "", "", 405, `{"detail":"Method \"DELETE\" not allowed."}`},
			{"method on event", "DELETE", "/whisperer/hook_events/1/", "", "", 405, `{"detail":"Method \"DELETE\" not allowed."}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body any
				if tc.body != "" {
					body = tc.body
				}
				var hdr []string
				if tc.contentType != "" {
					hdr = []string{"Content-Type", tc.contentType}
				}
				r := e.do(tc.method, tc.path, e.alice, body, hdr...)
				want(t, r, tc.status, tc.doc)
				if tc.status == 400 && tc.doc == "" && !strings.HasPrefix(r.obj(t)["detail"].(string), "JSON parse error - ") {
					t.Errorf("parse error %s", r.raw)
				}
			})
		}
		r := e.do("DELETE", "/whisperer/hooks/", e.alice, nil)
		if r.header.Get("Allow") != "GET, POST, HEAD, OPTIONS" {
			t.Errorf("Allow %q", r.header.Get("Allow"))
		}

		// 413, by Content-Length and by a body that lies about it.
		big := `{"target_url":"https://example.com/","event_type":"package-created","secret_key":"` + strings.Repeat("x", 2<<20) + `"}`
		want(t, e.do("POST", "/whisperer/hooks/", e.alice, big), http.StatusRequestEntityTooLarge, `{"detail":"Request body is larger than 1048576 bytes."}`)
		req, _ := http.NewRequest("POST", e.srv.URL+"/whisperer/hooks/", strings.NewReader(big))
		req.ContentLength = -1 // chunked
		req.Header.Set("Authorization", "Token "+e.alice)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked huge body: %d", res.StatusCode)
		}

		// Nothing half-written: only the two hooks created above exist,
		// and the first is unchanged.
		list := e.do("GET", "/whisperer/hooks/", e.alice, nil)
		if n := len(list.obj(t)["results"].([]any)); n != 2 {
			t.Errorf("%d hooks after bad input, want 2", n)
		}
		if got := e.do("GET", hook, e.alice, nil); !jsonEqual(got.body, h) {
			t.Errorf("hook changed by bad input:\n%s", got.raw)
		}
	})
}

func TestRoutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		// Trailing slash optional on every route.
		for _, p := range []string{"/whisperer/hooks", "/whisperer/hooks/", "/whisperer/event_types", "/whisperer/hook_events"} {
			want(t, e.do("GET", p, e.alice, nil), http.StatusOK, "")
		}
		h := e.createHook(e.alice, hookBody("https://example.com/a"))
		want(t, e.do("GET", strings.TrimSuffix(idPath("/whisperer/hooks/", h["id"]), "/"), e.alice, nil), http.StatusOK, "")
		want(t, e.do("POST", "/whisperer/events", e.pub, `{"event_type":"package-created"}`), http.StatusAccepted, "")

		want(t, e.do("GET", "/whisperer/event_types/", e.alice, nil), http.StatusOK,
			`{"next":null,"previous":null,"results":[{"name":"order-created"},{"name":"package-created"},{"name":"Ünïcode-type"}]}`)
		want(t, e.do("GET", "/whisperer/plugins/", e.alice, nil), http.StatusOK,
			`{"next":null,"previous":null,"results":[{"file":"x.wasm"}]}`)

		r := e.do("OPTIONS", "/whisperer/hooks/1/", e.alice, nil)
		if r.status != http.StatusNoContent || r.header.Get("Allow") != "GET, PUT, PATCH, DELETE, HEAD, OPTIONS" {
			t.Errorf("OPTIONS: %d %q", r.status, r.header.Get("Allow"))
		}
		want(t, e.do("HEAD", "/whisperer/hooks/", e.alice, nil), http.StatusOK, "")

		// Probes need no token.
		want(t, e.do("GET", "/healthz", "", nil), http.StatusOK, `{"status":"ok"}`)
		want(t, e.do("GET", "/readyz", "", nil), http.StatusOK, `{"status":"ok"}`)
		want(t, e.do("POST", "/healthz", "", nil), http.StatusMethodNotAllowed, `{"detail":"Method \"POST\" not allowed."}`)

		// Request ids: echoed when sane, generated otherwise.
		r = e.do("GET", "/healthz", "", nil, "X-Request-Id", "abc-123")
		if r.header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("request id %q", r.header.Get("X-Request-Id"))
		}
		r = e.do("GET", "/healthz", "", nil, "X-Request-Id", "bad id\twith spaces")
		if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
			t.Errorf("request id %q", id)
		}

		// A closed database: readyz and the API say 503, never 500.
		s.Close()
		want(t, e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, `{"detail":"The database is unavailable; try again shortly."}`)
		want(t, e.do("GET", "/whisperer/hooks/", e.alice, nil), http.StatusServiceUnavailable, `{"detail":"The database is unavailable; try again shortly."}`)
	})
}

// The base path is configurable, the default countdown applies, and the
// access log carries the request id but never the token.
func TestConfigAndLogs(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	if err := s.AddEventTypes(t.Context(), eventType); err != nil {
		t.Fatal(err)
	}
	_, tok := storetest.User(t, s, "alice", webhook.RoleUser)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg := api.Config{BasePath: "/api/v2/", DefaultRetryCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":"7"}`)}}
	h, err := api.New(cfg, api.Deps{Store: s, Countdowns: countdown.NewRegistry()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{t: t, s: s, srv: srv}
	r := e.do("POST", "/api/v2/hooks", tok, hookBody("https://example.com/"), "X-Request-Id", "req-42")
	want(t, r, http.StatusCreated, "")
	if !jsonEqual(r.obj(t)["retry_countdown_config"], map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 7}}) {
		t.Errorf("default countdown %v", r.obj(t)["retry_countdown_config"])
	}
	// Without a callback registry only an empty callback is valid.
	b := hookBody("https://example.com/cb")
	b["callback"] = "foo.bar.app.callback"
	want(t, e.do("POST", "/api/v2/hooks/", tok, b), http.StatusBadRequest, `{"callback":["\"foo.bar.app.callback\" is not a valid choice."]}`)
	want(t, e.do("GET", "/whisperer/hooks/", tok, nil), http.StatusNotFound, "")
	if !strings.Contains(logs.String(), `"request_id":"req-42"`) || !strings.Contains(logs.String(), `"status":201`) {
		t.Errorf("access log lacks the request: %s", logs.String())
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), "s3cret") {
		t.Errorf("a secret was logged: %s", logs.String())
	}

	// Bad configuration is an error, not a server.
	for _, c := range []api.Config{
		{BasePath: "whisperer"},
		{DefaultRetryCountdown: webhook.CountdownConfig{Choice: "nope", Kwargs: []byte(`{}`)}},
	} {
		if _, err := api.New(c, api.Deps{Store: s, Countdowns: countdown.NewRegistry()}, nil); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := api.New(api.Config{}, api.Deps{}, nil); err == nil {
		t.Error("missing deps accepted")
	}
	_ = context.Background
}
