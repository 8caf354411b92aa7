package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The hot statements run on pgx's own connection (pgconn.go) and keep
// database/sql's recovery from connections closed while idle: with every
// pooled connection's socket closed, each statement still succeeds, on a
// new connection.
func TestPostgresHotStatementsOutliveClosedConns(t *testing.T) {
	const conns = 4
	s := storetest.NewWith(t, store.Postgres, store.Options{MaxOpenConns: conns})
	ctx := context.Background()
	u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
	storetest.Hook(t, s, u.ID, "e", "https://a.example/")
	broken := func() {
		t.Helper()
		if err := store.BreakPostgresConns(s, conns); err != nil {
			t.Fatal(err)
		}
	}

	broken()
	for i := range 3 {
		if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`1`)}); err != nil {
			t.Fatalf("publish %d on closed connections: %v", i, err)
		}
	}
	broken()
	jobs, err := s.Claim(ctx, "n", 10, time.Minute)
	if err != nil || len(jobs) != 3 {
		t.Fatalf("claim on closed connections: %d jobs, %v", len(jobs), err)
	}
	broken()
	res := webhook.Result{EventID: jobs[0].Event.ID, Lease: jobs[0].Lease, WebhookID: jobs[0].Webhook.ID,
		RetryCount: 1, State: webhook.StateDelivered, NextAttemptAt: time.Now(),
		Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 200}}
	if err := s.Complete(ctx, []webhook.Result{res}); err != nil {
		t.Fatalf("complete on closed connections: %v", err)
	}
	broken()
	if err := s.Release(ctx, []webhook.LeaseRef{jobs[1].LeaseRef(), jobs[2].LeaseRef()}); err != nil {
		t.Fatalf("release on closed connections: %v", err)
	}
	c, err := s.Counts(ctx)
	if err != nil || c[webhook.StateDelivered] != 1 || c[webhook.StatePending] != 2 {
		t.Fatalf("counts %v, %v: want 1 delivered, 2 pending", c, err)
	}
	again, err := s.Claim(ctx, "n", 10, time.Minute)
	if err != nil || len(again) != 2 {
		t.Fatalf("the released events: %d claimed, %v", len(again), err)
	}
}

// A statement whose context ends while it waits for a lock fails, and
// the connection it was cancelled on is not handed out again broken.
func TestPostgresHotStatementCancelled(t *testing.T) {
	url := storetest.URL(t, store.Postgres)
	s := storetest.Open(t, url, store.Options{MaxOpenConns: 1, Sealer: storetest.Keyring()})
	ctx := context.Background()
	res := claimedDelivery(t, s)

	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM webhook_events WHERE id = $1 FOR UPDATE", res.EventID); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Complete(short, []webhook.Result{res}); err == nil {
		t.Fatal("a complete whose context ended while it waited for the row succeeded")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, []webhook.Result{res}); err != nil {
		t.Fatalf("complete after a cancelled one: %v", err)
	}
	if c, err := s.Counts(ctx); err != nil || c[webhook.StateDelivered] != 1 {
		t.Fatalf("counts %v, %v", c, err)
	}
}
