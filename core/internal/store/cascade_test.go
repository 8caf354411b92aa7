package store_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// count returns the rows of q.
func count(t *testing.T, s *store.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func exec(t *testing.T, s *store.Store, q string, args ...any) {
	t.Helper()
	if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Migration 012 replaces two foreign keys' cascades with triggers on
// PostgreSQL: in a database of the previous release (rows in every state),
// deleting an event, a hook, a message or a user still removes what
// depends on it, and publishing and delivering work on the new schema.
func TestCascadesAfterUpgrade(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := upgraded(t, backend, 11) // from the previous release
			if backend == store.Postgres {
				if n := count(t, s, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
					AND conname IN ('webhook_events_message_id_fkey', 'delivery_attempts_event_id_fkey')`); n != 0 {
					t.Fatalf("%d of the replaced foreign keys are left", n)
				}
			}
			attempts := func(event int64) int {
				return count(t, s, `SELECT count(*) FROM delivery_attempts WHERE event_id = ?`, event)
			}
			events := func(where string, args ...any) int {
				return count(t, s, `SELECT count(*) FROM webhook_events WHERE `+where, args...)
			}

			// An event (3: failed, waiting for its retry) with its attempt.
			exec(t, s, `DELETE FROM webhook_events WHERE id = 3`)
			if attempts(3) != 0 {
				t.Fatal("the deleted event's attempt is left")
			}
			// Hook 1: its events (1, 2, 4) and 4's attempt, through the
			// foreign key's cascade and then the events' trigger.
			exec(t, s, `DELETE FROM webhooks WHERE id = 1`)
			if n := events("webhook_id = 1"); n != 0 || attempts(4) != 0 {
				t.Fatalf("after hook 1: %d events, %d attempts", n, attempts(4))
			}

			// A message published and delivered on the new schema.
			pub := storetest.Publish(t, s, "order-created", `{"n":2}`)
			if len(pub) != 1 || pub[0].WebhookID != 2 {
				t.Fatalf("published %+v, want one event for hook 2", pub)
			}
			jobs, err := s.ClaimEvents(ctx, "n1", []int64{pub[0].ID}, time.Minute)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("claim: %d, %v", len(jobs), err)
			}
			if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 500)}); err != nil {
				t.Fatal(err)
			}
			if attempts(pub[0].ID) != 1 {
				t.Fatal("the delivery wrote no attempt")
			}
			// Deleting the message removes its event and the attempt.
			exec(t, s, `DELETE FROM messages WHERE id = (SELECT message_id FROM webhook_events WHERE id = ?)`, pub[0].ID)
			if n := events("id = ?", pub[0].ID); n != 0 || attempts(pub[0].ID) != 0 {
				t.Fatalf("after the message: %d events, %d attempts", n, attempts(pub[0].ID))
			}
			if n := events("message_id = 1"); n != 2 {
				t.Fatalf("message 1 has %d events, want 5 and 6", n)
			}

			// The user: hook 2, then its events.
			exec(t, s, `DELETE FROM users WHERE id = 1`)
			if n, a := events("1 = 1"), countRows(t, s, "delivery_attempts"); n != 0 || a != 0 {
				t.Fatalf("after the user: %d events, %d attempts", n, a)
			}
		})
	}
}

// A hook deleted while a completion writes an attempt for one of its
// events leaves no attempt behind, whichever locks the event's row first.
// The attempt is inserted only by the statement that updated its event
// (pgComplete), so either the delete waits for the completion to commit
// and its trigger, a new statement, sees the attempt; or the completion
// waits for the delete and then finds no row to update.
func TestHookDeletionRacingCompletion(t *testing.T) {
	storetest.RequirePostgres(t)
	setup := func(t *testing.T) (*store.Store, webhook.Job) {
		s := storetest.New(t, store.Postgres)
		u, _ := storetest.User(t, s, "u", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{}`)
		jobs, err := s.ClaimEvents(ctx, "n1", []int64{ev[0].ID}, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %d, %v", len(jobs), err)
		}
		return s, jobs[0]
	}
	// waitBlockedBy returns once a session waits for a lock the session
	// holder holds.
	waitBlockedBy := func(t *testing.T, s *store.Store, holder int) {
		t.Helper()
		for range 1000 {
			if count(t, s, `SELECT count(*) FROM pg_stat_activity WHERE ? = ANY (pg_blocking_pids(pid))`, holder) > 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no session waited for the lock")
	}
	session := func(t *testing.T, s *store.Store) (*sql.Conn, int) {
		t.Helper()
		c, err := s.DB().DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		var pid int
		if err := c.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return c, pid
	}

	t.Run("completion first", func(t *testing.T) {
		s, job := setup(t)
		// The completion's statement, held open: it updated (locked) the
		// event and inserted the attempt.
		c, cpid := session(t, s)
		if _, err := c.ExecContext(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, `WITH upd AS (UPDATE webhook_events SET state = 'delivered', lease_owner = NULL
			WHERE id = $1 AND lease_owner = $2 RETURNING id)
			INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status) SELECT id, now(), 1, 200 FROM upd`,
			job.Event.ID, job.Lease); err != nil {
			t.Fatal(err)
		}
		d, _ := session(t, s)
		deleted := make(chan error, 1)
		go func() {
			_, err := d.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, job.Webhook.ID)
			deleted <- err
		}()
		waitBlockedBy(t, s, cpid)
		if _, err := c.ExecContext(ctx, `COMMIT`); err != nil {
			t.Fatal(err)
		}
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, s, "delivery_attempts"); n != 0 {
			t.Fatalf("%d attempts outlived their event", n)
		}
	})

	t.Run("deletion first", func(t *testing.T) {
		s, job := setup(t)
		d, dpid := session(t, s)
		if _, err := d.ExecContext(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, job.Webhook.ID); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Complete(ctx, []webhook.Result{result(job, 200)}) }()
		waitBlockedBy(t, s, dpid)
		if _, err := d.ExecContext(ctx, `COMMIT`); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, s, "delivery_attempts"); n != 0 {
			t.Fatalf("%d attempts outlived their event", n)
		}
	})
}
