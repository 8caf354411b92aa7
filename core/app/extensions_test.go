package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// On a real node, a plugin filter registered into App.Filters (as the
// plugin host registers one) skips events at fan-out; one that fails
// delivers, is counted by filter name and logged; a transform in
// App.Transforms reshapes what the receiver gets.
func TestNodePluginFilterAndTransform(t *testing.T) {
	n := startNode(t, store.SQLite, nil, nil)
	if err := n.Filters.Register("test", "never", webhook.Filter{
		Match: func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) { return false, nil },
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.Filters.Register("test", "broken", webhook.Filter{
		Match: func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) {
			return false, errors.New("trap")
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.Transforms.Register("test", "tag", webhook.Transform{
		Apply: func(_ context.Context, _ json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Headers: map[string]string{"X-Tag": in.EventType}}, nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	var got, tagged atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if r.Header.Get("X-Tag") == "package-created" {
			tagged.Add(1)
		}
	}))
	t.Cleanup(rcv.Close)
	root, token := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
	// A filter saved under older rules ($gt took strings) no longer
	// compiles: it delivers, counted as "uncompilable".
	storetest.Hook(t, n.Store, root.ID, "package-created", rcv.URL+"/old", func(w *webhook.Webhook) {
		w.Filter = json.RawMessage(`{"payload.status":{"$gt":"a"}}`)
	})
	for path, f := range map[string]string{"/never": "never", "/broken": "broken"} {
		n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{
			"event_type": "package-created", "target_url": rcv.URL + path,
			"filter": map[string]any{"plugin": f}, "transform": map[string]any{"name": "tag"},
		}, http.StatusCreated, nil)
	}
	var pub struct {
		Events []any `json:"events"`
	}
	n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_type": "package-created", "payload": 1},
		http.StatusAccepted, &pub)
	if len(pub.Events) != 2 {
		t.Fatalf("%d events, want 2 (the broken filter's hook, the uncompilable one's)", len(pub.Events))
	}
	poll.Until(t, 15*time.Second, "the deliveries", func() bool { return got.Load() == 2 })
	if tagged.Load() != 1 {
		t.Error("the transform's header did not arrive")
	}
	mfs := n.scrape(t)
	if v, _ := value(mfs, "whisperer_publish_filter_failures_total", "filter", "broken"); v != 1 {
		t.Errorf("filter failures = %v, want 1", v)
	}
	if v, _ := value(mfs, "whisperer_publish_filter_failures_total", "filter", "uncompilable"); v != 1 {
		t.Errorf("uncompilable filters = %v, want 1", v)
	}
	if v, _ := value(mfs, "whisperer_publish_filtered_total"); v != 1 {
		t.Errorf("filtered = %v, want 1", v)
	}
}
