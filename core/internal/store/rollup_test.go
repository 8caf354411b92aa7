package store_test

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Complete adds its results to the minute's rollups per user; Rollups sums
// them for everyone or one user, and rows past two days go.
func TestRollups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bob, _ := storetest.User(t, s, "bob", webhook.RoleUser)
		storetest.Hook(t, s, alice.ID, "order-created", "https://a.example/1")
		storetest.Hook(t, s, alice.ID, "order-created", "https://a.example/2")
		storetest.Hook(t, s, bob.ID, "order-created", "https://b.example/")
		storetest.Publish(t, s, "order-created", `{"n":1}`)
		storetest.Publish(t, s, "order-created", `{"n":2}`)
		jobs, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(jobs) != 6 {
			t.Fatalf("claim: %d %v", len(jobs), err)
		}
		start := time.Now().UTC()
		var results []webhook.Result
		for i, j := range jobs {
			status := []int{200, 500, 410}[i%3]
			results = append(results, result(j, status))
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		all, err := s.Rollups(ctx, webhook.Scope{All: true}, start.Add(-time.Minute))
		if err != nil || len(all) < 1 {
			t.Fatalf("rollups: %v %v", all, err)
		}
		if sum := sumRollups(all); sum.Attempts != 6 || sum.Delivered != 2 || sum.Failed != 2 || sum.GivenUp != 2 {
			t.Fatalf("everyone's rollup %+v, want 6 attempts, 2 of each state", sum)
		}
		var bobs int64
		mine, _ := s.Rollups(ctx, webhook.Scope{UserID: bob.ID}, start.Add(-time.Minute))
		for _, r := range mine {
			bobs += r.Attempts
		}
		if bobs != 2 {
			t.Fatalf("bob's attempts %d, want 2", bobs)
		}
		if s.RollupFailures() != 0 {
			t.Fatalf("%d rollup failures", s.RollupFailures())
		}
		// Two days later, a new minute's write prunes them (a late result
		// of a lease already written is still an attempt made).
		s.SetClock(func() time.Time { return time.Now().Add(49 * time.Hour) })
		defer s.SetClock(time.Now)
		if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 200)}); err != nil {
			t.Fatal(err)
		}
		if old, _ := s.Rollups(ctx, webhook.Scope{All: true}, start.Add(-time.Minute)); len(old) != 1 || old[0].Minute.Before(start.Add(48*time.Hour)) {
			t.Fatalf("after two days: %+v", old)
		}
	})
}

// sumRollups sums the counts of minutes.
func sumRollups(minutes []webhook.Rollup) webhook.Rollup {
	var sum webhook.Rollup
	for _, r := range minutes {
		sum.Attempts += r.Attempts
		sum.Delivered += r.Delivered
		sum.Failed += r.Failed
		sum.GivenUp += r.GivenUp
	}
	return sum
}
