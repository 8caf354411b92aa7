package app_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A publish with "async": false answers with the outcome of its own first
// attempt, every time: the dispatcher — woken on PostgreSQL by the
// publish's NOTIFY — must not take the events first (a review found 48 of
// 100 inline publishes answered without outcomes).
func TestInlinePublishAnswersOutcomes(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, backend, nil, nil)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(recv.Close)
			_, token := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
			n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{"event_type": "package-created", "target_url": recv.URL + "/"}, http.StatusCreated, nil)

			for range 100 {
				var out struct {
					Events []struct {
						Delivered          bool `json:"delivered"`
						ResponseHTTPStatus *int `json:"response_http_status"`
					} `json:"events"`
				}
				n.do(t, "POST", "/whisperer/events/", token, map[string]any{"event_type": "package-created", "payload": 1, "async": false}, http.StatusOK, &out)
				if len(out.Events) != 1 || !out.Events[0].Delivered || out.Events[0].ResponseHTTPStatus == nil {
					t.Fatalf("inline publish answered %+v, want one delivered outcome", out.Events)
				}
			}
		})
	}
}
