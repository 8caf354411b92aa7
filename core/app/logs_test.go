package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// A whole run logged at debug in JSON — users, hooks with a secret_key,
// basic auth and additional headers, publishes, deliveries, failures,
// retries, a give-up, bad tokens — never logs a token, a secret, a
// password or a header value; every API line carries a request id and
// every attempt line the event uuid, hook id and attempt.
func TestLogsKeepSecrets(t *testing.T) {
	const (
		secretKey = "SECRET-KEY-b1f3"
		password  = "PASSWORD-9c2e"
		headerVal = "HEADER-VALUE-77aa"
		badToken  = "BADTOKEN0123456789abcdef0123456789abcdef"
		// rotatedKey replaces secretKey with "rotate": true.
		rotatedKey = "ROTATED-KEY-4d8f"
	)
	n := startNode(t, "sqlite", nil, func(c *config.Config) {
		c.Log = config.Log{Level: "debug", Format: "json"}
		c.Delivery.MaxRetries = 2
		c.RequestTimeout.Connect, c.RequestTimeout.Read = time.Second, time.Second
	})
	var calls atomic.Int64
	var sawAuth atomic.Bool
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "bob" && p == password && r.Header.Get("X-Api-Key") == headerVal {
			sawAuth.Store(true)
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "try later")
		}
	}))
	t.Cleanup(recv.Close)

	_, root := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
	fixed := map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 1}}
	var hook map[string]any
	n.do(t, "POST", "/whisperer/hooks/", root, map[string]any{
		"event_type": "package-created", "target_url": recv.URL + "/", "secret_key": secretKey,
		"retry_countdown_config": fixed, "additional_headers": map[string]string{"X-Api-Key": headerVal},
		"config": map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "bob", "password": password}},
	}, http.StatusCreated, &hook)
	// A target nothing listens on: refused connections until given up.
	n.do(t, "POST", "/whisperer/hooks/", root, map[string]any{
		"event_type": "package-created", "target_url": "http://127.0.0.1:1/", "secret_key": secretKey,
		"retry_countdown_config": fixed,
		"config":                 map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "bob", "password": password}},
	}, http.StatusCreated, nil)
	n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%v/", hook["id"]), root, map[string]any{
		"config": map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "bob", "password": password}},
	}, http.StatusOK, nil)
	// A rotation: the old secret keeps signing, the new one too.
	n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%v/", hook["id"]), root, map[string]any{
		"secret_key": rotatedKey, "rotate": true,
	}, http.StatusOK, nil)
	n.do(t, "GET", "/whisperer/hooks/", badToken, nil, http.StatusUnauthorized, nil)
	n.do(t, "POST", "/whisperer/events/", root, map[string]any{
		"event_type": "package-created", "payload": map[string]any{"id": 1},
	}, http.StatusAccepted, nil)
	n.do(t, "POST", "/whisperer/events/", root, map[string]any{
		"event_type": "package-created", "payload": map[string]any{"id": 2}, "async": false,
	}, http.StatusOK, nil)

	poll.UntilNil(t, 15*time.Second, func() error {
		c, err := n.Store.Counts(t.Context())
		if err != nil {
			return err
		}
		if c[webhook.StateDelivered] != 2 || c[webhook.StateGivenUp] != 2 {
			return notYet(fmt.Sprint("counts ", c))
		}
		return nil
	})
	if !sawAuth.Load() {
		t.Error("the receiver never got the basic auth and additional header: the test proves nothing")
	}
	var events struct{ Results []map[string]any }
	n.do(t, "GET", "/whisperer/hook_events/", root, nil, http.StatusOK, &events)

	res, err := http.Get(n.url + app.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	logs := n.logs.String()
	// The encryption key of secrets at rest (SQLite's key file).
	key, err := os.ReadFile(strings.TrimPrefix(n.dbURL, "sqlite://") + ".key")
	if err != nil || len(strings.TrimSpace(string(key))) != 44 {
		t.Fatalf("read the key file: %v", err)
	}
	for name, secret := range map[string]string{
		"rotated secret_key": rotatedKey, "encryption key": strings.TrimSpace(string(key)),
		"token": root, "bad token": badToken, "secret_key": secretKey, "password": password,
		"basic auth header":       base64.StdEncoding.EncodeToString([]byte("bob:" + password)),
		"additional header value": headerVal,
	} {
		if strings.Contains(logs, secret) || strings.Contains(string(metrics), secret) {
			t.Errorf("the %s appears in the logs or metrics", name)
		}
	}
	var apiLines, attemptLines int
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["component"] == "api" {
			apiLines++
			if id, _ := rec["request_id"].(string); id == "" {
				t.Errorf("API log line without request_id: %s", line)
			}
		}
		if _, ok := rec["attempt"]; ok && rec["component"] == "delivery" {
			attemptLines++
			if rec["event_uuid"] == nil || rec["webhook_id"] == nil {
				t.Errorf("attempt log line without event_uuid or webhook_id: %s", line)
			}
		}
	}
	if apiLines < 7 || attemptLines < 4 {
		t.Errorf("%d API lines and %d attempt lines logged; expected every request and attempt:\n%s", apiLines, attemptLines, logs)
	}
}
