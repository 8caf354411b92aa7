package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// AnalyzeGrown analyzes a young table once it has grown past its
// statistics, and not again until it has doubled; on SQLite it does
// nothing.
func TestAnalyzeGrown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		storetest.Hook(t, s, u.ID, "order-created", "https://a.example/1")
		for range 120 {
			storetest.Publish(t, s, "order-created", `{"n":1}`)
		}
		if s.Dialect() == store.SQLite {
			names, err := s.AnalyzeGrown(ctx)
			if err != nil || len(names) != 0 {
				t.Fatalf("SQLite: %v %v, want nothing", names, err)
			}
			return
		}
		// Other backends' counters reach pg_stat_user_tables within a
		// second or so (PostgreSQL flushes them when a backend is idle).
		var names []string
		for deadline := time.Now().Add(30 * time.Second); !slices.Contains(names, "webhook_events"); {
			if time.Now().After(deadline) {
				t.Fatalf("webhook_events never analyzed; last %v", names)
			}
			var err error
			if names, err = s.AnalyzeGrown(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		var tuples float64
		if err := s.DB().QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'webhook_events'::regclass`).Scan(&tuples); err != nil || tuples != 120 {
			t.Fatalf("reltuples %v %v, want 120", tuples, err)
		}
		names, err := s.AnalyzeGrown(ctx)
		if err != nil || slices.Contains(names, "webhook_events") {
			t.Fatalf("analyzed again before it grew: %v %v", names, err)
		}
	})
}
