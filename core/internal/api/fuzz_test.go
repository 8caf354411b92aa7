package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// FuzzHookDecode sends arbitrary bodies to hook create, PUT and PATCH on a
// real store (SQLite, and PostgreSQL when one answers: it is the stricter
// about NUL bytes and encodings). No body may produce a 5xx or a panic,
// every answer is JSON, and a hook that was accepted reads back.
//
//	go test -run='^$' -fuzz=FuzzHookDecode -fuzztime=60s ./core/internal/api/
func FuzzHookDecode(f *testing.F) {
	for _, seed := range []string{
		`{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/"}`,
		`{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/", "callback": "foo.bar.app.callback", "retry_countdown_config": {"choice": "exponential", "kwargs": {"base": 2}}}`,
		`{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/", "retry_countdown_config": {"choice": "random", "kwargs": {"min_value": 1, "max_value": "5.0"}}}`,
		`{"event_type": "order-created", "target_url": "https://example.com/order-created/", "config": {"auth": {"auth_type": "basic", "username": "username", "password": "password"}}}`,
		`{"event_type": "order-created", "target_url": "http://[::1]:8080/x?y=z", "config": {"auth": {"auth_type": "basic", "username": "u"}}, "additional_headers": {"X-A": "b"}}`,
		`{"is_active": "0", "additional_headers": {"X-A\n": "b\r\n"}, "config": null, "id": 1}`,
		`{"target_url": "https://ex\u0000ample.com/", "event_type": "\u0000", "secret_key": 1e400}`,
		`{"retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 99999999999999999999999}}}`,
		`[]`, `null`, `"x"`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	handlers := []http.Handler{fuzzHandler(f, store.SQLite).h}
	if postgresUp() {
		handlers = append(handlers, fuzzHandler(f, store.Postgres).h)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, h := range handlers {
			for _, m := range []struct{ method, path string }{
				{"POST", "/whisperer/hooks/"}, {"PUT", "/whisperer/hooks/1/"}, {"PATCH", "/whisperer/hooks/1/"},
			} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(m.method, m.path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Token "+fuzzToken)
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("%s %s %q: %d %s", m.method, m.path, body, rec.Code, rec.Body)
				}
				var doc map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
					t.Fatalf("%s %s %q: answer is not a JSON object: %q", m.method, m.path, body, rec.Body)
				}
				if rec.Code == http.StatusCreated || rec.Code == http.StatusOK {
					get := httptest.NewRecorder()
					req := httptest.NewRequest("GET", fmt.Sprintf("/whisperer/hooks/%v/", doc["id"]), nil)
					req.Header.Set("Authorization", "Token "+fuzzToken)
					h.ServeHTTP(get, req)
					if get.Code != http.StatusOK {
						t.Fatalf("accepted hook %s does not read back: %d %s", rec.Body, get.Code, get.Body)
					}
				}
			}
		}
	})
}

// fuzzToken is the one user's token in every fuzz store; a fixed value
// keeps the handlers interchangeable.
var fuzzToken string

// fuzzEnv is a real API over a real store.
type fuzzEnv struct {
	h      http.Handler
	s      *store.Store
	userID int64
}

func fuzzHandler(f *testing.F, backend string) fuzzEnv {
	return fuzzHandlerWith(f, backend, nil)
}

// fuzzHandlerWith is fuzzHandler whose deps are edited by with (if set)
// before the API is built.
func fuzzHandlerWith(f *testing.F, backend string, with func(*api.Deps, *store.Store)) fuzzEnv {
	s := storetest.New(f, backend)
	ctx := context.Background()
	if err := s.AddEventTypes(ctx, "package-created", "order-created"); err != nil {
		f.Fatal(err)
	}
	u, err := s.CreateUser(ctx, "fuzz", webhook.RoleUser)
	if err != nil {
		f.Fatal(err)
	}
	if fuzzToken == "" {
		if fuzzToken, err = s.CreateToken(ctx, u.ID); err != nil {
			f.Fatal(err)
		}
	} else if err := addToken(ctx, s, u.ID, fuzzToken); err != nil {
		f.Fatal(err)
	}
	cbs := &callback.Registry{}
	_ = cbs.Register("test", "foo.bar.app.callback", func(context.Context, *webhook.CallbackDoc) error { return nil })
	deps := api.Deps{Store: s, Countdowns: countdown.NewRegistry(), Callbacks: cbs}
	if with != nil {
		with(&deps, s)
	}
	h, err := api.New(api.Config{}, deps, nil)
	if err != nil {
		f.Fatal(err)
	}
	// Hook 1 is the target of PUT and PATCH.
	if _, err := s.CreateWebhook(ctx, webhook.Webhook{UserID: u.ID, TargetURL: "https://example.com/1", EventType: "package-created",
		IsActive: true, RetryCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":1}`)},
		Config: map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p"}}}); err != nil {
		f.Fatal(err)
	}
	return fuzzEnv{h: h, s: s, userID: u.ID}
}

// addToken stores key for userID the way CreateToken does (SHA-256 hex),
// so that one token works on every fuzz store.
func addToken(ctx context.Context, s *store.Store, userID int64, key string) error {
	_, err := s.DB().ExecContext(ctx,
		`INSERT INTO api_tokens (user_id, key_hash, prefix, created_at) VALUES (?, ?, ?, ?)`,
		userID, sha256Hex(key), key[:8], time.Now().UTC())
	return err
}

func postgresUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, storetest.PostgresDSN())
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// FuzzHookCountdownKwargs posts hooks with arbitrary retry_countdown_config
// kwargs for each built-in countdown. No kwargs may produce a 5xx or a
// panic, and the countdown of a hook that was accepted computes a wait
// within [0, MaxWait] for every retry count up to max_retries (the
// crash report: random up to 2^63-1 was accepted, then panicked when the
// first attempt failed).
//
//	go test -run='^$' -fuzz=FuzzHookCountdownKwargs -fuzztime=60s ./core/internal/api/
func FuzzHookCountdownKwargs(f *testing.F) {
	for _, seed := range []string{
		`{"seconds": 60}`, `{"base": 2, "limit": 3600}`, `{"base": "2.0", "limit": null}`,
		`{"min_value": 0, "max_value": 9223372036854775807}`, `{"min_value": 0, "max_value": 2592000}`,
		`{"seconds": 2592001}`, `{"base": -1}`, `{"seconds": 1e400}`, `{"seconds": "99999999999999999999"}`,
		`[]`, `null`, `"x"`, `{}`,
	} {
		for choice := range uint8(4) {
			f.Add(choice, seed)
		}
	}
	envs := []fuzzEnv{fuzzHandler(f, store.SQLite)}
	if postgresUp() {
		envs = append(envs, fuzzHandler(f, store.Postgres))
	}
	cds := countdown.NewRegistry()
	choices := []string{"fixed", "linear", "exponential", "random"}
	f.Fuzz(func(t *testing.T, choice uint8, kwargs string) {
		c := choices[int(choice)%len(choices)]
		body := fmt.Sprintf(`{"event_type": "package-created", "target_url": "https://example.com/",
			"retry_countdown_config": {"choice": %q, "kwargs": %s}}`, c, kwargs)
		for _, e := range envs {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/whisperer/hooks/", strings.NewReader(body))
			req.Header.Set("Authorization", "Token "+fuzzToken)
			req.Header.Set("Content-Type", "application/json")
			e.h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: %d %s", body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusCreated {
				continue
			}
			var doc struct{ ID int64 }
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			hook, err := e.s.Webhook(context.Background(), webhook.Scope{All: true}, doc.ID)
			if err != nil {
				t.Fatal(err)
			}
			for n := range delivery.DefaultMaxRetries + 1 {
				w, err := cds.Wait(context.Background(), hook.RetryCountdown, n)
				if err != nil || w < 0 || w > countdown.MaxWait {
					t.Fatalf("accepted %s %s: Wait(%d) = %s, %v", c, hook.RetryCountdown.Kwargs, n, w, err)
				}
			}
		}
	})
}

// batchedStore publishes through the group-commit batcher, as the server
// does.
type batchedStore struct {
	*store.Store
	b *publish.Batcher
}

func (s batchedStore) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	return s.b.Publish(ctx, req)
}

// FuzzPublishBody sends arbitrary publish bodies and Idempotency-Keys to
// POST events/ on the server's publish path: the batcher, and inline
// delivery ("async": false) by a real dispatcher to a loopback receiver
// that answers 500, for a hook stored with countdown kwargs the previous
// release accepted (random up to 2^63-1). No body may produce a 5xx or a
// panic, and every answer is a JSON object.
//
//	go test -run='^$' -fuzz=FuzzPublishBody -fuzztime=60s ./core/internal/api/
func FuzzPublishBody(f *testing.F) {
	for _, seed := range []string{
		`{"event_type": "package-created", "payload": {"id": 1}}`,
		`{"event_type": "package-created", "payload": {"id": 1}, "async": false}`,
		`{"event_type": "order-created", "payload": [1, "ü", null], "async": "false"}`,
		`{"event_type": "package-created", "payload": "\u0000\ud800", "async": false}`,
		`{"event_type": "package-created", "payload": 1e400}`,
		`{"event_uuid": "00000000-0000-0000-0000-000000000000", "force": true}`,
		`{"event_type": "nope"}`, `{"payload": {}}`, `{"event_type": 1}`,
		`[]`, `null`, `"x"`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), "key-1")
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	f.Cleanup(receiver.Close)
	backends := []string{store.SQLite}
	if postgresUp() {
		backends = append(backends, store.Postgres)
	}
	var envs []fuzzEnv
	for _, backend := range backends {
		e := fuzzHandlerWith(f, backend, func(deps *api.Deps, s *store.Store) {
			b := publish.New(s, 16)
			if err := b.Start(context.Background()); err != nil {
				f.Fatal(err)
			}
			f.Cleanup(func() { _ = b.Stop(context.Background()) })
			d, err := delivery.New(delivery.Config{AllowNetworks: []string{"127.0.0.0/8"}}, s, countdown.NewRegistry(), nil, nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Cleanup(func() { _ = d.Stop(context.Background()) })
			deps.Store, deps.DeliverNow = batchedStore{s, b}, d.DeliverNow
		})
		if _, err := e.s.CreateWebhook(context.Background(), webhook.Webhook{UserID: e.userID, TargetURL: receiver.URL,
			EventType: "order-created", IsActive: true, RetryCountdown: webhook.CountdownConfig{Choice: "random",
				Kwargs: []byte(`{"min_value": 0, "max_value": 9223372036854775807}`)}}); err != nil {
			f.Fatal(err)
		}
		if _, err := e.s.DB().ExecContext(context.Background(), `UPDATE users SET role = ? WHERE id = ?`,
			string(webhook.RoleAdmin), e.userID); err != nil {
			f.Fatal(err)
		}
		envs = append(envs, e)
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		for _, e := range envs {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/whisperer/events/", bytes.NewReader(body))
			req.Header.Set("Authorization", "Token "+fuzzToken)
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header["Idempotency-Key"] = []string{key}
			}
			e.h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%q (key %q): %d %s", body, key, rec.Code, rec.Body)
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("%q: answer is not a JSON object: %q", body, rec.Body)
			}
		}
	})
}
