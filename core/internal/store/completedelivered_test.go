package store_test

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A batch of results that are all deliveries (on PostgreSQL its own
// statement, pgCompleteDelivered) clears failing_since of the hooks it
// delivered to and of no other, counts stale results in the rollups but
// not for health, writes attempts of the live results only, and reports
// no change.
func TestCompleteDeliveredBatch(t *testing.T) {
	storetest.EachWith(t, store.Options{DisableAfter: time.Hour}, func(t *testing.T, s *store.Store) {
		changes := recordChanges(s)
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bob, _ := storetest.User(t, s, "bob", webhook.RoleUser)
		recovers := storetest.Hook(t, s, alice.ID, "e", "https://a.example/recovers")
		healthy := storetest.Hook(t, s, alice.ID, "e", "https://a.example/healthy")
		staleOnly := storetest.Hook(t, s, bob.ID, "e", "https://b.example/stale-only")
		idle := storetest.Hook(t, s, bob.ID, "f", "https://b.example/idle")
		start := time.Now().Add(-time.Hour)

		// recovers, staleOnly and idle fail once (a mixed batch: the
		// general statement), healthy delivers.
		storetest.Publish(t, s, "e", `{"n":1}`)
		storetest.Publish(t, s, "f", `{"n":1}`)
		attemptAll(t, s, func(j webhook.Job) webhook.Result {
			if j.Webhook.ID == healthy.ID {
				return webhook.Result{State: webhook.StateDelivered, Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 200}}
			}
			return webhook.Result{State: webhook.StatePending, NextAttemptAt: time.Now().Add(time.Hour),
				Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 500}}
		})
		for _, h := range []webhook.Webhook{recovers, staleOnly, idle} {
			if hookNow(t, s, h.ID).FailingSince == nil {
				t.Fatalf("hook %d: no failing_since after a failure", h.ID)
			}
		}

		// Two more events per hook of e, all delivered; staleOnly's
		// results carry a lease they do not hold.
		storetest.Publish(t, s, "e", `{"n":2}`)
		storetest.Publish(t, s, "e", `{"n":3}`)
		jobs, err := s.Claim(ctx, "n1", 100, time.Minute)
		if err != nil || len(jobs) != 6 {
			t.Fatalf("claim: %d jobs, %v", len(jobs), err)
		}
		var results []webhook.Result
		written := map[int64]bool{}
		for _, j := range jobs {
			r := result(j, 200)
			if j.Webhook.ID == staleOnly.ID {
				r.Lease += "-stale"
			} else {
				written[j.Event.ID] = true
			}
			results = append(results, r)
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		if r, h := hookNow(t, s, recovers.ID), hookNow(t, s, healthy.ID); r.FailingSince != nil || !r.IsActive || h.FailingSince != nil || !h.IsActive {
			t.Errorf("after deliveries: recovers %+v, healthy %+v", r, h)
		}
		for _, h := range []webhook.Webhook{staleOnly, idle} {
			if got := hookNow(t, s, h.ID); got.FailingSince == nil || !got.IsActive {
				t.Errorf("hook %d (no live result in the batch): %+v", h.ID, got)
			}
		}
		for _, j := range jobs {
			ev := storeEvent(t, s, j.Event.ID)
			if written[j.Event.ID] != (ev.State == webhook.StateDelivered && len(ev.Attempts) == 1 && ev.Attempts[0].Status == 200) ||
				!written[j.Event.ID] && (ev.State != webhook.StatePending || len(ev.Attempts) != 0) {
				t.Errorf("event %d of hook %d (written %v): %s, %d attempts", j.Event.ID, j.Webhook.ID, written[j.Event.ID], ev.State, len(ev.Attempts))
			}
		}
		if got := changes(); len(got) != 0 {
			t.Errorf("changes reported: %+v", got)
		}

		// The charts count every result, stale or not: 4 + 6 requests,
		// 1 + 6 deliveries, 3 failures.
		rs, err := s.Rollups(ctx, webhook.Scope{All: true}, start)
		if err != nil {
			t.Fatal(err)
		}
		var sum webhook.Rollup
		for _, r := range rs {
			sum.Attempts, sum.Delivered, sum.Failed, sum.GivenUp = sum.Attempts+r.Attempts, sum.Delivered+r.Delivered, sum.Failed+r.Failed, sum.GivenUp+r.GivenUp
		}
		if sum.Attempts != 10 || sum.Delivered != 7 || sum.Failed != 3 || sum.GivenUp != 0 {
			t.Errorf("rollups %+v", sum)
		}
		success, err := s.HookSuccess(ctx, []int64{recovers.ID, healthy.ID, staleOnly.ID}, start)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]webhook.HookSuccess{recovers.ID: {Attempts: 3, Delivered: 2}, healthy.ID: {Attempts: 3, Delivered: 3},
			staleOnly.ID: {Attempts: 3, Delivered: 2}}
		for id, w := range want {
			if success[id] != w {
				t.Errorf("hook %d success %+v, want %+v", id, success[id], w)
			}
		}
	})
}
