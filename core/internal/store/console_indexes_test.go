package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A database of the previous release (migration 008, rows in every
// state) migrates to 009 in place: the console's indexes exist, and the
// queries that read them (a user's list by event type and by time range,
// the range redelivery's count and batches, the bounded queue depth and
// its lag samples) see every legacy row as before.
func TestConsoleIndexesMigrationFromPreviousRelease(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s, err := store.Open(ctx, storetest.Legacy(t, backend), store.Options{Sealer: storetest.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.MigrateTo(ctx, 8); err != nil { // the previous release
				t.Fatal(err)
			}
			// The previous release's rollups have no lag column.
			if _, err := s.DB().ExecContext(ctx, `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up) VALUES (1, ?, 3, 1, 1, 1)`,
				time.Now().Unix()/60-1); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			indexes := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ('webhook_events_user_type', 'webhook_events_user_created', 'webhook_events_failed')`
			if backend == store.Postgres {
				indexes = `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ('webhook_events_user_type', 'webhook_events_user_created', 'webhook_events_failed')`
			}
			var n int
			if err := s.DB().QueryRowContext(ctx, indexes).Scan(&n); err != nil || n != 3 {
				t.Fatalf("%d of the 3 indexes, %v", n, err)
			}

			alice := webhook.Scope{UserID: 1}
			list := func(f webhook.EventFilter) int {
				t.Helper()
				ids, _, err := s.EventIDs(ctx, alice, f, webhook.Page{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				return len(ids)
			}
			hourAgo, inAnHour := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
			for _, c := range []struct {
				name string
				f    webhook.EventFilter
				want int
			}{
				{"by type", webhook.EventFilter{EventType: "order-created"}, 6},
				{"by another type", webhook.EventFilter{EventType: "order-deleted"}, 0},
				{"since", webhook.EventFilter{CreatedSince: hourAgo}, 6},
				{"since and before", webhook.EventFilter{CreatedSince: hourAgo, CreatedBefore: inAnHour}, 6},
				{"before, long ago", webhook.EventFilter{CreatedSince: hourAgo.Add(-time.Hour), CreatedBefore: hourAgo}, 0},
				{"failed", webhook.EventFilter{CreatedSince: hourAgo, CreatedBefore: inAnHour, Failed: true}, 2},
			} {
				if got := list(c.f); got != c.want {
					t.Errorf("%s: %d events, want %d", c.name, got, c.want)
				}
			}

			// Failed: 3 (waiting for a retry) and 4 (given up); 2's
			// expired lease and 1 never failed.
			rng := webhook.RedeliverFilter{Since: hourAgo}
			if got, err := s.CountFailedUpTo(ctx, alice, rng, 0); err != nil || got != 2 {
				t.Fatalf("count failed: %d, %v", got, err)
			}
			if got, err := s.CountFailedUpTo(ctx, webhook.Scope{All: true}, rng, 1); err != nil || got != 1 {
				t.Fatalf("count failed up to 1: %d, %v", got, err)
			}
			for hook, want := range map[int64]int64{1: 2, 2: 0} {
				byHook := webhook.RedeliverFilter{Since: hourAgo, WebhookID: hook}
				if got, err := s.CountFailedUpTo(ctx, alice, byHook, 0); err != nil || got != want {
					t.Fatalf("count failed of hook %d: %d, %v; want %d", hook, got, err, want)
				}
			}
			if got, err := s.CountFailedUpTo(ctx, webhook.Scope{UserID: 2}, rng, 0); err != nil || got != 0 {
				t.Fatalf("another user's failed count: %d, %v", got, err)
			}

			// Due: 1, and 2 (its lease expired); scheduled: 3; leased: 6.
			want := webhook.QueueDepth{Due: 2, Scheduled: 1, Leased: 1}
			if got, err := s.QueueDepthUpTo(ctx, 10); err != nil || got.Due != want.Due || got.Scheduled != want.Scheduled || got.Leased != want.Leased {
				t.Fatalf("queue depth %+v, %v; want %+v", got, err, want)
			}
			if got, err := s.QueueDepthUpTo(ctx, 1); err != nil || got.Due != 1 || got.Due+got.Scheduled+got.Leased != 2 {
				t.Fatalf("queue depth up to 1 row of each phase: %+v, %v", got, err)
			}
			if err := s.SampleQueueLag(ctx); err != nil {
				t.Fatal(err)
			}
			rolls, err := s.Rollups(ctx, webhook.Scope{All: true}, time.Now().Add(-time.Hour))
			if err != nil || len(rolls) != 2 || rolls[0].Attempts != 3 || rolls[0].QueueLag != 0 || rolls[1].QueueLag < time.Second {
				t.Fatalf("an admin's rollups: %+v, %v", rolls, err)
			}
			if rolls, err := s.Rollups(ctx, alice, time.Now().Add(-time.Hour)); err != nil || len(rolls) != 1 || rolls[0].QueueLag != 0 {
				t.Fatalf("a user's rollups: %+v, %v", rolls, err)
			}

			n64, next, err := s.RedeliverFailedBatch(ctx, alice, rng, 0, 1)
			if err != nil || n64 != 1 || next == 0 {
				t.Fatalf("first batch: %d, next %d, %v", n64, next, err)
			}
			n64, next, err = s.RedeliverFailedBatch(ctx, alice, rng, next, 1)
			if err != nil || n64 != 1 {
				t.Fatalf("second batch: %d, next %d, %v", n64, next, err)
			}
			if n64, _, err = s.RedeliverFailedBatch(ctx, alice, rng, next, 1); err != nil || n64 != 0 {
				t.Fatalf("third batch: %d, %v", n64, err)
			}
			if got, err := s.CountFailedUpTo(ctx, alice, rng, 0); err != nil || got != 0 {
				t.Fatalf("count failed after the redelivery: %d, %v", got, err)
			}
		})
	}
}

// A time range's list is exact whatever order ids and created_at took (a
// slow publish, an imported event): the id window it is narrowed to
// (idWindow) holds every event of the range.
func TestEventsTimeRangeIdsOutOfOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "package-created", "https://example.com/")
		var ids []int64
		for range 3 {
			ids = append(ids, storetest.Publish(t, s, "package-created", `{}`)[0].ID)
		}
		// The newest event was created two days ago; the oldest, in an hour.
		old, later := time.Now().UTC().Add(-48*time.Hour), time.Now().UTC().Add(time.Hour)
		for id, at := range map[int64]time.Time{ids[2]: old, ids[0]: later} {
			if _, err := s.DB().ExecContext(ctx, `UPDATE webhook_events SET created_at = ? WHERE id = ?`, at, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, sc := range []webhook.Scope{{All: true}, {UserID: u.ID}} {
			for _, c := range []struct {
				since, before time.Time
				want          []int64
			}{
				{old.Add(-time.Hour), old.Add(time.Hour), []int64{ids[2]}},
				{old.Add(-time.Hour), later, []int64{ids[2], ids[1]}},
				{time.Now().Add(-time.Hour), later.Add(time.Minute), []int64{ids[1], ids[0]}},
				{old.Add(-time.Hour), later.Add(time.Minute), []int64{ids[2], ids[1], ids[0]}},
			} {
				got, _, err := s.EventIDs(ctx, sc, webhook.EventFilter{CreatedSince: c.since, CreatedBefore: c.before}, webhook.Page{Limit: 10})
				if err != nil || !slices.Equal(got, c.want) {
					t.Fatalf("%+v [%s, %s): %v, %v; want %v", sc, c.since, c.before, got, err, c.want)
				}
			}
		}
		// A day's list (created_date) too.
		got, _, err := s.EventIDs(ctx, webhook.Scope{All: true}, webhook.EventFilter{CreatedDate: old}, webhook.Page{Limit: 10})
		if err != nil || len(got) != 1 || got[0] != ids[2] {
			t.Fatalf("created_date: %v, %v", got, err)
		}
	})
}
