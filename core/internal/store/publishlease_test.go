package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A publish with a PublishLease writes its first Limit rows leased to the
// publishing node and returns them as a claim would; leased-at-publish
// rows then behave exactly like claimed ones (docs/RELIABILITY.md, "The
// queue's state machine").
func TestPublishLeased(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		var hooks []webhook.Webhook
		for _, path := range []string{"/1", "/2", "/3"} {
			hooks = append(hooks, storetest.Hook(t, s, u.ID, "e", "https://a.example"+path))
		}
		reqs := []webhook.PublishRequest{
			{EventType: "e", Payload: json.RawMessage(`{"n": 1}`)},
			{EventType: "e", Payload: json.RawMessage(`{"n":2}`)},
			{EventType: "e", Payload: json.RawMessage(`{"n":3}`), Hold: time.Hour}, // held: never leased
		}
		res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: 4})
		for i, err := range errs {
			if err != nil || len(res[i].Events) != 3 {
				t.Fatalf("request %d: %+v, %v", i, res[i], err)
			}
		}
		// Request then hook order: all of the first request's rows, the
		// first of the second's.
		if len(res[0].Jobs) != 3 || len(res[1].Jobs) != 1 || len(res[2].Jobs) != 0 {
			t.Fatalf("leased %d, %d, %d rows, want 3, 1, 0", len(res[0].Jobs), len(res[1].Jobs), len(res[2].Jobs))
		}
		var jobs []webhook.Job
		token := res[0].Jobs[0].Lease
		for i := range res[:2] {
			for k, j := range res[i].Jobs {
				ev := res[i].Events[k]
				if j.Lease != token || !strings.HasPrefix(token, "n1/") || j.Event.ID != ev.ID || j.Event.UUID != ev.UUID ||
					j.Webhook.ID != hooks[k].ID || j.Webhook.TargetURL != hooks[k].TargetURL || j.Webhook.SecretKey != hooks[k].SecretKey ||
					!j.Webhook.IsActive || j.Event.State != webhook.StatePending || j.Event.RetryCount != 0 ||
					string(j.Event.Payload) != string(ev.Payload) {
					t.Fatalf("request %d job %d: %+v (lease %q), event %+v", i, k, j, token, ev)
				}
				jobs = append(jobs, j)
			}
		}
		if string(jobs[0].Event.Payload) != `{"n":1}` {
			t.Errorf("payload %s, want the compacted one", jobs[0].Event.Payload)
		}

		// Another node's claim takes the two rows of the second request
		// left unleased, not the leased ones nor the held ones.
		other, err := s.Claim(ctx, "n2", 10, time.Minute)
		if err != nil || len(other) != 2 {
			t.Fatalf("claim by another node: %d jobs, %v", len(other), err)
		}
		for _, j := range other {
			if string(j.Event.Payload) != `{"n":2}` || j.Event.ID == jobs[3].Event.ID {
				t.Errorf("claimed %+v", j.Event)
			}
		}

		// A result under another lease is ignored; under the publish's it
		// is written.
		stale := result(jobs[0], 200)
		stale.Lease = token + "0"
		if err := s.Complete(ctx, []webhook.Result{stale}); err != nil {
			t.Fatal(err)
		}
		if j := storeEvent(t, s, jobs[0].Event.ID); j.State != webhook.StatePending || len(j.Attempts) != 0 {
			t.Fatalf("a result under a wrong lease was written: %+v", j)
		}
		if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 200)}); err != nil {
			t.Fatal(err)
		}
		if j := storeEvent(t, s, jobs[0].Event.ID); j.State != webhook.StateDelivered || len(j.Attempts) != 1 {
			t.Fatalf("the publish's lease's result was not written: %+v", j)
		}
		// Release gives one back at once, as a claim's.
		if err := s.Release(ctx, []webhook.LeaseRef{jobs[1].LeaseRef()}); err != nil {
			t.Fatal(err)
		}
		again, err := s.Claim(ctx, "n2", 10, time.Minute)
		if err != nil || len(again) != 1 || again[0].Event.ID != jobs[1].Event.ID {
			t.Fatalf("claim after a release: %+v, %v", again, err)
		}

		// The node dies: once the lease has ended, any node claims the
		// rest (not the held request's: they are due an hour later).
		elapse(t, s, 61*time.Second)
		late, err := s.Claim(ctx, "n3", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]bool{}
		for _, j := range late {
			got[j.Event.ID] = true
		}
		// The other claims' leases ended too: their rows come back with
		// the dead node's two.
		for _, want := range []int64{jobs[2].Event.ID, jobs[3].Event.ID, other[0].Event.ID, other[1].Event.ID, again[0].Event.ID} {
			if !got[want] {
				t.Errorf("event %d not claimed after the lease ended (got %v)", want, got)
			}
		}
		if len(late) != 5 {
			t.Errorf("claimed %d events after the lease ended, want 5", len(late))
		}
		// The dead node's late result no longer matches.
		if err := s.Complete(ctx, []webhook.Result{result(jobs[2], 500)}); err != nil {
			t.Fatal(err)
		}
		if j := storeEvent(t, s, jobs[2].Event.ID); len(j.Attempts) != 0 || j.State != webhook.StatePending {
			t.Errorf("a result of the ended lease was written: %+v", j)
		}
	})
}

// No lease, or a zero limit, writes nothing leased: as PublishBatch.
func TestPublishLeasedWithoutRoom(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		res, errs := s.PublishLeased(ctx, []webhook.PublishRequest{{EventType: "e", Payload: json.RawMessage(`1`)}},
			webhook.PublishLease{Owner: "n1", Lease: time.Minute})
		if errs[0] != nil || len(res[0].Events) != 1 || len(res[0].Jobs) != 0 {
			t.Fatalf("publish: %+v, %v", res[0], errs[0])
		}
		if jobs, err := s.Claim(ctx, "n2", 10, time.Minute); err != nil || len(jobs) != 1 {
			t.Fatalf("the unleased row was not claimable: %d, %v", len(jobs), err)
		}
	})
}

func storeEvent(t *testing.T, s *store.Store, id int64) webhook.Event {
	t.Helper()
	j, err := s.EventsByID(ctx, webhook.Scope{All: true}, []int64{id})
	if err != nil || len(j) != 1 {
		t.Fatalf("event %d: %v", id, err)
	}
	return j[0].Event
}
