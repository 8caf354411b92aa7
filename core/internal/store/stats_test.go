package store_test

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// QueueDepth tells due, leased and scheduled events apart, counts an
// expired lease as due again, and ignores finished events.
func TestQueueDepth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		s.SetClock(func() time.Time { return now })
		check := func(want webhook.QueueDepth) {
			t.Helper()
			got, err := s.QueueDepth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Under its limit, the bounded count is the same (the age is
			// the database's clock's, later).
			bounded, err := s.QueueDepthUpTo(ctx, 10)
			if bounded.OldestDueAge = got.OldestDueAge; err != nil || bounded != got {
				t.Errorf("QueueDepthUpTo %+v, %v; QueueDepth %+v", bounded, err, got)
			}
			if !got.OldestDue.Equal(want.OldestDue) {
				t.Errorf("oldest due %v, want %v", got.OldestDue, want.OldestDue)
			}
			got.OldestDue, want.OldestDue = time.Time{}, time.Time{}
			got.OldestDueAge = 0 // TestQueueDepthAgeIsTheQueueClock
			if got != want {
				t.Errorf("depth %+v, want %+v", got, want)
			}
		}
		check(webhook.QueueDepth{})

		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "package-created", "https://example.com/")
		// Due from the queue's clock's now (the database's on PostgreSQL).
		var due []time.Time
		for range 3 {
			due = append(due, storetest.Publish(t, s, "package-created", `{}`)[0].NextAttemptAt)
		}
		check(webhook.QueueDepth{Due: 3, OldestDue: due[0]})

		jobs, err := s.Claim(ctx, "n1", 2, time.Minute)
		if err != nil || len(jobs) != 2 {
			t.Fatalf("claim: %d jobs, %v", len(jobs), err)
		}
		check(webhook.QueueDepth{Due: 1, Leased: 2, OldestDue: due[2]})

		// One attempt fails and is retried in an hour; one is delivered.
		res := []webhook.Result{
			{EventID: jobs[0].Event.ID, Lease: jobs[0].Lease, RetryCount: 1, State: webhook.StatePending, NextAttemptAt: now.Add(time.Hour),
				Attempt: webhook.Attempt{AttemptedAt: now, Status: 500}},
			{EventID: jobs[1].Event.ID, Lease: jobs[1].Lease, RetryCount: 1, State: webhook.StateDelivered,
				Attempt: webhook.Attempt{AttemptedAt: now, Status: 200}},
		}
		if err := s.Complete(ctx, res); err != nil {
			t.Fatal(err)
		}
		check(webhook.QueueDepth{Due: 1, Scheduled: 1, OldestDue: due[2]})

		// A lease that expired is due again, since its end.
		leased, err := s.Claim(ctx, "n1", 1, time.Minute)
		if err != nil || len(leased) != 1 {
			t.Fatal(len(leased), err)
		}
		elapse(t, s, 2*time.Minute)
		check(webhook.QueueDepth{Due: 1, Scheduled: 1, OldestDue: leased[0].Event.NextAttemptAt.Add(-2 * time.Minute)})
	})
}

// The oldest due event's age is the queue's clock's (the database's on
// PostgreSQL): a node whose clock runs ahead reads the same age.
func TestQueueDepthAgeIsTheQueueClock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		s.SetClock(func() time.Time { return now })
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "package-created", "https://example.com/")
		storetest.Publish(t, s, "package-created", `{}`)
		elapse(t, s, 90*time.Second)
		if s.Dialect() == store.Postgres {
			s.SetClock(func() time.Time { return now.Add(2 * time.Hour) }) // this node's clock runs ahead
		}
		got, err := s.QueueDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Due != 1 || got.OldestDueAge < 90*time.Second || got.OldestDueAge > 2*time.Minute {
			t.Fatalf("depth %+v: want one due event, due for 90s", got)
		}
	})
}
