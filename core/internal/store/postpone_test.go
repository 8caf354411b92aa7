package store_test

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func TestPostpone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{}`)[0]
		jobs, _ := s.Claim(ctx, "n1", 10, time.Minute)
		if len(jobs) != 1 {
			t.Fatalf("claimed %d", len(jobs))
		}
		leaseEnd := jobs[0].Event.NextAttemptAt
		until := clk.now().Add(90 * time.Minute)
		// Neither another node's lease nor an earlier lease of the same
		// owner moves the event.
		for _, stale := range []string{"someone-else/0", "n1/0"} {
			if err := s.Postpone(ctx, []webhook.LeaseRef{{EventID: ev.ID, Lease: stale}}, until); err != nil {
				t.Fatal(err)
			}
			if j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID); !j.Event.NextAttemptAt.Equal(leaseEnd) {
				t.Fatalf("lease %s postponed the event: %v, lease ends %v", stale, j.Event.NextAttemptAt, leaseEnd)
			}
		}
		if err := s.Postpone(ctx, []webhook.LeaseRef{jobs[0].LeaseRef()}, until); err != nil {
			t.Fatal(err)
		}
		j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if j.Event.RetryCount != 0 || len(j.Event.Attempts) != 0 || j.Event.State != webhook.StatePending {
			t.Fatalf("postponed event: %+v", j.Event)
		}
		elapse(t, s, time.Hour)
		if jobs, _ := s.Claim(ctx, "n2", 10, time.Minute); len(jobs) != 0 {
			t.Fatal("claimed before the time it was postponed to")
		}
		elapse(t, s, 30*time.Minute)
		if jobs, _ := s.Claim(ctx, "n2", 10, time.Minute); len(jobs) != 1 {
			t.Fatal("not due at the time it was postponed to")
		}
	})
}
