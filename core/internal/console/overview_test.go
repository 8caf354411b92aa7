package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

var attemptsTotal = regexp.MustCompile(`<dt>Attempts</dt><dd>(\d+)</dd>`)

// The overview charts the rollups that deliveries add to: one user sees
// their own, an admin everyone's and the queue's lag.
func TestOverview(t *testing.T) {
	n := startNode(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer recv.Close()
	storetest.Hook(t, n.Store, n.alice.ID, eventType, recv.URL+"/a")
	storetest.Hook(t, n.Store, n.alice.ID, eventType, recv.URL+"/b")
	n.publish(t, eventType, `{"n": 1}`)

	alice := n.browser(t)
	alice.signIn(n.aliceKey)
	deadline := time.Now().Add(20 * time.Second)
	var p answer
	for time.Now().Before(deadline) {
		if p = alice.get("/overview"); strings.Contains(p.body, "<dt>Attempts</dt><dd>2</dd>") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := attemptsTotal.FindStringSubmatch(p.body); m == nil || m[1] != "2" {
		t.Fatalf("alice's overview: %s", p.body)
	}
	for _, want := range []string{`id="chart-attempts"><svg class="chart"`, "100.0% of the results", `<rect class="bar"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(p.body, "queue-lag") {
		t.Error("a user sees the queue's lag or its history")
	}
	if strings.Count(p.body, "<rect") != 3*61 {
		t.Errorf("%d bars, want 61 minutes in each of 3 charts", strings.Count(p.body, "<rect"))
	}
	if d := alice.get("/overview?range=day"); strings.Count(d.body, "<rect") != 3*97 {
		t.Errorf("day: %d bars, want 97 quarters in each of 3 charts", strings.Count(d.body, "<rect"))
	}
	if d := alice.get("/overview?range=week"); d.status != http.StatusBadRequest {
		t.Errorf("range=week = %d", d.status)
	}
	bob := n.browser(t)
	bob.signIn(n.bobKey)
	if m := attemptsTotal.FindStringSubmatch(bob.get("/overview").body); m == nil || m[1] != "0" {
		t.Errorf("bob sees alice's attempts: %v", m)
	}
	// A node's lag sample of 90 s this minute, beside the node's own
	// (near 0): the history shows the larger.
	if _, err := n.Store.DB().ExecContext(context.Background(), `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up, queue_lag_us)
		VALUES (0, ?, 0, 0, 0, 0, 90000000) ON CONFLICT (user_id, minute) DO UPDATE SET queue_lag_us = 90000000`, time.Now().Unix()/60); err != nil {
		t.Fatal(err)
	}
	root := n.browser(t)
	root.signIn(n.rootKey)
	p = root.get("/overview")
	if m := attemptsTotal.FindStringSubmatch(p.body); m == nil || m[1] != "2" || !strings.Contains(p.body, `id="queue-lag"`) {
		t.Errorf("root's overview: %s", p.body)
	}
	if !strings.Contains(p.body, `id="chart-queue-lag"><svg class="chart"`) || !strings.Contains(p.body, "full height is 1m30s") ||
		!strings.Contains(p.body, "the oldest due event had waited 1m30s") || strings.Count(p.body, "<rect") != 4*61 {
		t.Errorf("root's overview lacks the lag history of 61 minutes up to 1m30s: %s", p.body)
	}
	if bob.get("/overview?range=day"); strings.Contains(bob.get("/overview").body, "chart-queue-lag") {
		t.Error("a user sees the lag history")
	}
}
