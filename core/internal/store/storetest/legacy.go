package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
)

// Clear secrets of the hook Legacy makes.
const (
	LegacySecret   = "LEGACY-SECRET-5a1c"
	LegacyPassword = "LEGACY-PASSWORD-77e0"
	LegacyHeader   = "LEGACY-HEADER-3b9d"
)

// Legacy returns the URL of a fresh database as the release before
// encryption left it (migrations 001-003): user alice (id 1); hook 1 with
// LegacySecret, basic auth bob:LegacyPassword, an X-Api-Key:
// LegacyHeader header and a rate limit, all in clear; hook 2 without
// secrets; and six events of message 1 ({"n":1}): 1 due, 2 leased with
// the lease expired, 3 failed and waiting for a retry in an hour, 4 given
// up, 5 delivered (hook 2), 6 leased by a live node (hook 2). Both hooks
// use a fixed 1-second countdown.
func Legacy(t testing.TB, backend string) string {
	t.Helper()
	url := URL(t, backend)
	old, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.MigrateTo(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	us := func(d time.Duration) int64 { return now.Add(d).UnixMicro() }
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.DB().ExecContext(context.Background(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO users (id, username, role, created_at) VALUES (1, 'alice', 'user', ?)`, now)
	exec(`INSERT INTO event_types (name, created_at) VALUES ('order-created', ?)`, now)
	exec(`INSERT INTO webhooks (id, user_id, target_url, event_type, secret_key, retry_countdown_config,
		additional_headers, config, created_at, modified_at)
		VALUES (1, 1, 'https://a.example/', 'order-created', ?, '{"choice":"fixed","kwargs":{"seconds":1}}', ?, ?, ?, ?)`,
		LegacySecret, `{"X-Api-Key":"`+LegacyHeader+`"}`,
		`{"auth":{"auth_type":"basic","password":"`+LegacyPassword+`","username":"bob"},"rate_limit_per_second":5}`, now, now)
	exec(`INSERT INTO webhooks (id, user_id, target_url, event_type, retry_countdown_config, created_at, modified_at)
		VALUES (2, 1, 'https://b.example/', 'order-created', '{"choice":"fixed","kwargs":{"seconds":1}}', ?, ?)`, now, now)
	exec(`INSERT INTO messages (id, event_type, payload, created_at) VALUES (1, 'order-created', '{"n":1}', ?)`, now)
	for i, ev := range []struct {
		state      string
		retries    int
		next       int64
		lease      any
		status     any
		delivered  bool
		hook       int
		attempted  bool
		respStatus int
	}{
		{state: "pending", next: us(-time.Second), hook: 1},                                           // due
		{state: "pending", next: us(-time.Second), lease: "old-node", hook: 1},                        // leased, lease expired
		{state: "pending", retries: 2, next: us(time.Hour), status: 500, hook: 1, attempted: true},    // failed, waiting for a retry
		{state: "given_up", retries: 18, next: us(-time.Hour), status: 500, hook: 1, attempted: true}, // given up
		{state: "delivered", retries: 1, next: us(-time.Hour), status: 200, delivered: true, hook: 2}, // delivered
		{state: "pending", next: us(time.Minute), lease: "live-node", hook: 2},                        // leased, lease live
	} {
		id := i + 1
		exec(`INSERT INTO webhook_events (id, uuid, message_id, webhook_id, user_id, event_type, state, delivered,
			retry_count, next_attempt_at, lease_owner, response_http_status, created_at, modified_at)
			VALUES (?, ?, 1, ?, 1, 'order-created', ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, strings.Repeat(string(rune('a'+i)), 32), ev.hook, ev.state, ev.delivered, ev.retries, ev.next, ev.lease, ev.status, now, now)
		if ev.attempted {
			exec(`INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body) VALUES (?, ?, 1000, 500, 'oops')`, id, now)
		}
	}
	if backend == store.Postgres {
		for _, tbl := range []string{"users", "webhooks", "messages", "webhook_events"} {
			exec(`SELECT setval(pg_get_serial_sequence('` + tbl + `', 'id'), (SELECT max(id) FROM ` + tbl + `))`)
		}
	}
	return url
}
