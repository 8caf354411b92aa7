package store_test

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// One Complete of a large batch (more rows than a statement's old VALUES
// chunk) that holds, for every event, a stale result of an expired claim
// and the live one — sometimes the stale one first, sometimes the live one
// — as a node sends after a database outage: each event gets the live
// result only, the charts count every result, a hook that answered 410 is
// deactivated by the batch and reported once, and bodies with quotes,
// escapes and non-ASCII text are stored as sent.
func TestCompleteLargeBatchWithStaleResults(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		var mu sync.Mutex
		var got []webhook.Changes
		s.OnChanges(func(c webhook.Changes) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		})
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bob, _ := storetest.User(t, s, "bob", webhook.RoleUser)
		ok := storetest.Hook(t, s, alice.ID, "e", "https://a.example/ok")
		gone := storetest.Hook(t, s, alice.ID, "e", "https://a.example/gone")
		failing := storetest.Hook(t, s, bob.ID, "e", "https://b.example/")
		const published = 90 // 270 events
		for i := range published {
			storetest.Publish(t, s, "e", fmt.Sprintf(`{"n":%d}`, i))
		}
		stale, err := s.Claim(ctx, "n1", 1000, time.Minute)
		if err != nil || len(stale) != 3*published {
			t.Fatalf("first claim: %d, %v", len(stale), err)
		}
		elapse(t, s, 61*time.Second)
		live, err := s.Claim(ctx, "n1", 1000, time.Minute)
		if err != nil || len(live) != len(stale) {
			t.Fatalf("second claim: %d, %v", len(live), err)
		}
		for i := 1; i < len(live); i++ {
			if live[i].Event.ID <= live[i-1].Event.ID {
				t.Fatalf("claimed out of due order: event %d after %d", live[i].Event.ID, live[i-1].Event.ID)
			}
		}
		body := "he said \"hi\"\n\t\\ \x01 ü 😀 </x>"
		var results []webhook.Result
		want := map[int64]webhook.Result{}
		for i, j := range live {
			if j.Event.ID != stale[i].Event.ID || j.Webhook.ID != stale[i].Webhook.ID || string(j.Event.Payload) == "" {
				t.Fatalf("job %d: %+v, first claimed %+v", i, j, stale[i])
			}
			var r webhook.Result
			switch j.Webhook.ID {
			case ok.ID:
				r = result(j, 200)
			case gone.ID:
				r = result(j, 410)
			case failing.ID:
				r = result(j, 503)
				if i%2 == 0 { // no answer at all
					r.Attempt.Status, r.Attempt.Error = 0, "connection refused"
				}
			}
			r.Attempt.Body = fmt.Sprintf("%s %d", body, i)
			want[j.Event.ID] = r
			old := result(stale[i], 200)
			if i%2 == 0 {
				results = append(results, old, r)
			} else {
				results = append(results, r, old)
			}
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		for id, r := range want {
			j, err := s.Event(ctx, webhook.Scope{All: true}, fmt.Sprint(id))
			if err != nil {
				t.Fatal(err)
			}
			e := j.Event
			var status *int
			if r.Attempt.Status != 0 {
				status = &r.Attempt.Status
			}
			if e.State != r.State || e.Delivered != (r.State == webhook.StateDelivered) || e.RetryCount != 1 ||
				!reflect.DeepEqual(e.ResponseHTTPStatus, status) || e.ResponseContent != r.Attempt.Body || len(e.Attempts) != 1 {
				t.Fatalf("event %d: %+v, want the result %+v", id, e, r)
			}
			a := e.Attempts[0]
			if a.Status != r.Attempt.Status || a.Body != r.Attempt.Body || a.Error != r.Attempt.Error ||
				!a.AttemptedAt.Equal(r.Attempt.AttemptedAt.Truncate(time.Microsecond)) {
				t.Fatalf("event %d: attempt %+v, want %+v", id, a, r.Attempt)
			}
		}
		// Written once, reported once: the gone hook's events given up and
		// the hook deactivated.
		mu.Lock()
		if len(got) != 1 || len(got[0].GivenUp) != published || len(got[0].Disabled) != 1 || got[0].Disabled[0].ID != gone.ID ||
			got[0].Disabled[0].Reason != store.ReasonGone {
			t.Fatalf("changes %+v", got)
		}
		mu.Unlock()
		for _, g := range got[0].GivenUp {
			if g.WebhookID != gone.ID || want[g.EventID].Lease != g.Lease {
				t.Fatalf("given up %+v", g)
			}
		}
		if h := hookNow(t, s, gone.ID); h.IsActive || h.DisabledReason != store.ReasonGone {
			t.Fatalf("gone hook %+v", h)
		}
		if h := hookNow(t, s, failing.ID); !h.IsActive || h.FailingSince == nil {
			t.Fatalf("failing hook %+v", h)
		}
		if h := hookNow(t, s, ok.ID); !h.IsActive || h.FailingSince != nil {
			t.Fatalf("healthy hook %+v", h)
		}
		// The charts count every result, the stale ones too.
		rollups, err := s.Rollups(ctx, webhook.Scope{All: true}, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var sum webhook.Rollup
		for _, r := range rollups {
			sum.Attempts += r.Attempts
			sum.Delivered += r.Delivered
			sum.Failed += r.Failed
			sum.GivenUp += r.GivenUp
		}
		if n := int64(published); sum.Attempts != 6*n || sum.Delivered != 4*n || sum.Failed != n || sum.GivenUp != n {
			t.Fatalf("rollups %+v, want %d attempts: %d delivered, %d failed, %d given up", sum, 6*n, 4*n, n, n)
		}
		success, err := s.HookSuccess(ctx, []int64{ok.ID, gone.ID, failing.ID}, time.Now().Add(-time.Hour))
		n := int64(2 * published)
		wantSuccess := map[int64]webhook.HookSuccess{ok.ID: {Attempts: n, Delivered: n},
			gone.ID: {Attempts: n, Delivered: n / 2}, failing.ID: {Attempts: n, Delivered: n / 2}}
		if err != nil || !reflect.DeepEqual(success, wantSuccess) {
			t.Fatalf("hook success %+v %v, want %+v", success, err, wantSuccess)
		}
		// The same batch again is stale throughout: nothing is written or
		// reported, and the charts count it.
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("stale batch reported %+v", got[1:])
		}
		if s.RollupFailures() != 0 {
			t.Fatalf("%d rollup failures", s.RollupFailures())
		}
	})
}

// ClaimEvents takes the claimable ones of the ids it is given, whatever
// their number and order, an id given twice or unknown included.
func TestClaimEventsOfManyIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "u", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		var ids []int64
		for i := range 300 {
			ids = append(ids, storetest.Publish(t, s, "e", fmt.Sprintf(`{"n":%d}`, i))[0].ID)
		}
		held, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(held) != 10 {
			t.Fatalf("claim: %d %v", len(held), err)
		}
		ask := append([]int64{ids[5], ids[5], 987654321}, ids...)
		slices.Reverse(ask)
		jobs, err := s.ClaimEvents(ctx, "n2", ask, time.Minute)
		if err != nil || len(jobs) != len(ids)-10 {
			t.Fatalf("claim events: %d %v", len(jobs), err)
		}
		seen := map[int64]bool{}
		for _, h := range held {
			seen[h.Event.ID] = true
		}
		for _, j := range jobs {
			if seen[j.Event.ID] || j.Lease == "" || j.Webhook.TargetURL != "https://a.example/" {
				t.Fatalf("job %+v (claimed twice, or without its lease or hook)", j)
			}
			seen[j.Event.ID] = true
		}
	})
}
