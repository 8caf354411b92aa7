package store_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The pieces a streamed list is built from: counting, the page's ids and
// the rows of some ids, each within its scope.
func TestCountAndLoadByID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		b, _ := storetest.User(t, s, "b", webhook.RoleUser)
		h1 := storetest.Hook(t, s, a.ID, "order-created", "https://example.com/1")
		h2 := storetest.Hook(t, s, a.ID, "order-created", "https://example.com/2")
		hb := storetest.Hook(t, s, b.ID, "order-created", "https://example.com/b")
		if err := s.DeactivateWebhook(ctx, webhook.Scope{UserID: a.ID}, h1.ID); err != nil {
			t.Fatal(err)
		}
		sa, sb := webhook.Scope{UserID: a.ID}, webhook.Scope{UserID: b.ID}

		// Deactivated hooks count: DELETE does not free a place.
		if n, err := s.CountWebhooks(ctx, a.ID); err != nil || n != 2 {
			t.Errorf("CountWebhooks(a) = %d, %v; want 2", n, err)
		}
		if n, err := s.CountWebhooks(ctx, 999); err != nil || n != 0 {
			t.Errorf("CountWebhooks(nobody) = %d, %v", n, err)
		}

		ids, info, err := s.WebhookIDs(ctx, sa, webhook.HookFilter{}, webhook.Page{Limit: 1})
		if err != nil || !slices.Equal(ids, []int64{h2.ID}) || !info.HasNext {
			t.Errorf("WebhookIDs(a, 1) = %v %+v %v", ids, info, err)
		}
		all := []int64{h1.ID, h2.ID, hb.ID}
		got, err := s.WebhooksByID(ctx, sa, all)
		if err != nil || len(got) != 2 || got[0].ID != h2.ID || got[1].ID != h1.ID {
			t.Errorf("WebhooksByID(a) = %+v, %v; want a's two, newest first", got, err)
		}
		if got, err := s.WebhooksByID(ctx, sb, []int64{h1.ID, h2.ID}); err != nil || len(got) != 0 {
			t.Errorf("b loads a's hooks by id: %+v, %v", got, err)
		}

		if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "order-created", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		evIDs, _, err := s.EventIDs(ctx, webhook.Scope{All: true}, webhook.EventFilter{}, webhook.Page{Limit: 10})
		if err != nil || len(evIDs) != 2 { // h2's and hb's: h1 is inactive
			t.Fatalf("EventIDs = %v, %v", evIDs, err)
		}
		jobs, err := s.EventsByID(ctx, sb, evIDs)
		if err != nil || len(jobs) != 1 || jobs[0].Webhook.ID != hb.ID {
			t.Errorf("EventsByID(b) = %+v, %v; want b's event only", jobs, err)
		}
		if jobs, err := s.EventsByID(ctx, sa, nil); err != nil || len(jobs) != 0 {
			t.Errorf("EventsByID(none) = %+v, %v", jobs, err)
		}
	})
}

// A read of events carries the newest webhook.MaxAttemptsShown attempts of
// each, newest first, however many a redelivered event has piled up.
func TestAttemptsShownAreBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, a.ID, "order-created", "https://example.com/1")
		many := storetest.Publish(t, s, "order-created", `{}`)[0]
		few := storetest.Publish(t, s, "order-created", `{}`)[0]
		total := webhook.MaxAttemptsShown + 7
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		add := func(ev webhook.Event, i int) {
			if _, err := s.DB().ExecContext(ctx, "INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error) VALUES (?, ?, 0, 500, ?, '')",
				ev.ID, at.Add(time.Duration(i)*time.Second), strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range total {
			add(many, i)
			if i < 3 {
				add(few, i)
			}
		}
		check := func(what string, ev webhook.Event, want int) {
			t.Helper()
			if len(ev.Attempts) != want {
				t.Fatalf("%s: %d attempts, want %d", what, len(ev.Attempts), want)
			}
			top := total - 1
			if ev.ID == few.ID {
				top = 2
			}
			for i, a := range ev.Attempts {
				if a.Body != strconv.Itoa(top-i) {
					t.Fatalf("%s: attempt %d is #%s; want the newest first", what, i, a.Body)
				}
			}
		}
		j, err := s.Event(ctx, webhook.Scope{All: true}, many.UUID)
		if err != nil {
			t.Fatal(err)
		}
		check("Event", j.Event, webhook.MaxAttemptsShown)
		jobs, err := s.EventsByID(ctx, webhook.Scope{All: true}, []int64{many.ID, few.ID})
		if err != nil || len(jobs) != 2 {
			t.Fatalf("EventsByID: %d, %v", len(jobs), err)
		}
		for _, j := range jobs {
			if j.Event.ID == many.ID {
				check("EventsByID", j.Event, webhook.MaxAttemptsShown)
			} else {
				check("EventsByID", j.Event, 3)
			}
		}
	})
}
