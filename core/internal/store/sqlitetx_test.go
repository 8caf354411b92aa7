package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// SQLite's hot transactions run without watching their context once they
// have the one connection (sqliteDriver.inTx), but waiting for it still
// ends with the context: a claim, a publish and a completion queued behind
// a busy connection give up with it, and work once it is free.
func TestSQLiteHotTxWaitEndsWithContext(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	ctx := context.Background()
	res := claimedDelivery(t, s)

	release, err := store.HoldConn(s)
	if err != nil {
		t.Fatal(err)
	}
	timedOut := func(err error) bool {
		return errors.Is(err, webhook.ErrUnavailable) && strings.Contains(fmt.Sprint(err), context.DeadlineExceeded.Error())
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if _, err := s.Claim(short(), "n", 10, time.Minute); !timedOut(err) {
		t.Errorf("claim waiting for the held connection: %v", err)
	}
	if _, errs := s.PublishBatch(short(), []webhook.PublishRequest{{EventType: "e", Payload: []byte(`2`)}}); !timedOut(errs[0]) {
		t.Errorf("publish waiting for the held connection: %v", errs[0])
	}
	if err := s.Complete(short(), []webhook.Result{res}); !timedOut(err) {
		t.Errorf("complete waiting for the held connection: %v", err)
	}
	release()
	if err := s.Complete(ctx, []webhook.Result{res}); err != nil {
		t.Fatalf("complete once the connection is free: %v", err)
	}
	storetest.Publish(t, s, "e", `3`)
	if c, err := s.Counts(ctx); err != nil || c[webhook.StateDelivered] != 1 || c[webhook.StatePending] != 1 {
		t.Fatalf("counts %v, %v: want 1 delivered, 1 pending", c, err)
	}
}

// claimedDelivery publishes one event to a new hook, claims it, and
// returns its delivery's result, unwritten.
func claimedDelivery(t *testing.T, s *store.Store) webhook.Result {
	t.Helper()
	u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
	storetest.Hook(t, s, u.ID, "e", "https://a.example/")
	storetest.Publish(t, s, "e", `1`)
	jobs, err := s.Claim(context.Background(), "n", 10, time.Minute)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	return webhook.Result{EventID: jobs[0].Event.ID, Lease: jobs[0].Lease, WebhookID: jobs[0].Webhook.ID,
		RetryCount: 1, State: webhook.StateDelivered, NextAttemptAt: time.Now(),
		Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 200}}
}
