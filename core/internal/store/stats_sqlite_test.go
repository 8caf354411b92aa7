package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestSQLiteStatisticsChangeNoHotPlan: after an ANALYZE (which the node
// never runs, but an operator or the bench's preload may), with STAT4
// samples of the hooks' fan-out index, a publish reuses its prepared
// statements instead of parsing and planning them again for every event
// (each rebinding of a value the planner had read expired them), and a
// claim still reads each event's own payload.
func TestSQLiteStatisticsChangeNoHotPlan(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "whisperer.db")
	s := storetest.Open(t, "sqlite://"+file, store.Options{MaxOpenConns: 1, Sealer: storetest.Keyring()})
	a, _ := storetest.User(t, s, "a", webhook.RoleUser)
	storetest.Hook(t, s, a.ID, "e", "https://a.example/1")
	storetest.Hook(t, s, a.ID, "g", "https://a.example/2", withFilter(`{"payload.n":{"$gte":0}}`))
	storetest.Hook(t, s, a.ID, "f", "https://a.example/3")
	storetest.Publish(t, s, "e", `{"n":0}`)
	if _, err := s.DB().ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	// A connection that opens the analyzed file loads the STAT4 samples
	// (the server's, after the bench's ANALYZE or a restart).
	s.Close()
	s = storetest.Open(t, "sqlite://"+file, store.Options{MaxOpenConns: 1, Sealer: storetest.Keyring()})
	var samples int
	if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM sqlite_stat4 WHERE idx = 'webhooks_fanout'").Scan(&samples); err != nil || samples == 0 {
		t.Fatalf("no STAT4 samples of webhooks_fanout (%d, %v): the test needs them", samples, err)
	}
	const publishes = 21
	for i := 1; i <= publishes; i++ {
		typ := []string{"e", "f", "g"}[i%3]
		storetest.Publish(t, s, typ, `{"n":`+strings.Repeat("1", i)+`}`)
	}
	reprepares, err := store.SQLiteReprepares(s, file)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for sql, n := range reprepares {
		if !strings.HasPrefix(sql, "INSERT INTO") {
			continue
		}
		seen++
		// Once is the ANALYZE's schema change.
		if n > 1 {
			t.Errorf("planned again %d times in %d publishes: %s", n, publishes, sql)
		}
	}
	if seen < 2 {
		t.Fatalf("%d publish statements prepared, want the message's and the events' (%v)", seen, reprepares)
	}

	// The claim's read of its jobs searches each payload by the messages
	// primary key: with statistics that say messages holds a row, a join
	// scanned every message instead.
	rows, err := s.DB().DB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+store.SQLiteJobsSQL, "[1]")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	rows.Close()
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN m") {
			t.Errorf("the claim's job read scans the messages: %q (plan %q)", step, plan)
		}
	}

	jobs, err := s.Claim(ctx, "n", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1+publishes {
		t.Fatalf("claimed %d jobs", len(jobs))
	}
	// Publish i's payload is i ones (0 for the first), its type e, f or g
	// as i is 0, 1 or 2 modulo 3.
	payloads := map[string]bool{}
	for _, j := range jobs {
		var p struct{ N json.Number }
		if err := json.Unmarshal(j.Event.Payload, &p); err != nil {
			t.Fatalf("event %d: payload %q: %v", j.Event.ID, j.Event.Payload, err)
		}
		i := len(p.N)
		if p.N == "0" {
			i = 0
		}
		if want := []string{"e", "f", "g"}[i%3]; j.Event.EventType != want {
			t.Errorf("event %d of type %s has publish %d's payload %s", j.Event.ID, j.Event.EventType, i, j.Event.Payload)
		}
		payloads[string(j.Event.Payload)] = true
	}
	if len(payloads) != publishes+1 {
		t.Errorf("claimed jobs carry %d distinct payloads, want %d", len(payloads), publishes+1)
	}
}
