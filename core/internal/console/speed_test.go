package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// pageBudget is the server time every console page must stay within with
// a million events in the database.
const pageBudget = 50 * time.Millisecond

// speedEvents is how many events TestPageSpeed inserts.
const speedEvents = 1_000_000

// TestPageSpeed times every console page's handler (the node's whole
// HTTP handler, in process: server time, no network) on a database of a
// million events, for an admin (everyone's rows) and a user (half of
// them), on SQLite and, with WHISPERER_TEST_POSTGRES=1, PostgreSQL. Each
// page runs 3 times to warm up, then 15; the median must be within
// pageBudget. It runs only with WHISPERER_BENCH_CONSOLE=1 (both
// backends, PostgreSQL with WHISPERER_TEST_POSTGRES=1), =sqlite or
// =postgres: the insert takes a while. docs/BENCHMARKS.md has the figures.
func TestPageSpeed(t *testing.T) {
	backends := []string{store.SQLite}
	switch os.Getenv("WHISPERER_BENCH_CONSOLE") {
	case "1":
		if os.Getenv("WHISPERER_TEST_POSTGRES") == "1" {
			backends = append(backends, store.Postgres)
		}
	case store.SQLite, store.Postgres: // one of them
		backends = []string{os.Getenv("WHISPERER_BENCH_CONSOLE")}
	default:
		t.Skip("WHISPERER_BENCH_CONSOLE=1 (or sqlite, postgres) times the console's pages on a million events")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { pageSpeed(t, backend) })
	}
}

func pageSpeed(t *testing.T, backend string) {
	n := startNode(t, func(cfg *config.Config) {
		cfg.Database.URL = storetest.URL(t, backend)
		cfg.Security.EncryptionKeys = []string{storetest.Key}
	})
	ctx := context.Background()
	// Ten hooks, five each for alice and bob, on two event types.
	types := []string{"order.created", "payment.succeeded"}
	var hookCase, userCase, typeCase strings.Builder
	var hooks []int64
	for i := range 10 {
		user := n.alice.ID
		if i%2 == 1 {
			user = n.bob.ID
		}
		h := storetest.Hook(t, n.Store, user, types[i%2], fmt.Sprintf("https://receiver-%d.example/hooks", i))
		hooks = append(hooks, h.ID)
		fmt.Fprintf(&hookCase, " WHEN %d THEN %d", i, h.ID)
		fmt.Fprintf(&userCase, " WHEN %d THEN %d", i, user)
		fmt.Fprintf(&typeCase, " WHEN %d THEN '%s'", i, types[i%2])
	}
	cs := func(b strings.Builder) string { return "CASE x % 10" + b.String() + " END" }
	// Two events a second, the newest now: about six days.
	now := time.Now().Unix()
	base := now - speedEvents/2
	due := time.Now().Add(24 * time.Hour).UnixMicro() // pending rows: not due during the test
	series := fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) ", speedEvents)
	from := "c"
	stamp := fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S', %d + x/2, 'unixepoch') || '+00:00'", base) // bun's text form
	uuid := "printf('%032x', x)"
	if backend == store.Postgres {
		series, from = "", fmt.Sprintf("generate_series(1, %d) AS x", speedEvents)
		stamp = fmt.Sprintf("to_timestamp(%d + x/2)", base)
		uuid = "lpad(to_hex(x), 32, '0')"
	}
	mod := "(x % 100)"
	stmts := []string{
		series + fmt.Sprintf(`INSERT INTO messages (id, event_type, payload, created_at) SELECT x, %s, '{"order_id": ' || x || ', "total": 42.5, "currency": "EUR"}', %s FROM %s`,
			cs(typeCase), stamp, from),
		series + fmt.Sprintf(`INSERT INTO webhook_events (id, uuid, message_id, webhook_id, user_id, event_type, state, delivered, retry_count, retry_base,
			next_attempt_at, response_http_status, created_at, modified_at)
			SELECT x, %s, x, %s, %s, %s,
			CASE WHEN %[7]s < 90 THEN 'delivered' WHEN %[7]s < 95 THEN 'given_up' ELSE 'pending' END,
			%[7]s < 90,
			CASE WHEN %[7]s < 90 THEN 1 WHEN %[7]s < 95 THEN 18 WHEN %[7]s < 99 THEN 3 ELSE 0 END, 0, %[8]d,
			CASE WHEN %[7]s < 90 THEN 200 WHEN %[7]s < 99 THEN 500 END, %[5]s, %[5]s FROM %[6]s`,
			uuid, cs(hookCase), cs(userCase), cs(typeCase), stamp, from, mod, due),
		`INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
			SELECT id, created_at, 12000, COALESCE(response_http_status, 0), CASE WHEN delivered THEN 'ok' ELSE 'database timeout' END,
			CASE WHEN delivered THEN '' ELSE 'status 500' END FROM webhook_events`,
	}
	if backend == store.Postgres {
		stmts = append(stmts, "SELECT setval('messages_id_seq', (SELECT max(id) FROM messages))",
			"SELECT setval('webhook_events_id_seq', (SELECT max(id) FROM webhook_events))", "ANALYZE")
	}
	start := time.Now()
	for _, s := range stmts {
		if _, err := n.Store.DB().ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s[:min(len(s), 80)], err)
		}
	}
	// A day of rollups for the overview, and of the queue's lag samples
	// (user 0's rows).
	for m := now/60 - 1439; m <= now/60; m++ {
		for _, u := range []int64{n.alice.ID, n.bob.ID, 0} {
			if _, err := n.Store.DB().ExecContext(ctx, `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up, queue_lag_us)
				VALUES (?, ?, 700, 630, 65, 5, ?) ON CONFLICT (user_id, minute) DO NOTHING`, u, m, m%60*1e6); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%s: inserted %d events, %d messages, %d attempts in %s", backend, speedEvents, speedEvents, speedEvents, time.Since(start).Round(time.Millisecond))

	middle := strconv.Itoa(speedEvents / 2)
	hour := func(d time.Duration) string {
		return url.QueryEscape(time.Unix(now, 0).UTC().Add(-d).Format("2006-01-02T15:04"))
	}
	pages := []string{
		"/overview", "/overview?range=day",
		"/hooks", "/hooks?event_type=order.created&active=yes", "/hooks/" + strconv.FormatInt(hooks[0], 10),
		"/events", "/events?before=" + middle, "/events?after=" + middle,
		"/events?view=undelivered", "/events?view=undelivered&before=" + middle,
		"/events?state=given_up", "/events?state=failed", "/events?state=pending", "/events?state=delivered",
		"/events?event_type=payment.succeeded", "/events?hook=" + strconv.FormatInt(hooks[2], 10),
		"/events?since=" + hour(48*time.Hour) + "&until=" + hour(47*time.Hour),
		"/events?view=undelivered&since=" + hour(72*time.Hour) + "&until=" + hour(71*time.Hour),
		"/events?uuid=" + fmt.Sprintf("%032x", speedEvents/2),
		"/events?state=given_up&event_type=order.created&hook=" + strconv.FormatInt(hooks[0], 10) + "&since=" + hour(100*time.Hour),
		"/events/" + middle, "/events/" + middle + "/redeliver",
		"/events/redeliver-failed?since=" + hour(time.Hour),
		"/events/redeliver-failed?since=" + hour(24*time.Hour),
		"/events/redeliver-failed?since=" + hour(7*24*time.Hour),
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n| page (%s, %d events) | admin median | admin max | alice median | alice max |\n|---|---|---|---|---|\n", backend, speedEvents)
	cookies := map[string]string{"admin": sessionCookie(t, n, n.rootKey), "alice": sessionCookie(t, n, n.aliceKey)}
	for _, p := range pages {
		fmt.Fprintf(&report, "| `%s` |", p)
		for _, who := range []string{"admin", "alice"} {
			med, worst := timePage(t, n, cookies[who], p)
			fmt.Fprintf(&report, " %.1f ms | %.1f ms |", ms(med), ms(worst))
			if med > pageBudget {
				t.Errorf("%s GET %s: median %s, over %s", who, p, med, pageBudget)
			}
		}
		report.WriteString("\n")
	}
	t.Log(report.String())
	explainSlow(t, n, backend, hour, hooks[2])
}

// explainSlow logs the plans of the query shapes a big table makes
// sensitive to the planner's choice (docs/BENCHMARKS.md says which): a
// user's list by event type or time range, an admin's past hour (bare, as
// a planner sees it, and the id window read the store narrows it with),
// a hook's list, every filter at once, and the bounded count of failed
// events in a range.
func explainSlow(t *testing.T, n *node, backend string, hour func(time.Duration) string, hook int64) {
	since, _ := url.QueryUnescape(hour(48 * time.Hour))
	ts := strings.Replace(since, "T", " ", 1) + ":00+00:00"
	explain := "EXPLAIN QUERY PLAN "
	if backend == store.Postgres {
		explain = "EXPLAIN (ANALYZE, COSTS OFF) "
	}
	until, _ := url.QueryUnescape(hour(47 * time.Hour))
	te := strings.Replace(until, "T", " ", 1) + ":00+00:00"
	failed := "(state = 'given_up' OR (state = 'pending' AND retry_count > retry_base)) AND (state = 'given_up' OR (state = 'pending' AND retry_count > retry_base AND lease_owner IS NULL))"
	for _, q := range []string{
		fmt.Sprintf("SELECT e.id FROM webhook_events AS e WHERE e.user_id = %d AND e.event_type = 'payment.succeeded' ORDER BY e.id DESC LIMIT 51", n.alice.ID),
		fmt.Sprintf("SELECT e.id FROM webhook_events AS e WHERE e.user_id = %d AND e.created_at >= '%s' AND e.created_at < '%s' ORDER BY e.id DESC LIMIT 51", n.alice.ID, ts, te),
		fmt.Sprintf("SELECT e.id FROM webhook_events AS e WHERE e.created_at >= '%s' AND e.created_at < '%s' ORDER BY e.id DESC LIMIT 51", ts, te),
		fmt.Sprintf("SELECT count(*), min(id), max(id) FROM (SELECT e.id FROM webhook_events AS e WHERE e.created_at >= '%s' AND e.created_at < '%s' LIMIT 10001) AS w", ts, te),
		fmt.Sprintf("SELECT e.id FROM webhook_events AS e WHERE e.webhook_id = %d ORDER BY e.id DESC LIMIT 51", hook),
		fmt.Sprintf("SELECT e.id FROM webhook_events AS e WHERE e.user_id = %d AND e.event_type = 'order.created' AND e.webhook_id = %d AND e.state = 'given_up' AND e.created_at >= '%s' ORDER BY e.id DESC LIMIT 51", n.alice.ID, hook, ts),
		fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM webhook_events WHERE created_at >= '%s' AND %s LIMIT 10000) AS c", ts, failed),
		fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM webhook_events WHERE created_at >= '%s' AND %s AND +user_id = %d LIMIT 10000) AS c", ts, failed, n.alice.ID),
	} {
		rows, err := n.Store.DB().QueryContext(context.Background(), explain+q)
		if err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
		}
		rows.Close()
		t.Logf("%s\n  %s", q, strings.Join(plan, "\n  "))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sessionCookie signs in with key and returns the session cookie.
func sessionCookie(t *testing.T, n *node, key string) string {
	b := n.browser(t)
	b.signIn(key)
	u, _ := url.Parse(n.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "whisperer_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// timePage serves GET path through the node's handler 3 times to warm
// up, then 15 times, and returns the median and the slowest.
func timePage(t *testing.T, n *node, cookie, path string) (median, worst time.Duration) {
	t.Helper()
	var times []time.Duration
	for i := range 18 {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		start := time.Now()
		n.Handler.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body.String()[:min(rec.Body.Len(), 500)])
		}
		if i >= 3 {
			times = append(times, d)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], times[len(times)-1]
}
