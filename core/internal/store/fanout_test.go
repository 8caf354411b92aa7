package store_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func withFilter(f string) func(*webhook.Webhook) {
	return func(w *webhook.Webhook) { w.Filter = json.RawMessage(f) }
}

// A hook whose filter refuses an event gets no row; one whose filter
// passes and one without a filter do, in hook order, and the refusals
// are counted.
func TestPublishAppliesFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		plain := storetest.Hook(t, s, a.ID, "order", "https://plain.example/")
		paid := storetest.Hook(t, s, a.ID, "order", "https://paid.example/", withFilter(`{"payload.status":"paid"}`))
		big := storetest.Hook(t, s, a.ID, "order", "https://big.example/", withFilter(`{"payload.amount":{"$gte":100}}`))
		off := storetest.Hook(t, s, a.ID, "order", "https://off.example/", withFilter(`{"payload.status":"paid"}`),
			func(w *webhook.Webhook) { w.IsActive = false })
		if got, err := s.Webhook(ctx, webhook.Scope{All: true}, paid.ID); err != nil || string(got.Filter) != `{"payload.status":"paid"}` {
			t.Fatalf("stored filter: %s %v", got.Filter, err)
		}
		hooks := func(p webhook.Published) []int64 {
			var ids []int64
			for _, e := range p.Events {
				ids = append(ids, e.WebhookID)
			}
			return ids
		}
		// An unknown type in the batch writes nothing; the requests after it
		// keep their own filters' answers.
		res, errs := s.PublishBatch(ctx, []webhook.PublishRequest{
			{EventType: "order", Payload: json.RawMessage(`{"status": "paid", "amount": 5}`)},
			{EventType: "nope", Payload: json.RawMessage(`{"status": "paid", "amount": 500}`)},
			{EventType: "order", Payload: json.RawMessage(`{"status": "open", "amount": 500}`)},
			{EventType: "order", Payload: json.RawMessage(`{"status": "open"}`)},
			{EventType: "order", Payload: json.RawMessage(`{"status": "paid", "amount": 100}`)},
		})
		var unknown *webhook.UnknownEventTypeError
		if !errors.As(errs[1], &unknown) || len(res[1].Events) != 0 {
			t.Errorf("unknown type: %+v, %v", res[1], errs[1])
		}
		res, errs = slices.Delete(res, 1, 2), slices.Delete(errs, 1, 2)
		want := [][]int64{{plain.ID, paid.ID}, {plain.ID, big.ID}, {plain.ID}, {plain.ID, paid.ID, big.ID}}
		filtered := []int{1, 1, 2, 0}
		for i := range want {
			if errs[i] != nil || !equalIDs(hooks(res[i]), want[i]) || res[i].Filtered != filtered[i] {
				t.Errorf("request %d: hooks %v filtered %d (%v), want %v and %d", i, hooks(res[i]), res[i].Filtered, errs[i], want[i], filtered[i])
			}
		}
		_ = off
		// Rows exist only for what was answered.
		jobs, _, err := s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{}, webhook.Page{Limit: 100})
		if err != nil || len(jobs) != 8 {
			t.Fatalf("rows: %d %v", len(jobs), err)
		}
		// Removing the filter delivers everything again; changing it
		// takes effect on the next publish (the cache follows the text).
		paid.Filter = nil
		if _, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, paid, false); err != nil {
			t.Fatal(err)
		}
		big.Filter = json.RawMessage(`{"payload.amount":{"$lt":100}}`)
		if _, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, big, false); err != nil {
			t.Fatal(err)
		}
		p, err := s.Publish(ctx, webhook.PublishRequest{EventType: "order", Payload: json.RawMessage(`{"status": "open", "amount": 5}`)})
		if err != nil || !equalIDs(hooks(p), []int64{plain.ID, paid.ID, big.ID}) || p.Filtered != 0 {
			t.Fatalf("after update: %v %d %v", hooks(p), p.Filtered, err)
		}
	})
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A database of the previous release (rows in every state) migrates to
// the filter column in place: every hook is filter-less and still
// receives every event.
func TestFilterMigrationFromPreviousRelease(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := upgraded(t, backend, 5) // the previous release
			for _, id := range []int64{1, 2} {
				h, err := s.Webhook(ctx, webhook.Scope{All: true}, id)
				if err != nil || h.Filter != nil {
					t.Fatalf("hook %d: filter %s, %v", id, h.Filter, err)
				}
			}
			jobs, _, err := s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{}, webhook.Page{Limit: 100})
			if err != nil || len(jobs) != 6 {
				t.Fatalf("legacy events: %d %v", len(jobs), err)
			}
			p, err := s.Publish(ctx, webhook.PublishRequest{EventType: "order-created", Payload: json.RawMessage(`{"n":2}`)})
			if err != nil || len(p.Events) != 2 {
				t.Fatalf("publish after migrating: %+v %v", p, err)
			}
		})
	}
}

// A filter set or changed through another node (store) is never evaluated
// in its old version: until this node's cached read of the type's
// filtered hooks expires, the hook gets every event, as if the publishes
// had come before the change; then the new filter applies.
func TestFilterChangedOnAnotherNode(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			url := storetest.URL(t, b)
			n1 := storetest.Open(t, url, store.Options{Sealer: storetest.Keyring()})
			n2 := storetest.Open(t, url, store.Options{Sealer: storetest.Keyring()})
			a, _ := storetest.User(t, n1, "a", webhook.RolePublisher)
			paid := storetest.Hook(t, n1, a.ID, "order", "https://paid.example/", withFilter(`{"payload.status":"paid"}`))
			plain := storetest.Hook(t, n1, a.ID, "order", "https://plain.example/")
			publish := func(status string) []int64 {
				t.Helper()
				p, err := n1.Publish(ctx, webhook.PublishRequest{EventType: "order", Payload: json.RawMessage(`{"status":"` + status + `"}`)})
				if err != nil {
					t.Fatal(err)
				}
				var ids []int64
				for _, e := range p.Events {
					ids = append(ids, e.WebhookID)
				}
				return ids
			}
			// n1 reads and caches the type's filtered hooks.
			if got := publish("open"); !equalIDs(got, []int64{paid.ID, plain.ID}[1:]) {
				t.Fatalf("before: %v, want only the plain hook", got)
			}
			// n2 changes the filter to pass "open" and refuse "paid", and
			// sets one on the plain hook.
			paid.Filter = json.RawMessage(`{"payload.status":"open"}`)
			if _, err := n2.UpdateWebhook(ctx, webhook.Scope{All: true}, paid, false); err != nil {
				t.Fatal(err)
			}
			plain.Filter = json.RawMessage(`{"payload.status":"none"}`)
			if _, err := n2.UpdateWebhook(ctx, webhook.Scope{All: true}, plain, false); err != nil {
				t.Fatal(err)
			}
			// Whether n1's cache is still fresh or not, no event is refused
			// by the old filter: an "open" event reaches the changed hook.
			if got := publish("open"); !equalIDs(got, []int64{paid.ID, plain.ID}) && !equalIDs(got, []int64{paid.ID}) {
				t.Fatalf("right after the change: %v", got)
			}
			time.Sleep(1100 * time.Millisecond) // past filteredHooksTTL
			if got := publish("open"); !equalIDs(got, []int64{paid.ID}) {
				t.Fatalf("after the cache expired: %v, want only %d", got, paid.ID)
			}
			if got := publish("paid"); len(got) != 0 {
				t.Fatalf("a paid event: %v, want none", got)
			}
		})
	}
}
