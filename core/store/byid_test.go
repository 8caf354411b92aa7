package store_test

import (
	"slices"
	"testing"

	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
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
