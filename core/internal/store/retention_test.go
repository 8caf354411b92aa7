package store_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func countRows(t *testing.T, s *store.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM "+table).Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Only delivered events older than the cutoff go, with their attempts and
// the messages nothing references any more; pending and given-up events,
// recent ones, and messages still referenced stay.
func TestPurgeDeliveredOnlyWhatItShould(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "a", "https://a.example/1")
		storetest.Hook(t, s, u.ID, "a", "https://a.example/2")
		storetest.Hook(t, s, u.ID, "b", "https://b.example/")
		now := time.Now().UTC()
		old := now.Add(-40 * 24 * time.Hour)
		cutoff := now.Add(-30 * 24 * time.Hour)

		var gone, kept []webhook.Event
		for i := range 5 {
			gone = append(gone, storetest.Attempted(t, s, "a", `{}`, old.Add(time.Duration(i)*time.Minute), webhook.StateDelivered)...)
		}
		kept = append(kept, storetest.Attempted(t, s, "b", `{}`, old, webhook.StateGivenUp)...)
		kept = append(kept, storetest.Attempted(t, s, "b", `{}`, old, webhook.StatePending)...)
		kept = append(kept, storetest.Attempted(t, s, "a", `{}`, now.Add(-time.Hour), webhook.StateDelivered)...)
		// An old message with no subscriber, and a recent one.
		if err := s.AddEventTypes(ctx, "nobody"); err != nil {
			t.Fatal(err)
		}
		s.SetClock(func() time.Time { return old })
		storetest.Publish(t, s, "nobody", `1`)
		s.SetClock(time.Now)
		storetest.Publish(t, s, "nobody", `2`)

		dry, err := s.CountPurgeable(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if want := (webhook.Purged{Events: 10, Attempts: 10, Messages: 6}); dry != want {
			t.Errorf("CountPurgeable = %+v, want %+v", dry, want)
		}
		msgsBefore := countRows(t, s, "messages")

		var total webhook.Purged
		req := webhook.PurgeRequest{Before: cutoff, Limit: 3}
		for batches := 0; ; batches++ {
			if batches > 10 {
				t.Fatal("purge does not end")
			}
			got, err := s.PurgeDelivered(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got.Events > 3 {
				t.Fatalf("batch of limit 3 deleted %d events", got.Events)
			}
			total = total.Add(got)
			if got.Next.IsZero() {
				break
			}
			req.From = got.Next
		}
		if total.Events != 10 || total.Attempts != 10 || total.Messages != 5 {
			t.Errorf("purged %+v, want 10 events, 10 attempts, 5 messages", total)
		}
		var n int64
		var next int64
		for {
			d, nx, err := s.PurgeMessages(ctx, cutoff, next, 2)
			if err != nil {
				t.Fatal(err)
			}
			n += d
			if next = nx; next == 0 {
				break
			}
		}
		if n != 1 {
			t.Errorf("PurgeMessages deleted %d orphans, want 1", n)
		}
		if got := countRows(t, s, "messages"); got != msgsBefore-6 {
			t.Errorf("%d messages left, want %d", got, msgsBefore-6)
		}

		for _, ev := range gone {
			if _, err := s.Event(ctx, webhook.Scope{All: true}, ev.UUID); err == nil {
				t.Errorf("old delivered event %s survived", ev.UUID)
			}
		}
		for _, ev := range kept {
			job, err := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
			if err != nil {
				t.Errorf("event %s deleted: %v", ev.UUID, err)
				continue
			}
			if len(job.Event.Attempts) != 1 || len(job.Event.Payload) == 0 {
				t.Errorf("event %s kept without its attempts or payload: %+v", ev.UUID, job.Event)
			}
		}
		if got := countRows(t, s, "delivery_attempts"); got != len(kept) {
			t.Errorf("%d attempts left, want %d", got, len(kept))
		}
		// Nothing left: a second run deletes nothing.
		if again, err := s.PurgeDelivered(ctx, webhook.PurgeRequest{Before: cutoff}); err != nil || again != (webhook.Purged{}) {
			t.Errorf("second purge = %+v, %v", again, err)
		}
	})
}

// An old event redelivered and delivered again recently keeps its log.
func TestPurgeKeepsRecentlyRedelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "a", "https://a.example/")
		now := time.Now().UTC()
		evs := storetest.Attempted(t, s, "a", `{}`, now.Add(-40*24*time.Hour), webhook.StateDelivered)
		if _, err := s.Redeliver(ctx, webhook.Scope{All: true}, evs[0].UUID, true); err != nil {
			t.Fatal(err)
		}
		cutoff := now.Add(-30 * 24 * time.Hour)
		if got, err := s.PurgeDelivered(ctx, webhook.PurgeRequest{Before: cutoff}); err != nil || got.Events != 0 {
			t.Fatalf("purged an event pending redelivery: %+v, %v", got, err)
		}
		jobs, err := s.ClaimEvents(ctx, "t", []int64{evs[0].ID}, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %v", err)
		}
		if err := s.Complete(ctx, []webhook.Result{{EventID: evs[0].ID, Lease: jobs[0].Lease, RetryCount: 2, State: webhook.StateDelivered,
			NextAttemptAt: now, Attempt: webhook.Attempt{AttemptedAt: now, Status: 200}}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.PurgeDelivered(ctx, webhook.PurgeRequest{Before: cutoff}); err != nil || got.Events != 0 {
			t.Fatalf("purged an event delivered again today: %+v, %v", got, err)
		}
	})
}

// Two migrations sharing a number would silently skip the second.
func TestMigrationNumbersAreUnique(t *testing.T) {
	for _, dialect := range storetest.Backends {
		entries, err := os.ReadDir("migrations/" + dialect)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]string{}
		for _, e := range entries {
			n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
			if err != nil {
				t.Errorf("%s/%s: no leading number", dialect, e.Name())
			}
			if other, ok := seen[n]; ok {
				t.Errorf("%s: %s and %s share number %d", dialect, other, e.Name(), n)
			}
			seen[n] = e.Name()
		}
		if len(seen) < 2 {
			t.Errorf("%s: %d migrations found", dialect, len(seen))
		}
	}
}
