package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A publish of one request with no filtered hook (on PostgreSQL its own
// statement, pgPublishOne) answers and writes what the same request does
// in a batch (pgPublish): the same request is published alone and then
// beside a request of an unknown type, under every lease limit, with and
// without a hold, a publisher and a key, to a type with three active
// hooks and an inactive one, a type with no hook and an unknown type.
func TestPublishOneAsInABatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		var hooks []int64
		for _, path := range []string{"/3", "/1", "/2"} {
			hooks = append(hooks, storetest.Hook(t, s, u.ID, "e", "https://a.example"+path).ID)
		}
		storetest.Hook(t, s, u.ID, "e", "https://off.example/", func(w *webhook.Webhook) { w.IsActive = false })
		if err := s.AddEventTypes(ctx, "none"); err != nil {
			t.Fatal(err)
		}
		slices.Sort(hooks)
		nonce := 0
		type answer struct {
			err      string
			hooks    []int64
			leased   []int64
			replayed bool
			filtered int
			dueIn    time.Duration // of the rows written, by the database's clock
		}
		publish := func(req webhook.PublishRequest, limit int, batched bool) answer {
			t.Helper()
			reqs := []webhook.PublishRequest{req}
			if batched {
				reqs = append(reqs, webhook.PublishRequest{EventType: "nope", Payload: json.RawMessage(`{}`)})
			}
			res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: limit})
			var a answer
			if errs[0] != nil {
				a.err = errs[0].Error()
				var unknown *webhook.UnknownEventTypeError
				if !errors.As(errs[0], &unknown) {
					t.Fatalf("publish %+v: %v", req, errs[0])
				}
				return a
			}
			p := res[0]
			a.replayed, a.filtered = p.Replayed, p.Filtered
			if p.Events == nil {
				t.Fatalf("publish %+v: nil events", req)
			}
			for k, e := range p.Events {
				a.hooks = append(a.hooks, e.WebhookID)
				if e.State != webhook.StatePending || e.EventType != req.EventType || len(e.UUID) != 32 ||
					string(e.Payload) != string(req.Payload) || (k > 0 && e.ID <= p.Events[k-1].ID) {
					t.Fatalf("publish %+v: event %d %+v", req, k, e)
				}
				row := storeEvent(t, s, e.ID)
				if row.UUID != e.UUID || row.WebhookID != e.WebhookID || row.UserID != u.ID {
					t.Fatalf("publish %+v: event %+v, row %+v", req, e, row)
				}
			}
			for k, j := range p.Jobs {
				a.leased = append(a.leased, j.Webhook.ID)
				if j.Event.ID != p.Events[k].ID || j.Webhook.ID != j.Event.WebhookID || !j.Webhook.IsActive ||
					j.Webhook.TargetURL == "" || j.Lease == "" || string(j.Event.Payload) != string(req.Payload) {
					t.Fatalf("publish %+v: job %d %+v", req, k, j)
				}
			}
			if !p.Replayed && len(p.Events) > 0 {
				var due int64
				if err := s.DB().NewRaw(`SELECT max(next_attempt_at) FROM webhook_events WHERE id = ?`,
					p.Events[len(p.Events)-1].ID).Scan(ctx, &due); err != nil {
					t.Fatal(err)
				}
				a.dueIn = time.Until(time.UnixMicro(due)).Round(time.Hour)
			}
			return a
		}
		for _, typ := range []string{"e", "none", "nope"} {
			for _, hold := range []time.Duration{0, time.Hour} {
				for _, keyed := range []bool{false, true} {
					for limit := range 5 {
						var got [2]answer
						for i, batched := range []bool{false, true} {
							nonce++
							req := webhook.PublishRequest{EventType: typ, Hold: hold, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, nonce))}
							if keyed {
								req.PublisherID, req.IdempotencyKey = u.ID, fmt.Sprintf("k%d", nonce)
							}
							got[i] = publish(req, limit, batched)
							if keyed && got[i].err == "" {
								again := publish(req, limit, batched)
								if !again.replayed || !slices.Equal(again.hooks, got[i].hooks) || len(again.leased) != 0 {
									t.Errorf("%s, hold %v, limit %d, batched %v: replay %+v of %+v", typ, hold, limit, batched, again, got[i])
								}
							}
						}
						if fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
							t.Errorf("%s, hold %v, keyed %v, limit %d: alone %+v, in a batch %+v", typ, hold, keyed, limit, got[0], got[1])
						}
						var want answer
						switch typ {
						case "e":
							want.hooks, want.dueIn = hooks, hold
							if hold == 0 {
								want.leased = hooks[:min(limit, len(hooks))]
							}
						case "none":
							want.hooks = nil
						case "nope":
							want.err = (&webhook.UnknownEventTypeError{EventType: "nope"}).Error()
						}
						if fmt.Sprint(got[0]) != fmt.Sprint(want) {
							t.Errorf("%s, hold %v, keyed %v, limit %d: %+v, want %+v", typ, hold, keyed, limit, got[0], want)
						}
					}
				}
			}
		}
	})
}

// An unknown type writes no message; a type with no active hook writes
// its message, alone as in a batch.
func TestPublishOneMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		storetest.Hook(t, s, u.ID, "e", "https://off.example/", func(w *webhook.Webhook) { w.IsActive = false })
		messages := func() (n int) {
			t.Helper()
			if err := s.DB().NewRaw(`SELECT count(*) FROM messages`).Scan(ctx, &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "nope", Payload: json.RawMessage(`{}`)}); err == nil {
			t.Fatal("an unknown type was published")
		}
		if n := messages(); n != 0 {
			t.Fatalf("%d messages after an unknown type's publish", n)
		}
		p, err := s.Publish(ctx, webhook.PublishRequest{EventType: "e", PublisherID: u.ID, Payload: json.RawMessage(`{"a": 1}`)})
		if err != nil || p.Events == nil || len(p.Events) != 0 {
			t.Fatalf("publish to an inactive hook's type: %+v, %v", p, err)
		}
		var payload string
		var publisher int64
		if err := s.DB().NewRaw(`SELECT payload, publisher_id FROM messages`).Scan(ctx, &payload, &publisher); err != nil ||
			payload != `{"a":1}` || publisher != u.ID {
			t.Fatalf("message %q of %d: %v", payload, publisher, err)
		}
	})
}
