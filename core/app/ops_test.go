package app_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// opsReceiver records the operational events it receives, checking each
// one's signature with secret.
type opsReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []opsDelivery
	bad    int // requests with a wrong signature
}

type opsDelivery struct {
	Event struct {
		Type string `json:"type"`
		UUID string `json:"uuid"`
	} `json:"event"`
	Payload map[string]any `json:"payload"`
}

func (o *opsReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(o.secret))
	mac.Write(body)
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Header.Get("X-Whisperer-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		o.bad++
		return
	}
	var d opsDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		o.t.Errorf("operational event body %s: %v", body, err)
		return
	}
	o.got = append(o.got, d)
}

// of returns the received events of eventType.
func (o *opsReceiver) of(eventType string) []opsDelivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opsDelivery
	for _, d := range o.got {
		if d.Event.Type == eventType {
			out = append(out, d)
		}
	}
	return out
}

// A whole node publishes its operational events to the hooks subscribed
// to them, signed: a hook whose receiver keeps failing is given up and
// deactivated (whisperer.event.given_up, whisperer.hook.disabled), its
// callback traps and a plugin file fails to load (whisperer.plugin.failed).
// An operational event given up reports nothing (no loop). Only admins and
// publishers may subscribe, and no client may publish the reserved types.
func TestOperationalEvents(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyPlugin(t, dir, "trap.wasm")
			n := serveNode(t, backend, dir, func(c *config.Config) {
				c.Delivery.DisableAfter = time.Millisecond
				c.Delivery.MaxRetries = 2
				c.Delivery.DefaultRetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":1}`)}
			})
			<-n.Plugins.Loaded()
			_, root := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
			_, pub := storetest.User(t, n.Store, "pub", webhook.RolePublisher)
			_, alice := storetest.User(t, n.Store, "alice", webhook.RoleUser)

			ops := &opsReceiver{t: t, secret: "ops-secret"}
			opsSrv := httptest.NewServer(ops)
			t.Cleanup(opsSrv.Close)
			var failingOps int
			var mu sync.Mutex
			opsDown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				failingOps++
				mu.Unlock()
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			t.Cleanup(opsDown.Close)
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(bad.Close)

			// Subscriptions: admins and publishers, to hooks of their own.
			for _, typ := range webhook.OpsEventTypes {
				n.do(t, "POST", "/whisperer/hooks/", root, map[string]any{"event_type": typ, "target_url": opsSrv.URL + "/",
					"secret_key": ops.secret}, http.StatusCreated, nil)
			}
			n.do(t, "POST", "/whisperer/hooks/", pub, map[string]any{"event_type": webhook.EventGivenUp,
				"target_url": opsDown.URL + "/"}, http.StatusCreated, nil)
			var refused map[string][]string
			n.do(t, "POST", "/whisperer/hooks/", alice, map[string]any{"event_type": webhook.EventHookDisabled,
				"target_url": opsSrv.URL + "/"}, http.StatusBadRequest, &refused)
			if len(refused["event_type"]) != 1 || !strings.Contains(refused["event_type"][0], "Only admins and publishers") {
				t.Errorf("a user's subscription: %v", refused)
			}
			var h struct {
				ID int64 `json:"id"`
			}
			n.do(t, "POST", "/whisperer/hooks/", alice, map[string]any{"event_type": "package-created",
				"target_url": bad.URL + "/", "callback": "trap"}, http.StatusCreated, &h)
			// An admin may not move a user's hook onto them either.
			n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%d/", h.ID), root, map[string]any{
				"event_type": webhook.EventGivenUp}, http.StatusBadRequest, &refused)
			if len(refused["event_type"]) != 1 {
				t.Errorf("an admin moving a user's hook: %v", refused)
			}
			for _, tok := range []string{root, pub} {
				n.do(t, "POST", "/whisperer/events/", tok, map[string]any{"event_type": webhook.EventGivenUp, "payload": 1},
					http.StatusBadRequest, &refused)
				if len(refused["event_type"]) != 1 || !strings.Contains(refused["event_type"][0], "only the server") {
					t.Errorf("a client's publish of a reserved type: %v", refused)
				}
			}

			var published struct {
				Events []struct {
					UUID string `json:"uuid"`
				} `json:"events"`
			}
			n.do(t, "POST", "/whisperer/events/", pub, map[string]any{"event_type": "package-created", "payload": 1},
				http.StatusAccepted, &published)
			if len(published.Events) != 1 {
				t.Fatalf("published %+v", published)
			}
			// A plugin file that fails to load, dropped in after the
			// subscriptions.
			copyPlugin(t, dir, "badmanifest.wasm")
			_ = n.Reload(context.Background()) // its error is the bad file's, reported below

			poll.UntilNil(t, 20*time.Second, func() error {
				var missing []string
				if len(ops.of(webhook.EventGivenUp)) == 0 {
					missing = append(missing, "given_up")
				}
				if len(ops.of(webhook.EventHookDisabled)) < 2 { // alice's and the failing ops hook
					missing = append(missing, "hook.disabled ×2")
				}
				if len(ops.of(webhook.EventPluginFailed)) < 2 {
					missing = append(missing, "plugin.failed ×2")
				}
				mu.Lock()
				if failingOps < 2 {
					missing = append(missing, "two attempts at the failing ops hook")
				}
				mu.Unlock()
				if len(missing) > 0 {
					return notYet(missing...)
				}
				return nil
			})
			// The failing ops hook's event has been given up: one more batch
			// would have reported it by now.
			time.Sleep(time.Second)

			gu := ops.of(webhook.EventGivenUp)
			if len(gu) != 1 {
				t.Fatalf("given_up events %+v, want one: the operational event given up reports nothing", gu)
			}
			p := gu[0].Payload
			want := map[string]any{"event_uuid": published.Events[0].UUID, "event_type": "package-created",
				"hook_id": float64(h.ID), "owner": "alice", "target_url": bad.URL, "retry_count": float64(2),
				"last_status": float64(500), "error_class": "http"}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("given_up %s = %v, want %v (payload %v)", k, p[k], v, p)
				}
			}
			if s, _ := p["given_up_at"].(string); !strings.HasSuffix(s, "Z") || len(s) != len("2006-01-02T15:04:05.000000Z") {
				t.Errorf("given_up_at %q", p["given_up_at"])
			}

			var disabled map[string]any
			for _, d := range ops.of(webhook.EventHookDisabled) {
				if d.Payload["hook_id"] == float64(h.ID) {
					disabled = d.Payload
				}
			}
			want = map[string]any{"owner": "alice", "event_type": "package-created", "target_url": bad.URL,
				"reason": "every delivery failed for 1ms", "disable_after_seconds": 0.001, "last_status": float64(500),
				"last_error_class": "http"}
			for k, v := range want {
				if disabled[k] != v {
					t.Errorf("hook.disabled %s = %v, want %v (payload %v)", k, disabled[k], v, disabled)
				}
			}
			for _, k := range []string{"disabled_at", "failing_since"} {
				if s, _ := disabled[k].(string); s == "" {
					t.Errorf("hook.disabled %s = %v", k, disabled[k])
				}
			}

			var files []string
			for _, d := range ops.of(webhook.EventPluginFailed) {
				p := d.Payload
				files = append(files, fmt.Sprint(p["plugin"], "/", p["stage"]))
				if p["failures"] != float64(1) || p["error"] == "" || p["node"] == "" {
					t.Errorf("plugin.failed %v", p)
				}
			}
			slices.Sort(files)
			// The callback trapped twice: one event within the minute.
			if !slices.Equal(files, []string{"badmanifest.wasm/load", "trap.wasm/callback"}) {
				t.Errorf("plugin.failed events for %v", files)
			}
			if ops.bad != 0 {
				t.Errorf("%d operational events with a wrong signature", ops.bad)
			}
		})
	}
}
