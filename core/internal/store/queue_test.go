package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The queue's state machine: see docs/RELIABILITY.md, "The queue's state
// machine".

// reclaimed publishes one event, claims it as owner, lets the lease expire
// and claims it again as the same owner: the first claim is a late one of
// the same process (a worker stuck past its lease, or results held through
// a database outage longer than the lease).
func reclaimed(t *testing.T, s *store.Store, owner string) (ev webhook.Event, stale, live webhook.Job) {
	t.Helper()
	u, _ := storetest.User(t, s, "a-"+owner, webhook.RoleUser)
	storetest.Hook(t, s, u.ID, "e-"+owner, "https://a.example/"+owner)
	ev = storetest.Publish(t, s, "e-"+owner, `{}`)[0]
	first, err := s.Claim(ctx, owner, 10, time.Minute)
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim: %d, %v", len(first), err)
	}
	elapse(t, s, 61*time.Second)
	second, err := s.Claim(ctx, owner, 10, time.Minute)
	if err != nil || len(second) != 1 {
		t.Fatalf("second claim: %d, %v", len(second), err)
	}
	if first[0].Lease == second[0].Lease {
		t.Errorf("two claims share the lease %q", first[0].Lease)
	}
	return ev, first[0], second[0]
}

func result(j webhook.Job, status int) webhook.Result {
	r := webhook.Result{EventID: j.Event.ID, Lease: j.Lease, WebhookID: j.Webhook.ID, RetryCount: j.Event.RetryCount + 1,
		Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: status}}
	switch {
	case status/100 == 2:
		r.State = webhook.StateDelivered
	case status == 410:
		r.State = webhook.StateGivenUp
	default:
		r.State, r.NextAttemptAt = webhook.StatePending, time.Now().Add(time.Hour)
	}
	return r
}

// Finding 1: a late failure, given-up, postponement or release of an
// earlier claim of the same process does not touch the newer claim, whose
// 2xx is then recorded.
func TestStaleResultOfSameOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ev, stale, live := reclaimed(t, s, "n1")
		if err := s.Complete(ctx, []webhook.Result{result(stale, 500)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, []webhook.Result{result(stale, 410)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Postpone(ctx, []webhook.LeaseRef{stale.LeaseRef()}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, []webhook.LeaseRef{stale.LeaseRef()}); err != nil {
			t.Fatal(err)
		}
		j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if j.Event.State != webhook.StatePending || len(j.Event.Attempts) != 0 {
			t.Fatalf("a stale result of the same owner was written: %+v", j.Event)
		}
		if other, _ := s.Claim(ctx, "n2", 10, time.Minute); len(other) != 0 {
			t.Fatal("a stale result of the same owner freed the live lease")
		}
		if err := s.Complete(ctx, []webhook.Result{result(live, 204)}); err != nil {
			t.Fatal(err)
		}
		j, _ = s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if j.Event.State != webhook.StateDelivered || len(j.Event.Attempts) != 1 || j.Event.Attempts[0].Status != 204 {
			t.Fatalf("the live claim's 2xx was not recorded: %+v", j.Event)
		}
	})
}

// Finding 1: two results for one event in one batch resolve the same way
// on both backends, whatever their order: the one carrying the event's
// lease is written; of two carrying it, the first.
func TestDuplicateResultsInOneBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		for i, c := range []struct {
			name      string
			results   func(stale, live webhook.Job) []webhook.Result
			state     webhook.State
			lastState int
		}{
			{"live 2xx, stale failure", func(st, l webhook.Job) []webhook.Result { return []webhook.Result{result(l, 200), result(st, 500)} },
				webhook.StateDelivered, 200},
			{"stale failure, live 2xx", func(st, l webhook.Job) []webhook.Result { return []webhook.Result{result(st, 500), result(l, 200)} },
				webhook.StateDelivered, 200},
			{"stale 2xx, live failure", func(st, l webhook.Job) []webhook.Result { return []webhook.Result{result(st, 200), result(l, 503)} },
				webhook.StatePending, 503},
			{"live 2xx twice", func(st, l webhook.Job) []webhook.Result { return []webhook.Result{result(l, 201), result(l, 202)} },
				webhook.StateDelivered, 201},
			{"live failure, then live 2xx", func(st, l webhook.Job) []webhook.Result { return []webhook.Result{result(l, 500), result(l, 200)} },
				webhook.StatePending, 500},
		} {
			ev, stale, live := reclaimed(t, s, fmt.Sprint("n", i))
			if err := s.Complete(ctx, c.results(stale, live)); err != nil {
				t.Fatal(err)
			}
			j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
			if j.Event.State != c.state || len(j.Event.Attempts) != 1 || j.Event.Attempts[0].Status != c.lastState ||
				j.Event.RetryCount != 1 {
				t.Errorf("%s: %s with %d attempts (%+v), want %s with one attempt of status %d",
					c.name, j.Event.State, len(j.Event.Attempts), j.Event.Attempts, c.state, c.lastState)
			}
		}
	})
}

// Finding 3: on PostgreSQL, which several nodes share, queue times follow
// the database's clock. A node whose clock runs an hour ahead does not
// take a live lease, and its own lease ends after the lease's length, not
// the skew; a node an hour behind does not fire a retry early. (SQLite is
// one process: its clock is the database's.)
func TestSkewedClock(t *testing.T) {
	url := storetest.URL(t, store.Postgres)
	open := func(skew time.Duration) *store.Store {
		s, err := store.Open(ctx, url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.SetClock(func() time.Time { return time.Now().Add(skew) })
		return s
	}
	good, ahead, behind := open(0), open(time.Hour), open(-time.Hour)
	if err := good.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := storetest.User(t, good, "a", webhook.RoleUser)
	storetest.Hook(t, good, u.ID, "e", "https://a.example/")

	// A live lease is not taken over.
	ev := storetest.Publish(t, good, "e", `1`)[0]
	if jobs, _ := good.Claim(ctx, "good", 10, time.Minute); len(jobs) != 1 {
		t.Fatal("claim")
	}
	if jobs, _ := ahead.Claim(ctx, "ahead", 10, time.Minute); len(jobs) != 0 {
		t.Fatal("a node whose clock is ahead took a live lease")
	}
	if _, err := ahead.Redeliver(ctx, webhook.Scope{All: true}, ev.UUID, false); err == nil {
		t.Fatal("a node whose clock is ahead redelivered an event being delivered")
	}

	// A skewed node's publish is due now, and its lease ends after the
	// lease's length: another node takes it back then.
	if _, err := ahead.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	jobs, _ := ahead.Claim(ctx, "ahead", 10, time.Minute)
	if len(jobs) != 1 {
		t.Fatalf("the ahead node's own publish: claimed %d", len(jobs))
	}
	elapse(t, good, 61*time.Second)
	retaken, _ := good.Claim(ctx, "good", 10, time.Minute)
	if len(retaken) != 2 { // the first event's lease ran out too
		t.Fatalf("after the lease: claimed %d, want 2", len(retaken))
	}

	// A retry in a minute, written by a node an hour behind, is not due
	// for a minute.
	var res []webhook.Result
	for _, j := range retaken {
		r := result(j, 500)
		r.NextAttemptAt = time.Now().Add(-time.Hour + time.Minute) // the behind node's clock
		res = append(res, r)
	}
	if err := behind.Complete(ctx, res); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := good.Claim(ctx, "good", 10, time.Minute); len(jobs) != 0 {
		t.Fatal("a retry written by a node whose clock is behind is due early")
	}
	// Nor is a postponement of the behind node due early.
	elapse(t, good, time.Minute)
	jobs, _ = good.Claim(ctx, "good", 10, time.Minute)
	if len(jobs) != 2 {
		t.Fatalf("retries not due after a minute: %d", len(jobs))
	}
	if err := behind.Postpone(ctx, []webhook.LeaseRef{jobs[0].LeaseRef()}, time.Now().Add(-time.Hour+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := behind.Release(ctx, []webhook.LeaseRef{jobs[1].LeaseRef()}); err != nil {
		t.Fatal(err)
	}
	if again, _ := good.Claim(ctx, "good", 10, time.Minute); len(again) != 1 || again[0].Event.ID != jobs[1].Event.ID {
		t.Fatalf("after a postponement and a release by a node behind: claimed %+v, want only the released one", again)
	}
}

// Finding 4: a publish with an Idempotency-Key whose connection is lost
// mid-transaction is ErrUnavailable (503, "try again"), as one without,
// and writes nothing: the key is still free.
func TestKeyedPublishConnectionLost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		// The connection dies (PostgreSQL) or the statement fails (SQLite)
		// after the message is inserted, while inserting its events.
		var sabotage, repair []string
		if s.Dialect() == store.Postgres {
			sabotage = []string{
				`CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$`,
				`CREATE TRIGGER die BEFORE INSERT ON webhook_events FOR EACH ROW EXECUTE FUNCTION die()`,
			}
			repair = []string{`DROP TRIGGER die ON webhook_events`}
		} else {
			sabotage = []string{`CREATE TRIGGER die BEFORE INSERT ON webhook_events BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`}
			repair = []string{`DROP TRIGGER die`}
		}
		for _, q := range sabotage {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		req := webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`{}`), PublisherID: u.ID, IdempotencyKey: "k1"}
		if _, err := s.Publish(ctx, req); !errors.Is(err, webhook.ErrUnavailable) {
			t.Fatalf("keyed publish on a lost connection: %v, want ErrUnavailable", err)
		}
		var msgs int
		if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&msgs); err != nil || msgs != 0 {
			t.Fatalf("%d messages (%v) after a failed publish", msgs, err)
		}
		for _, q := range repair {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		p, err := s.Publish(ctx, req)
		if err != nil || p.Replayed || len(p.Events) != 1 {
			t.Fatalf("the retry: %+v, %v; want a first publish", p, err)
		}
	})
}

// Finding 5: a redelivery of an event that retention deleted between its
// read and its update is not found (404), not "being delivered" (409).
func TestRedeliverPurgedEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Attempted(t, s, "e", `{}`, time.Now().Add(-40*24*time.Hour), webhook.StateDelivered)[0]
		store.SetAfterRedeliverRead(s, func() {
			if p, err := s.PurgeDelivered(ctx, webhook.PurgeRequest{Before: time.Now().Add(-30 * 24 * time.Hour)}); err != nil || p.Events != 1 {
				t.Errorf("purge: %+v, %v", p, err)
			}
		})
		_, err := s.Redeliver(ctx, webhook.Scope{All: true}, ev.UUID, true)
		if !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("redeliver a purged event: %v, want ErrNotFound", err)
		}
	})
}

// An inline redelivery (RedeliverHeld) is out of the claim loop's reach
// for its hold, and ClaimEvents takes it at once; after the hold, the
// claim loop does, should the request never have.
func TestRedeliverHeld(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{}`)[0]
		jobs, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %d, %v", len(jobs), err)
		}
		if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 500)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeliverHeld(ctx, webhook.Scope{All: true}, ev.UUID, false, time.Minute); err != nil {
			t.Fatal(err)
		}
		if jobs, err := s.Claim(ctx, "n1", 10, time.Minute); err != nil || len(jobs) != 0 {
			t.Fatalf("the claim loop took a held redelivery: %d, %v", len(jobs), err)
		}
		jobs, err = s.ClaimEvents(ctx, "n2", []int64{ev.ID}, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("ClaimEvents of a held redelivery: %d, %v", len(jobs), err)
		}
		if err := s.Release(ctx, []webhook.LeaseRef{jobs[0].LeaseRef()}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeliverHeld(ctx, webhook.Scope{All: true}, ev.UUID, true, time.Minute); err != nil {
			t.Fatal(err)
		}
		elapse(t, s, 61*time.Second)
		if jobs, err := s.Claim(ctx, "n1", 10, time.Minute); err != nil || len(jobs) != 1 {
			t.Fatalf("after the hold: %d, %v", len(jobs), err)
		}
	})
}

// Migration 007 moves a lease's end from next_attempt_at to lease_until:
// in a database the previous releases left, with rows in every state, an
// expired lease and a due event are claimed, the live lease, the retry
// waiting for its time and the finished events are not, and the live
// lease still reads as leased until its end.
func TestUpgradeKeepsLeases(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s, err := store.Open(ctx, storetest.Legacy(t, backend), store.Options{Sealer: storetest.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			depth, err := s.QueueDepth(ctx)
			if err != nil || depth.Due != 2 || depth.Leased != 1 || depth.Scheduled != 1 {
				t.Fatalf("queue depth after the upgrade: %+v, %v", depth, err)
			}
			live, err := s.Event(ctx, webhook.Scope{All: true}, "ffffffffffffffffffffffffffffffff")
			if err != nil || time.Until(live.Event.NextAttemptAt) < 30*time.Second {
				t.Fatalf("the live lease's event: next attempt %v, %v", live.Event.NextAttemptAt, err)
			}
			jobs, err := s.Claim(ctx, "new-node", 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, j := range jobs {
				got = append(got, j.Event.ID)
			}
			if !slices.Equal(got, []int64{1, 2}) {
				t.Fatalf("claimed %v, want the due event and the expired lease [1 2]", got)
			}
			if again, _ := s.ClaimEvents(ctx, "new-node", []int64{6}, time.Minute); len(again) != 0 {
				t.Fatal("the live lease of the old node was claimed inline")
			}
			// The expired lease's new claim is written by its result.
			if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 204), result(jobs[1], 204)}); err != nil {
				t.Fatal(err)
			}
			if j, err := s.Event(ctx, webhook.Scope{All: true}, jobs[1].Event.UUID); err != nil || j.Event.State != webhook.StateDelivered {
				t.Fatalf("expired lease's event after its result: %+v, %v", j.Event, err)
			}
			// Once the old node's lease ends, its event is due again.
			elapse(t, s, 2*time.Minute)
			retaken, err := s.Claim(ctx, "new-node", 10, time.Minute)
			if err != nil || len(retaken) != 1 || retaken[0].Event.ID != 6 {
				t.Fatalf("after the old lease ended: %d jobs, %v", len(retaken), err)
			}
		})
	}
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
