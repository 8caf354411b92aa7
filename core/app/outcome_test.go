package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// An inline answer ("async": false, publish or redelivery) tells a
// publisher the status and the error class of another user's hook, never
// its error text, which names the hook's target address. The owner (and an
// admin) read the text. The targets are in 10.0.0.0/8, which the node does
// not allow: the guard refuses them before any packet is sent. The API
// refuses such a target_url now, so the hooks are stored directly, as
// hooks saved before delivery.allow_networks was narrowed are.
func TestInlineOutcomeHidesOthersErrors(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, backend, nil, nil)
			aliceU, alice := storetest.User(t, n.Store, "alice", webhook.RoleUser)
			pubU, pub := storetest.User(t, n.Store, "pub", webhook.RolePublisher)
			_, root := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
			aliceHook := storetest.Hook(t, n.Store, aliceU.ID, "package-created", "http://10.0.0.1:9/secret-path")
			pubHook := storetest.Hook(t, n.Store, pubU.ID, "package-created", "http://10.0.0.2:9/")
			n.do(t, "POST", "/whisperer/hooks/", alice, map[string]any{"event_type": "package-created", "target_url": "http://10.0.0.3:9/"},
				http.StatusBadRequest, nil)

			type outcome struct {
				UUID       string `json:"uuid"`
				Webhook    int64  `json:"webhook"`
				Error      string `json:"error"`
				ErrorClass string `json:"error_class"`
			}
			publish := func(token string, body map[string]any) map[int64]outcome {
				t.Helper()
				var out struct {
					Events []outcome `json:"events"`
				}
				n.do(t, "POST", "/whisperer/events/", token, body, http.StatusOK, &out)
				raw, _ := json.Marshal(out)
				byHook := map[int64]outcome{}
				for _, o := range out.Events {
					byHook[o.Webhook] = o
				}
				if len(byHook) == 0 {
					t.Fatalf("no outcomes: %s", raw)
				}
				return byHook
			}
			hidden := func(what string, o outcome) {
				t.Helper()
				if strings.Contains(o.Error, "10.0.0.1") || o.Error != "refused" || o.ErrorClass != "refused" {
					t.Errorf("%s: a publisher read alice's error %q (class %q), want only the class", what, o.Error, o.ErrorClass)
				}
			}

			got := publish(pub, map[string]any{"event_type": "package-created", "payload": 1, "async": false})
			hidden("publish", got[aliceHook.ID])
			// The publisher's own hook: the whole text.
			if o := got[pubHook.ID]; !strings.Contains(o.Error, "10.0.0.2") || o.ErrorClass != "refused" {
				t.Errorf("own hook's outcome %+v, want the full error", o)
			}
			uuid := got[aliceHook.ID].UUID
			// The owner reads the full text in hook_events.
			var ev struct {
				Attempts []struct {
					Error string `json:"error"`
				} `json:"attempts"`
			}
			n.do(t, "GET", "/whisperer/hook_events/"+uuid+"/", alice, nil, http.StatusOK, &ev)
			if len(ev.Attempts) == 0 || !strings.Contains(ev.Attempts[0].Error, "10.0.0.1") {
				t.Errorf("owner's attempt log %+v, want the full error", ev.Attempts)
			}
			// Redelivery of alice's event by its publisher. An inline
			// redelivery is held out of the dispatchers' reach (no NOTIFY,
			// due after the hold), so its first answer is the attempt's
			// on both backends.
			redeliver := func(token string) outcome {
				t.Helper()
				var out struct {
					Events []outcome `json:"events"`
				}
				n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_uuid": uuid, "async": false}, http.StatusOK, &out)
				if len(out.Events) != 1 || out.Events[0].ErrorClass == "" {
					t.Fatalf("redelivery answered %+v, want the inline attempt's outcome", out.Events)
				}
				return out.Events[0]
			}
			hidden("redelivery", redeliver(pub))
			// An admin reads it all.
			if o := redeliver(root); !strings.Contains(o.Error, "10.0.0.1") {
				t.Errorf("admin's outcome %+v, want the full error", o)
			}
		})
	}
}
