package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// The two example plugins end to end on a real node: the WAT filter skips
// the unpaid event at fan-out, the Go transform turns the paid one into a
// chat message, and the receiver gets exactly that.
func TestExamplePluginFilterAndTransform(t *testing.T) {
	if raceEnabled {
		t.Skip("compiling a Go guest under -race takes minutes")
	}
	dir := t.TempDir()
	buildExamples(t, dir, "transform")
	copyInto(t, filepath.Join("..", "..", "examples", "filter", "field-equals.wasm"), dir)
	var mu sync.Mutex
	var bodies []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	n := serveNode(t, store.SQLite, dir, nil)
	poll.Until(t, 60*time.Second, "the plugins to load", func() bool {
		_, f := n.Filters.Lookup("field-equals")
		_, tr := n.Transforms.Lookup("chat")
		return f && tr
	})
	_, token := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
	n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{
		"event_type": "package-created", "target_url": rcv.URL,
		"filter":    map[string]any{"plugin": "field-equals", "kwargs": map[string]any{"field": "status", "equals": "paid"}},
		"transform": map[string]any{"name": "chat", "kwargs": map[string]any{"template": "{event_type} {payload.id} is {payload.status}"}},
	}, http.StatusCreated, nil)
	n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{
		"event_type": "package-created", "target_url": rcv.URL,
		"filter": map[string]any{"plugin": "field-equals"},
	}, http.StatusBadRequest, nil)
	for _, status := range []string{"open", "paid"} {
		n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_type": "package-created",
			"payload": map[string]any{"id": 7, "status": status}}, http.StatusAccepted, nil)
	}
	poll.Until(t, 15*time.Second, "the delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) > 0 })
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || bodies[0] != `{"text":"package-created 7 is paid"}` {
		t.Fatalf("receiver got %q", bodies)
	}
}
