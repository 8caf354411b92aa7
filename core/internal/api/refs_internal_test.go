package api

import (
	"net/http/httptest"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// writeRefs appends a publish's answer itself; its bytes, status and
// Content-Type must be writeJSON's, plain strings or not.
func TestWriteRefsAsWriteJSON(t *testing.T) {
	for _, evs := range [][]webhook.Event{
		nil,
		{},
		{{ID: 1, UUID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", WebhookID: 7, State: webhook.StatePending}},
		{{ID: 9223372036854775807, UUID: "a", WebhookID: -3, State: webhook.StateDelivered},
			{ID: 0, UUID: "", WebhookID: 0, State: ""}},
		{{ID: 2, UUID: `q"u<o>&te`, WebhookID: 1, State: webhook.StatePending}},
		{{ID: 3, UUID: "ok", WebhookID: 1, State: "é\u2028\x01"}},
	} {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		if err := writeJSON(want, 202, map[string]any{"events": refs(evs)}); err != nil {
			t.Fatal(err)
		}
		if err := writeRefs(got, 202, evs); err != nil {
			t.Fatal(err)
		}
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("writeRefs(%+v) = %d %q %q, want %d %q %q", evs, got.Code, got.Header().Get("Content-Type"), got.Body,
				want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}
