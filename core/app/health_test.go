package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// A whole node: a hook whose receiver answers 410 is deactivated with the
// reason shown in the API; once the receiver is back, PATCH is_active true
// clears the reason and new events are delivered. A hook that keeps
// failing is deactivated after delivery.disable_after (1ms here: its
// second failed attempt, a second after the first).
func TestEndpointHealth(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, backend, nil, func(c *config.Config) {
				c.Delivery.DisableAfter = time.Millisecond
				c.Delivery.DefaultRetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":1}`)}
			})
			var back atomic.Bool
			var delivered atomic.Int64
			gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !back.Load() {
					w.WriteHeader(http.StatusGone)
					return
				}
				delivered.Add(1)
			}))
			t.Cleanup(gone.Close)
			var failing atomic.Int64
			down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				failing.Add(1)
				w.WriteHeader(http.StatusBadGateway)
			}))
			t.Cleanup(down.Close)

			_, token := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
			type hook struct {
				ID             int64   `json:"id"`
				IsActive       bool    `json:"is_active"`
				DisabledReason string  `json:"disabled_reason"`
				DisabledAt     *string `json:"disabled_at"`
			}
			var g, d hook
			n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{"event_type": "package-created", "target_url": gone.URL + "/"}, http.StatusCreated, &g)
			n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{"event_type": "package-created", "target_url": down.URL + "/"}, http.StatusCreated, &d)
			n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_type": "package-created", "payload": 1}, http.StatusAccepted, nil)

			get := func(id int64) hook {
				var h hook
				n.do(t, "GET", fmt.Sprintf("/whisperer/hooks/%d/", id), token, nil, http.StatusOK, &h)
				return h
			}
			poll.UntilNil(t, 15*time.Second, func() error {
				if h := get(g.ID); h.IsActive || h.DisabledReason != store.ReasonGone || h.DisabledAt == nil {
					return notYet(fmt.Sprintf("410 hook %+v", h))
				}
				if h := get(d.ID); h.IsActive || h.DisabledReason != "every delivery failed for 1ms" {
					return notYet(fmt.Sprintf("failing hook %+v", h))
				}
				return nil
			})
			if f := failing.Load(); f != 2 {
				t.Errorf("the failing hook got %d requests, want 2", f)
			}

			back.Store(true)
			var h hook
			n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%d/", g.ID), token, map[string]any{"is_active": true}, http.StatusOK, &h)
			if !h.IsActive || h.DisabledReason != "" || h.DisabledAt != nil {
				t.Fatalf("re-enabled hook: %+v", h)
			}
			n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_type": "package-created", "payload": 2}, http.StatusAccepted, nil)
			poll.UntilNil(t, 15*time.Second, func() error {
				if delivered.Load() < 1 {
					return notYet("a delivery to the re-enabled hook")
				}
				return nil
			})
			if f := failing.Load(); f != 2 {
				t.Errorf("the deactivated hook got %d requests, want 2", f)
			}
		})
	}
}
