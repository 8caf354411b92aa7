package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A handler that panics on a client's data (here a countdown validator
// with a bug) answers 500 and logs the panic with its stack once; the
// server goes on serving.
func TestHandlerPanicIs500(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.AddEventTypes(ctx, eventType); err != nil {
			t.Fatal(err)
		}
		cds := countdown.NewRegistry()
		_ = cds.Register("test", "boom", webhook.Countdown{
			Value: func(context.Context, int, json.RawMessage) (int64, error) { return 1, nil },
			Validate: func(context.Context, json.RawMessage) (json.RawMessage, map[string]any, error) {
				panic("validator bug")
			},
		})
		var logs bytes.Buffer // ServeHTTP runs, and logs, on this goroutine
		h, err := api.New(api.Config{}, api.Deps{Store: s, Countdowns: cds}, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		_, token := storetest.User(t, s, "alice", webhook.RoleUser)
		post := func(choice string) *httptest.ResponseRecorder {
			body := `{"event_type": "package-created", "target_url": "https://example.com/",
				"retry_countdown_config": {"choice": "` + choice + `", "kwargs": {"seconds": 1}}}`
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/whisperer/hooks/", strings.NewReader(body))
			req.Header.Set("Authorization", "Token "+token)
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			return rec
		}
		if rec := post("boom"); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"detail"`) {
			t.Fatalf("panicking handler: %d %s", rec.Code, rec.Body)
		}
		if l := logs.String(); strings.Count(l, "panic serving request") != 1 || strings.Count(l, "stack=") != 1 {
			t.Errorf("the panic must be logged once with its stack:\n%s", l)
		}
		if rec := post("fixed"); rec.Code != http.StatusCreated {
			t.Fatalf("after the panic: %d %s", rec.Code, rec.Body)
		}
	})
}
