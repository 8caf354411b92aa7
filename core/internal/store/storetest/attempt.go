package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Attempted publishes payload as eventType at time at and takes every
// resulting event through one real attempt (claim, then complete) that
// leaves it in state: delivered (200), given up (500), or pending a retry
// an hour later (500). The store's clock is at during the call and
// time.Now after it.
func Attempted(t testing.TB, s *store.Store, eventType, payload string, at time.Time, state webhook.State) []webhook.Event {
	t.Helper()
	ctx := context.Background()
	s.SetClock(func() time.Time { return at })
	defer s.SetClock(time.Now)
	evs := Publish(t, s, eventType, payload)
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	const owner = "storetest"
	jobs, err := s.ClaimEvents(ctx, owner, ids, time.Minute)
	if err != nil || len(jobs) != len(ids) {
		t.Fatalf("claim %d events: got %d, %v", len(ids), len(jobs), err)
	}
	status, body, errText := 200, "thanks", ""
	if state != webhook.StateDelivered {
		status, body, errText = 500, "oops", "status 500"
	}
	results := make([]webhook.Result, len(jobs))
	for i, j := range jobs {
		results[i] = webhook.Result{
			EventID: j.Event.ID, Lease: j.Lease, RetryCount: j.Event.RetryCount + 1, State: state, NextAttemptAt: at.Add(time.Hour),
			Attempt: webhook.Attempt{AttemptedAt: at, Duration: 12 * time.Millisecond, Status: status, Body: body, Error: errText},
		}
	}
	if err := s.Complete(ctx, results); err != nil {
		t.Fatal(err)
	}
	return evs
}
