package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestErrorWireForms pins the status and body every error a handler can
// return is answered with: the API's own, webhook's, and those a real
// store returns, on both backends. These bytes are the dj-whisperer
// contract.
func TestErrorWireForms(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u, _ := storetest.User(t, st, "alice", webhook.RolePublisher)
		storetest.Hook(t, st, u.ID, "e", "https://example.com/")
		publish := func(eventType, payload string) error {
			_, err := st.Publish(ctx, webhook.PublishRequest{EventType: eventType, Payload: json.RawMessage(payload), PublisherID: u.ID})
			return err
		}
		delivered := storetest.Attempted(t, st, "e", `1`, time.Now(), webhook.StateDelivered)[0]
		busy := storetest.Publish(t, st, "e", `2`)[0]
		if _, err := st.ClaimEvents(ctx, "n", []int64{busy.ID}, time.Hour); err != nil {
			t.Fatal(err)
		}
		redeliver := func(uuid string) error {
			_, err := st.Redeliver(ctx, webhook.Scope{All: true}, uuid, false)
			return err
		}
		_, notFound := st.Webhook(ctx, webhook.Scope{All: true}, 1<<40)

		closed := storetest.New(t, st.Dialect())
		closed.Close()
		_, closedErr := closed.Webhook(ctx, webhook.Scope{All: true}, 1)

		cases := []struct {
			name   string
			err    error
			status int
			body   string
		}{
			{"validation", webhook.NewValidationError("f", "Bad."), 400, `{"f":["Bad."]}`},
			{"parse", &parseError{msg: "x"}, 400, `{"detail":"JSON parse error - x"}`},
			{"auth", &authError{msg: "No."}, 401, `{"detail":"No."}`},
			{"method", &methodNotAllowed{method: "PUT"}, 405, `{"detail":"Method \"PUT\" not allowed."}`},
			{"media", &unsupportedMedia{mediaType: "text/plain"}, 415, `{"detail":"Unsupported media type \"text/plain\" in request."}`},
			{"too large", &bodyTooLarge{limit: 10}, 413, `{"detail":"Request body is larger than 10 bytes."}`},
			{"http", &httpError{status: 429, msg: "Slow."}, 429, `{"detail":"Slow."}`},
			{"conflict", &webhook.ConflictError{Detail: "No <way>."}, 409, `{"detail":"No <way>."}`},
			{"not found", fmt.Errorf("x: %w", webhook.ErrNotFound), 404, `{"detail":"Not found."}`},
			{"unauthenticated", webhook.ErrUnauthenticated, 401, `{"detail":"Invalid token."}`},
			{"forbidden", webhook.ErrForbidden, 403, `{"detail":"You do not have permission to perform this action."}`},
			{"already exists", webhook.ErrAlreadyExists, 409, `{"detail":"Already exists."}`},
			{"unavailable", webhook.ErrUnavailable, 503, `{"detail":"The database is unavailable; try again shortly."}`},
			{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), 503, `{"detail":"The database is unavailable; try again shortly."}`},
			{"internal", errors.New("boom"), 500, `{"detail":"Internal server error."}`},

			{"store: unknown event type", publish("nope", `{}`), 400, `{"event_type":["\"nope\" is not a valid choice."]}`},
			{"store: payload not JSON", publish("e", `{`), 400, `{"payload":["Value must be valid JSON."]}`},
			{"store: already delivered", redeliver(delivered.UUID), 409,
				`{"detail":"Event ` + delivered.UUID + ` is already delivered; send \"force\": true to deliver it again."}`},
			{"store: being delivered", redeliver(busy.UUID), 409,
				`{"detail":"Event ` + busy.UUID + ` is being delivered right now, or was just delivered."}`},
			{"store: not found", notFound, 404, `{"detail":"Not found."}`},
			// A closed pool is a bug (sql: database is closed), not an outage.
			{"store: closed", closedErr, 500, `{"detail":"Internal server error."}`},
		}
		s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range cases {
			status, body := s.toStatus(r, c.err)
			b, err := marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			if status != c.status || string(b) != c.body+"\n" {
				t.Errorf("%s (%v): %d %s, want %d %s", c.name, c.err, status, b, c.status, c.body)
			}
		}
	})
}
