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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/api"
	"github.com/whisperer/whisperer/core/callback"
	"github.com/whisperer/whisperer/core/countdown"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
)

// FuzzHookDecode sends arbitrary bodies to hook create, PUT and PATCH on a
// real store (SQLite, and PostgreSQL when one answers: it is the stricter
// about NUL bytes and encodings). No body may produce a 5xx or a panic,
// every answer is JSON, and a hook that was accepted reads back.
//
//	go test -run='^$' -fuzz=FuzzHookDecode -fuzztime=60s ./core/api/
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
	handlers := []http.Handler{fuzzHandler(f, store.SQLite)}
	if postgresUp() {
		handlers = append(handlers, fuzzHandler(f, store.Postgres))
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

func fuzzHandler(f *testing.F, backend string) http.Handler {
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
	h, err := api.New(api.Config{}, api.Deps{Store: s, Countdowns: countdown.NewRegistry(), Callbacks: cbs}, nil)
	if err != nil {
		f.Fatal(err)
	}
	// Hook 1 is the target of PUT and PATCH.
	if _, err := s.CreateWebhook(ctx, webhook.Webhook{UserID: u.ID, TargetURL: "https://example.com/1", EventType: "package-created",
		IsActive: true, RetryCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":1}`)},
		Config: map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p"}}}); err != nil {
		f.Fatal(err)
	}
	return h
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
