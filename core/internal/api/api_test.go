package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// env is a real API over a real store, served by a real HTTP server.
type env struct {
	t        *testing.T
	s        *store.Store
	srv      *httptest.Server
	notified atomic.Int64
	// tokens of the standard users: alice and bob (role user), pub
	// (publisher), root (admin).
	alice, bob, pub, root string
	aliceID, bobID        int64
}

const eventType = "package-created"

func newEnv(t *testing.T, s *store.Store) *env {
	t.Helper()
	return newEnvWith(t, s, api.Config{}, s)
}

// newEnvWith is newEnv with cfg, serving st (s, or s wrapped).
func newEnvWith(t *testing.T, s *store.Store, cfg api.Config, st api.Store) *env {
	t.Helper()
	return newEnvDeps(t, s, cfg, st, nil)
}

// newEnvDeps is newEnvWith with more dependencies set by deps.
func newEnvDeps(t *testing.T, s *store.Store, cfg api.Config, st api.Store, deps func(*api.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	if err := s.AddEventTypes(ctx, eventType, "order-created", "Ünïcode-type"); err != nil {
		t.Fatal(err)
	}
	cds := countdown.NewRegistry()
	// dj-whisperer's documented custom countdown, registered the way a
	// plugin registers it.
	if err := cds.Register("test", "custom", webhook.Countdown{
		Value: func(context.Context, int, json.RawMessage) (int64, error) { return 1, nil },
		Validate: func(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
			var v struct{ Factor *int }
			if err := json.Unmarshal(kw, &v); err != nil || v.Factor == nil {
				return nil, map[string]any{"factor": []string{"This field is required."}}, nil
			}
			if *v.Factor < 1 {
				return nil, map[string]any{"factor": []string{"Ensure this value is greater than or equal to 1."}}, nil
			}
			return kw, nil, nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	cbs := &callback.Registry{}
	if err := cbs.Register("test", "foo.bar.app.callback", func(context.Context, *webhook.CallbackDoc) error { return nil }); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s}
	d := api.Deps{
		Store: st, Countdowns: cds, Callbacks: cbs,
		Notify:  func() { e.notified.Add(1) },
		Plugins: func() any { return []map[string]string{{"file": "x.wasm"}} },
	}
	if deps != nil {
		deps(&d)
	}
	h, err := api.New(cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(conform(t, h))
	t.Cleanup(e.srv.Close)
	var u webhook.User
	u, e.alice = storetest.User(t, s, "alice", webhook.RoleUser)
	e.aliceID = u.ID
	u, e.bob = storetest.User(t, s, "bob", webhook.RoleUser)
	e.bobID = u.ID
	_, e.pub = storetest.User(t, s, "pub", webhook.RolePublisher)
	_, e.root = storetest.User(t, s, "root", webhook.RoleAdmin)
	return e
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   any
}

// obj returns the body as an object, failing the test otherwise.
func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.body.(map[string]any)
	if !ok {
		t.Fatalf("body is not an object: %s", r.raw)
	}
	return m
}

// do sends a request. body is sent as is when it is a string or []byte,
// else as JSON.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			e.t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		e.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return r
}

// want fails unless r has status and, when doc is not nil, exactly the JSON
// document doc.
func want(t *testing.T, r resp, status int, doc string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	if doc == "" {
		return
	}
	var w any
	if err := json.Unmarshal([]byte(doc), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", doc, err)
	}
	if !jsonEqual(w, r.body) {
		t.Fatalf("body\n  %s\nwant\n  %s", r.raw, doc)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// createHook registers a hook for token and returns its JSON.
func (e *env) createHook(token string, body map[string]any) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/whisperer/hooks/", token, body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create hook: %d %s", r.status, r.raw)
	}
	return r.obj(e.t)
}

func hookBody(target string) map[string]any {
	return map[string]any{"event_type": eventType, "target_url": target, "secret_key": "s3cret"}
}

func idPath(prefix string, id any) string {
	b, _ := json.Marshal(id)
	return prefix + string(b) + "/"
}

var (
	scopeAll   = webhook.Scope{All: true}
	filterNone = webhook.HookFilter{}
	pageAll    = webhook.Page{Limit: 1000}
)

// storedHook reads a hook straight from the store, password included.
func storedHook(t *testing.T, s *store.Store, id any) webhook.Webhook {
	t.Helper()
	h, err := s.Webhook(t.Context(), scopeAll, int64(id.(float64)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pointer[T any](v T) *T { return &v }
