package store_test

import (
	"testing"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// A database whose foreign keys carry other names (recreated by hand, a
// dump tool's) keeps them after 012 alongside the triggers: the migration
// passes and the per-insert checks it exists to remove stay.
func TestMigration012OtherConstraintNames(t *testing.T) {
	storetest.RequirePostgres(t)
	s, err := store.Open(ctx, storetest.URL(t, store.Postgres), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `ALTER TABLE webhook_events RENAME CONSTRAINT webhook_events_message_id_fkey TO fk_event_message`)
	exec(t, s, `ALTER TABLE delivery_attempts RENAME CONSTRAINT delivery_attempts_event_id_fkey TO fk_attempt_event`)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	n := count(t, s, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN ('webhook_events'::regclass, 'delivery_attempts'::regclass)
		AND confrelid IN ('messages'::regclass, 'webhook_events'::regclass)`)
	if n != 0 {
		t.Errorf("after 012, %d foreign keys to messages/webhook_events are left", n)
	}
}
