package store_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// BenchmarkPacedStatements is the store's share of a delivery at a low
// rate, without the server: one publish at a time, leased as the publish
// batcher leases (one request, one hook), at STATEMENTS_RATE per second
// (default 150; 0 runs unpaced), and the results, all delivered, written
// every 25 ms as the dispatcher's linger batches them. It reports the CPU
// of the database's backends per event (read from /proc: the PostgreSQL
// server must run on this machine, else the metric is 0), the figure
// pg_stat_statements' mean times leave out (they time neither a plan's
// start-up nor the protocol nor the commit). docs/BENCHMARKS.md, "Cheaper
// statements (session 9)":
//
//	WHISPERER_TEST_POSTGRES_DSN=… go test -run '^$' -bench PacedStatements -benchtime 3000x ./core/internal/store/
func BenchmarkPacedStatements(b *testing.B) {
	storetest.RequirePostgres(b)
	rate := 150
	if v, err := strconv.Atoi(os.Getenv("STATEMENTS_RATE")); err == nil {
		rate = v
	}
	// The store's connections carry a name of their own: other tests'
	// backends may share the database.
	app := fmt.Sprintf("paced-statements-%d", time.Now().UnixNano())
	s := storetest.Open(b, storetest.URL(b, store.Postgres)+"&application_name="+app,
		store.Options{MaxOpenConns: 8, Sealer: storetest.Keyring()})
	u, _ := storetest.User(b, s, "a", webhook.RolePublisher)
	storetest.Hook(b, s, u.ID, "e", "https://a.example/")
	// The node's writer, as the dispatcher's: results linger 25 ms.
	var mu sync.Mutex
	var pending []webhook.Result
	var first time.Time
	flush := func(force bool) {
		mu.Lock()
		rs := pending
		if len(rs) == 0 || !force && time.Since(first) < 25*time.Millisecond {
			mu.Unlock()
			return
		}
		pending = nil
		mu.Unlock()
		if err := s.Complete(ctx, rs); err != nil {
			b.Error(err)
		}
	}
	done, flushed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flushed)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		analyze := time.NewTicker(store.AnalyzeEvery) // as the server does
		defer analyze.Stop()
		for {
			select {
			case <-done:
				flush(true)
				return
			case <-analyze.C:
				_, _ = s.AnalyzeGrown(ctx)
			case <-tick.C:
				flush(false)
			}
		}
	}()
	publish := func(n int, pace time.Duration) {
		start := time.Now()
		for i := range n {
			if d := time.Until(start.Add(time.Duration(i) * pace)); pace > 0 && d > 0 {
				time.Sleep(d)
			}
			req := webhook.PublishRequest{EventType: "e", PublisherID: u.ID,
				Payload: json.RawMessage(fmt.Sprintf(`{"n": %d, "name": "order.created", "amount": 1250}`, i))}
			res, errs := s.PublishLeased(ctx, []webhook.PublishRequest{req}, webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: 64})
			if errs[0] != nil {
				b.Fatal(errs[0])
			}
			now := time.Now()
			mu.Lock()
			for _, j := range res[0].Jobs {
				if len(pending) == 0 {
					first = now
				}
				pending = append(pending, webhook.Result{EventID: j.Event.ID, Lease: j.Lease, WebhookID: j.Webhook.ID, RetryCount: 1,
					State: webhook.StateDelivered, Attempt: webhook.Attempt{AttemptedAt: now, Duration: 800 * time.Microsecond, Status: 204}})
			}
			mu.Unlock()
		}
	}
	publish(200, 0) // warm-up: connections, prepared statements
	time.Sleep(50 * time.Millisecond)
	if _, err := s.AnalyzeGrown(ctx); err != nil {
		b.Fatal(err)
	}
	pace := time.Duration(0)
	if rate > 0 {
		pace = time.Second / time.Duration(rate)
	}
	cpu0 := backendsCPU(b, s, app)
	b.ResetTimer()
	publish(b.N, pace)
	time.Sleep(50 * time.Millisecond) // the last results' linger
	cpu1 := backendsCPU(b, s, app)
	b.StopTimer()
	close(done)
	<-flushed
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "backend-µs/event")
}

// backendsCPU is the CPU time the backends named app (the store's pool,
// the one asking included) have used, from /proc; 0 when PostgreSQL runs
// elsewhere.
func backendsCPU(b *testing.B, s *store.Store, app string) time.Duration {
	rows, err := s.DB().QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = ?`, app)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var sum time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// utime and stime, the 14th and 15th fields, in clock ticks (1/100 s).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		for _, v := range f[11:13] {
			t, _ := strconv.ParseInt(v, 10, 64)
			sum += time.Duration(t) * 10 * time.Millisecond
		}
	}
	return sum
}
