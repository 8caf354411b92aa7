package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Migration 012 runs while the previous release's nodes still serve
// (rolling upgrade). Its first statement locks webhook_events and then
// messages (dropping the foreign key), a publish locks messages and then
// webhook_events: a publish that arrives while the migration waits for an
// in-flight statement on webhook_events deadlocks with it.
func TestMigration012DuringPublish(t *testing.T) {
	storetest.RequirePostgres(t)
	url := storetest.URL(t, store.Postgres)
	node, err := store.Open(ctx, url, store.Options{}) // a serving node of the previous release
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if err := node.MigrateTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	u, _ := storetest.User(t, node, "u", webhook.RoleUser)
	storetest.Hook(t, node, u.ID, "e", "https://a.example/")
	storetest.Publish(t, node, "e", `{}`)

	// An in-flight statement on webhook_events (a console query, a claim).
	a, err := node.DB().DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var apid int
	a.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&apid)
	if _, err := a.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, `SELECT count(*) FROM webhook_events`); err != nil {
		t.Fatal(err)
	}

	upgrader, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upgrader.Close() })
	migrated := make(chan error, 1)
	go func() { migrated <- upgrader.Migrate(ctx) }()
	blocked := func(holder int) bool {
		var n int
		node.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE ? = ANY (pg_blocking_pids(pid))`, holder).Scan(&n)
		return n > 0
	}
	for i := 0; !blocked(apid); i++ {
		if i > 500 {
			t.Fatal("the migration never waited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	published := make(chan error, 1)
	go func() {
		_, err := node.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`{}`)})
		published <- err
	}()
	// The publish has locked messages and queues for webhook_events
	// behind the migration.
	for i := 0; ; i++ {
		var n int
		node.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH input AS%'`).Scan(&n)
		if n > 0 {
			break
		}
		if i > 500 {
			t.Fatal("the publish never waited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	errM, errP := <-migrated, <-published
	t.Logf("migrate: %v", errM)
	t.Logf("publish: %v", errP)
	if errM != nil || errP != nil {
		t.Errorf("migration 012 and a concurrent publish: migrate %v, publish %v", errM, errP)
	}
}
