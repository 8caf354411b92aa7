package store_test

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
)

func TestPostpone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{}`)[0]
		if jobs, _ := s.Claim(ctx, "n1", 10, time.Minute); len(jobs) != 1 {
			t.Fatalf("claimed %d", len(jobs))
		}
		until := clk.now().Add(1500 * time.Millisecond)
		if err := s.Postpone(ctx, "someone-else", []int64{ev.ID}, until); err != nil {
			t.Fatal(err)
		}
		if j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID); !j.Event.NextAttemptAt.Equal(clk.now().Add(time.Minute)) {
			t.Fatalf("another owner's postpone moved the lease: %v", j.Event.NextAttemptAt)
		}
		if err := s.Postpone(ctx, "n1", []int64{ev.ID}, until); err != nil {
			t.Fatal(err)
		}
		j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if !j.Event.NextAttemptAt.Equal(until) || j.Event.RetryCount != 0 || len(j.Event.Attempts) != 0 || j.Event.State != webhook.StatePending {
			t.Fatalf("postponed event: %+v", j.Event)
		}
		clk.add(time.Second)
		if jobs, _ := s.Claim(ctx, "n2", 10, time.Minute); len(jobs) != 0 {
			t.Fatal("claimed before the time it was postponed to")
		}
		clk.add(500 * time.Millisecond)
		if jobs, _ := s.Claim(ctx, "n2", 10, time.Minute); len(jobs) != 1 {
			t.Fatal("not due at the time it was postponed to")
		}
	})
}
