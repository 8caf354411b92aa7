package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"
)

// result is one run's report.
type result struct {
	Name    string `json:"name"`
	Target  string `json:"target,omitempty"`
	Backend string `json:"backend"`
	// Floor: the run measured the floor relay (--floor), not Whisperer.
	Floor bool `json:"floor,omitempty"`
	Nodes int  `json:"nodes"`
	Hooks int  `json:"hooks"`
	// Filtered hooks refuse every event at fan-out (--filtered).
	Filtered int `json:"filtered,omitempty"`
	Events   int `json:"events"`
	// Rate is the requested publish rate (0: unpaced).
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	Preload     int     `json:"preload,omitempty"`
	// Purge is --preload-age's measurement of retention.
	Purge *purgeResult `json:"purge,omitempty"`

	PublishPerSec float64 `json:"publish_per_sec"`
	// Expected deliveries: rows of the run in the database (the rows
	// fan-out wrote).
	Expected  int `json:"expected"`
	Delivered int `json:"delivered_rows"` // rows recorded delivered
	Received  int `json:"received"`       // distinct uuids answered 2xx
	// DeliveriesPerSec is Received / (first publish → last first receipt).
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// EffectivePerSec counts the deliveries a filter settled at fan-out
	// as made: DeliveriesPerSec × hooks ÷ (hooks − filtered), the
	// event × hook pairs handled per second.
	EffectivePerSec float64 `json:"effective_deliveries_per_sec,omitempty"`
	// RecordedSec is first publish → every row reads delivered (polled).
	RecordedSec float64 `json:"recorded_sec"`
	P50MS       float64 `json:"p50_ms"`
	P90MS       float64 `json:"p90_ms"`
	P99MS       float64 `json:"p99_ms"`
	MaxMS       float64 `json:"max_ms"`
	Duplicates  int     `json:"duplicates"`
	Lost        int     `json:"lost"`
	// Unknown are receipts whose uuid is not in the database.
	Unknown        int     `json:"unknown"`
	Attempts       int64   `json:"attempts"`
	PublishRetries int64   `json:"publish_retries"`
	ServerCPUSec   float64 `json:"server_cpu_sec"`
	// ServerSwitchesPerEvent and ServerSyscallsPerEvent are the servers'
	// context switches and read/write syscalls per received event (not
	// when a node was killed: its counts start over).
	ServerSwitchesPerEvent float64 `json:"server_ctx_switches_per_event,omitempty"`
	ServerSyscallsPerEvent float64 `json:"server_rw_syscalls_per_event,omitempty"`
	// DBCPUSec is the CPU of the PostgreSQL backends serving the run's
	// database; ClusterCPUSec that of every postgres process on the
	// machine (background writers and other users included).
	DBCPUSec      float64 `json:"db_cpu_sec,omitempty"`
	ClusterCPUSec float64 `json:"pg_cluster_cpu_sec,omitempty"`
	// CPUPerDeliveryMS is (server + DBCPUSec) ÷ deliveries received.
	CPUPerDeliveryMS float64 `json:"cpu_per_delivery_ms"`
	// LoadAvg is the machine's load average (1, 5, 15 min) at the start
	// and at the end of the measured run.
	LoadAvg    string  `json:"load_avg"`
	LoadAvgEnd string  `json:"load_avg_end"`
	DB         *dbWork `json:"db,omitempty"`
	// RetryLate*: with --fail-first, how late each event's retry came
	// (second request − first request − the countdown).
	RetryLateP50MS float64 `json:"retry_late_p50_ms,omitempty"`
	RetryLateP99MS float64 `json:"retry_late_p99_ms,omitempty"`
	RetryLateMaxMS float64 `json:"retry_late_max_ms,omitempty"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	// RSSEarlyMiB and RSSLateMiB are the largest summed RSS in the second
	// fifth and the last fifth of the run: a soak's growth check.
	RSSEarlyMiB float64 `json:"rss_early_mib"`
	RSSLateMiB  float64 `json:"rss_late_mib"`
	// MinRetryGapMS is the shortest time between two attempts of one event
	// (the retry schedule; 0 when no event was retried).
	MinRetryGapMS float64  `json:"min_retry_gap_ms,omitempty"`
	Retried       int      `json:"retried,omitempty"`
	DurationSec   float64  `json:"duration_sec"`
	Notes         []string `json:"notes,omitempty"`
}

func (b *bench) measure(ctx context.Context) (*result, error) {
	o := b.o
	if b.db != nil {
		if err := b.db.NewRaw("SELECT COALESCE(MAX(id), 0) FROM webhook_events").Scan(ctx, &b.baseID); err != nil {
			return nil, err
		}
	}
	res := &result{Name: o.name, Target: o.target, Backend: o.backend, Floor: o.floor, Nodes: len(b.nodes), Hooks: o.hooks,
		Filtered: o.filtered, Events: o.events, Rate: o.rate, Concurrency: o.concurrency, Preload: o.preload}
	if o.serverURL != "" {
		res.Backend = b.dialect
	}
	cpu0 := make([]float64, len(b.nodes))
	pg0 := 0.0
	var be backendCPU
	var stats0 pgCounters
	pgStats := res.Backend == "postgres" && o.profile == ""
	if pgStats {
		// Let the warm-up's counters reach pg_stat_* first.
		select {
		case <-time.After(statsSettle):
		case <-ctx.Done():
		}
		var err error
		if stats0, err = readPGCounters(ctx, b.db); err != nil {
			pgStats = false
			b.note("PostgreSQL statistics not read: %v", err)
		}
		be.sample(ctx, b.db)
	}
	if res.Backend == "postgres" {
		pg0 = postgresCPU()
	}
	wake0 := make([]wakeCounts, len(b.nodes))
	for i, n := range b.nodes {
		if n.pid() != 0 {
			cpu0[i] = n.cpu()
			wake0[i] = procWakeCounts(n.pid())
		}
	}
	res.LoadAvg = loadAvg()
	t0 := time.Now()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); b.sampleRSS(sampleCtx, t0) }()
	if pgStats {
		sampling.Add(1)
		go func() {
			defer sampling.Done()
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					be.sample(sampleCtx, b.db)
				case <-sampleCtx.Done():
					return
				}
			}
		}()
	}
	b.armFaults(ctx, t0)

	if err := b.publish(ctx, 0, o.events, o.rate); err != nil {
		stopSampling()
		return nil, fmt.Errorf("publish: %w", err)
	}
	pubDur := time.Since(t0)
	res.PublishPerSec = float64(o.events) / pubDur.Seconds()

	recorded, err := b.waitDone(ctx)
	stopSampling()
	sampling.Wait()
	res.RecordedSec = recorded.Sub(t0).Seconds()
	res.DurationSec = time.Since(t0).Seconds()
	var wake wakeCounts
	restarted := false
	for i, n := range b.nodes {
		if n.pid() != 0 {
			n.sample()
			res.ServerCPUSec += n.cpu() - cpu0[i]
			w := procWakeCounts(n.pid())
			wake.switches += w.switches - wake0[i].switches
			wake.syscalls += w.syscalls - wake0[i].syscalls
			before, peak := n.restarts()
			restarted = restarted || before > 0
			res.PeakRSSMiB = max(res.PeakRSSMiB, float64(peak)/1024)
		}
	}
	if res.Backend == "postgres" {
		res.ClusterCPUSec = postgresCPU() - pg0
	}
	if pgStats {
		be.sample(ctx, b.db)
		res.DBCPUSec = be.seconds()
	}
	res.LoadAvgEnd = loadAvg()
	b.rssTrend(res, time.Since(t0))
	if cerr := b.check(ctx, res, t0); cerr != nil && err == nil {
		err = cerr
	}
	if o.filtered > 0 {
		res.EffectivePerSec = res.DeliveriesPerSec * float64(o.hooks) / float64(o.hooks-o.filtered)
	}
	if res.Received > 0 {
		res.CPUPerDeliveryMS = (res.ServerCPUSec + res.DBCPUSec) * 1000 / float64(res.Received)
		if !restarted && o.killAfter == 0 && o.killOneAfter == 0 {
			res.ServerSwitchesPerEvent = float64(wake.switches) / float64(res.Received)
			res.ServerSyscallsPerEvent = float64(wake.syscalls) / float64(res.Received)
		}
	}
	if pgStats {
		select {
		case <-time.After(statsSettle):
		case <-ctx.Done():
		}
		if stats1, serr := readPGCounters(ctx, b.db); serr == nil {
			w := stats1.per(stats0, res.Expected)
			res.DB = &w
		}
	}
	res.PublishRetries = b.publishRetries.Load()
	res.Notes = append(res.Notes, b.notes...)
	return res, err
}

// waitDone waits until every row of the run reads delivered and the
// receiver has seen each of them, and returns when the rows did.
func (b *bench) waitDone(ctx context.Context) (time.Time, error) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		b.mu.Lock()
		accepted := int64(len(b.pubAt))
		b.mu.Unlock()
		if b.rcv.ok.Load() >= accepted && b.db == nil {
			return time.Now(), nil // nothing is recorded
		}
		if b.rcv.ok.Load() >= accepted {
			var pending, total int64
			err := b.db.NewRaw(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN state <> 'delivered' THEN 1 ELSE 0 END), 0)
				FROM webhook_events WHERE id > ? AND webhook_id IN (?)`, b.baseID, bun.List(b.hookIDs)).Scan(ctx, &total, &pending)
			if err == nil && pending == 0 && total >= accepted {
				return time.Now(), nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return time.Now(), fmt.Errorf("not every event delivered before --timeout: %w", ctx.Err())
		}
	}
}

// check compares the receiver's uuids with the database's and computes
// the latencies.
func (b *bench) check(ctx context.Context, res *result, t0 time.Time) error {
	rows, err := b.runRows(ctx)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	seen := b.rcv.snapshot()
	inDB := make(map[string]bool, len(rows))
	res.Expected = len(rows)
	for _, r := range rows {
		inDB[r.UUID] = true
		if r.State == "delivered" {
			res.Delivered++
		}
		hits := seen[r.UUID]
		if !slices.ContainsFunc(hits, func(h hit) bool { return h.ok }) {
			res.Lost++
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lat := make([]time.Duration, 0, len(seen))
	var last time.Time
	minGap := time.Duration(-1)
	var late []time.Duration
	countdown := time.Duration(b.o.retrySeconds) * time.Second
	for id, hits := range seen {
		if !inDB[id] {
			res.Unknown++
			continue
		}
		res.Attempts += int64(len(hits))
		oks := 0
		var first time.Time
		for i, h := range hits {
			if h.ok {
				if oks == 0 {
					first = h.at
				}
				oks++
			}
			if i > 0 {
				if g := h.at.Sub(hits[i-1].at); minGap < 0 || g < minGap {
					minGap = g
				}
			}
		}
		if len(hits) > 1 && !hits[0].ok {
			res.Retried++
			late = append(late, hits[1].at.Sub(hits[0].at)-countdown)
		}
		if oks == 0 {
			continue
		}
		res.Received++
		res.Duplicates += oks - 1
		if first.After(last) {
			last = first
		}
		if at, ok := b.pubAt[id]; ok {
			lat = append(lat, first.Sub(at))
		}
	}
	if b.o.failFirst {
		slices.Sort(late)
		if len(late) > 0 {
			pct := func(p float64) float64 { return ms(late[min(len(late)-1, int(p*float64(len(late))))]) }
			res.RetryLateP50MS, res.RetryLateP99MS, res.RetryLateMaxMS = pct(0.50), pct(0.99), ms(late[len(late)-1])
		}
	}
	if minGap >= 0 && res.Retried > 0 {
		res.MinRetryGapMS = ms(minGap)
	}
	if !last.IsZero() {
		res.DeliveriesPerSec = float64(res.Received) / last.Sub(t0).Seconds()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		res.P50MS, res.P90MS, res.P99MS, res.MaxMS = pct(0.50), pct(0.90), pct(0.99), ms(lat[len(lat)-1])
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *bench) sampleRSS(ctx context.Context, t0 time.Time) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var sum int64
		for _, n := range b.nodes {
			if n.pid() != 0 {
				n.sample()
				sum += n.rssKiB()
			}
		}
		b.rssMu.Lock()
		b.rssTrace = append(b.rssTrace, rssSample{at: time.Since(t0), kib: sum})
		b.rssMu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (b *bench) rssTrend(res *result, total time.Duration) {
	b.rssMu.Lock()
	defer b.rssMu.Unlock()
	for _, s := range b.rssTrace {
		mib := float64(s.kib) / 1024
		switch f := float64(s.at) / float64(total); {
		case f >= 0.2 && f < 0.4:
			res.RSSEarlyMiB = max(res.RSSEarlyMiB, mib)
		case f >= 0.8:
			res.RSSLateMiB = max(res.RSSLateMiB, mib)
		}
	}
}

// armFaults sets up the fault injections the options ask for.
func (b *bench) armFaults(ctx context.Context, t0 time.Time) {
	o := b.o
	if o.failFirst {
		b.rcv.failFirst.Store(true)
		b.note("receiver answered 500 to each event's first request")
	}
	if o.failFor > 0 {
		b.rcv.failUntil.Store(t0.Add(o.failFor).UnixNano())
		b.note("receiver answered 500 for %s from the first publish", o.failFor)
	}
	var once sync.Once
	b.rcv.onOK = func(n int64) {
		switch {
		case o.killAfter > 0 && n == int64(o.killAfter):
			once.Do(func() { go b.killAndRestart(ctx, b.nodes[0]) })
		case o.killOneAfter > 0 && n == int64(o.killOneAfter):
			once.Do(func() {
				go func() {
					b.nodes[len(b.nodes)-1].kill()
					b.note("SIGKILLed node %d after %d deliveries; it stayed down", len(b.nodes)-1, n)
				}()
			})
		case o.pgRestartAfter > 0 && n == int64(o.pgRestartAfter):
			once.Do(func() { go b.restartPostgres(ctx, n) })
		}
	}
}

func (b *bench) killAndRestart(ctx context.Context, n *node) {
	inflight := b.rcv.ok.Load()
	n.kill()
	b.note("SIGKILLed node 0 after %d deliveries", inflight)
	select {
	case <-time.After(b.o.down):
	case <-ctx.Done():
		return
	}
	start := time.Now()
	if err := n.start(); err != nil {
		b.note("restart failed: %v", err)
		return
	}
	b.note("node 0 restarted after %s down (healthy in %s)", b.o.down, time.Since(start).Round(time.Millisecond))
}

func (b *bench) restartPostgres(ctx context.Context, n int64) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, "sh", "-c", b.o.pgRestartCmd).CombinedOutput()
	if err != nil {
		b.note("PostgreSQL restart failed: %v %s", err, out)
		return
	}
	b.note("PostgreSQL restarted after %d deliveries (took %s)", n, time.Since(start).Round(time.Millisecond))
}

func (b *bench) note(format string, args ...any) {
	b.mu.Lock()
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

// preload inserts o.preload rows for another hook: half delivered, half
// due in a day, so that the claim has to skip them.
func (b *bench) preload(ctx context.Context) error {
	hook, err := b.createHook(ctx, b.subToken, "package-created", b.rcv.url+"?preload", false)
	if err != nil {
		return err
	}
	db := b.db
	var userID int64
	if err := db.NewRaw("SELECT user_id FROM webhooks WHERE id = ?", hook).Scan(ctx, &userID); err != nil {
		return err
	}
	now := time.Now().UTC()
	var msgID int64
	if err := db.NewRaw("INSERT INTO messages (event_type, payload, created_at) VALUES ('package-created', '{}', ?) RETURNING id", now).Scan(ctx, &msgID); err != nil {
		return err
	}
	us, later := now.UnixMicro(), now.Add(24*time.Hour).UnixMicro()
	if b.dialect == "postgres" {
		_, err = db.ExecContext(ctx, `INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, delivered,
			retry_count, next_attempt_at, response_http_status, created_at, modified_at)
			SELECT md5('preload' || g), ?, ?, ?, 'package-created',
				CASE WHEN g % 2 = 0 THEN 'delivered' ELSE 'pending' END, g % 2 = 0, g % 2,
				CASE WHEN g % 2 = 0 THEN ? ELSE ? END, CASE WHEN g % 2 = 0 THEN 204 END, ?, ?
			FROM generate_series(1, ?) g`, msgID, hook, userID, us, later, now, now, b.o.preload)
		if err == nil {
			_, err = db.ExecContext(ctx, "VACUUM ANALYZE webhook_events")
		}
	} else {
		_, err = db.ExecContext(ctx, `INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, delivered,
			retry_count, next_attempt_at, response_http_status, created_at, modified_at)
			WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
			SELECT lower(hex(randomblob(16))), ?, ?, ?, 'package-created',
				CASE WHEN n % 2 = 0 THEN 'delivered' ELSE 'pending' END, n % 2 = 0, n % 2,
				CASE WHEN n % 2 = 0 THEN ? ELSE ? END, CASE WHEN n % 2 = 0 THEN 204 END, ?, ?
			FROM g`, b.o.preload, msgID, hook, userID, us, later, now, now)
		if err == nil {
			_, err = db.ExecContext(ctx, "ANALYZE")
		}
	}
	if err != nil {
		return err
	}
	b.note("%d rows preloaded (half delivered, half due in 24h)", b.o.preload)
	return nil
}

func (r *result) table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if r.Name != "" {
		row("scenario", "%s", r.Name)
	}
	if r.Floor {
		row("FLOOR", "the floor relay (whisperer-bench floor-relay), not Whisperer")
	}
	row("backend", "%s, %d node(s), %d hook(s), %d filtering every event out", r.Backend, r.Nodes, r.Hooks, r.Filtered)
	row("load average", "%s at the start, %s at the end", r.LoadAvg, r.LoadAvgEnd)
	row("events", "%d (rate %s, %d publishers, preload %d)", r.Events, rateText(r.Rate), r.Concurrency, r.Preload)
	if r.Backend == "raw" {
		row("requests/s", "%.0f", r.DeliveriesPerSec)
	} else {
		row("publish req/s", "%.0f", r.PublishPerSec)
		row("deliveries/s", "%.0f (%d received of %d rows; all recorded delivered after %.2fs)", r.DeliveriesPerSec, r.Received, r.Expected, r.RecordedSec)
		if r.Filtered > 0 {
			row("effective deliveries/s", "%.0f (event × hook pairs settled per second, filtered ones included)", r.EffectivePerSec)
		}
	}
	row("latency ms", "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f", r.P50MS, r.P90MS, r.P99MS, r.MaxMS)
	row("duplicates / lost", "%d / %d (unknown uuids %d; %d attempts; %d publish retries)", r.Duplicates, r.Lost, r.Unknown, r.Attempts, r.PublishRetries)
	if r.RetryLateMaxMS != 0 || r.RetryLateP99MS != 0 {
		row("retry lateness ms", "p50 %.1f  p99 %.1f  max %.1f (second request − first − countdown)", r.RetryLateP50MS, r.RetryLateP99MS, r.RetryLateMaxMS)
	}
	if r.Retried > 0 {
		row("retries", "%d events retried; shortest gap between attempts %.0f ms", r.Retried, r.MinRetryGapMS)
	}
	if r.Backend != "raw" {
		row("server CPU", "%.2f s (PostgreSQL: the run's backends %.2f s, every postgres process %.2f s)", r.ServerCPUSec, r.DBCPUSec, r.ClusterCPUSec)
		if r.ServerSwitchesPerEvent > 0 {
			row("server per event", "%.1f context switches, %.1f read/write syscalls", r.ServerSwitchesPerEvent, r.ServerSyscallsPerEvent)
		}
		row("CPU per delivery", "%.3f ms (server + the run's PostgreSQL backends)", r.CPUPerDeliveryMS)
		if r.DB != nil {
			row("database per event", "%.2f transactions, %.0f rows read (%.0f returned + %.0f fetched), %.0f buffer hits",
				r.DB.XactsPerEvent, r.DB.RowsReadPerEvent, r.DB.TupReturnedPerEvent, r.DB.TupFetchedPerEvent, r.DB.BlksHitPerEvent)
			row("queue table", "due index: %d scans, %.1f entries read per scan, %.1f per event; all indexes %.1f entries per event; %d updates, %.0f%% HOT",
				r.DB.DueIdxScans, r.DB.DueTupReadPerScan, r.DB.DueTupReadPerEv, r.DB.IdxTupReadPerEv, r.DB.Updates, 100*r.DB.HotUpdateShare)
		}
		if p := r.Purge; p != nil {
			row("retention purge", "%d events, %d attempts, %d messages in %.1f s: CPU %.2f s (CLI) + %.2f s (PostgreSQL) = %.3f ms per event",
				p.Events, p.Attempts, p.Messages, p.WallSec, p.CLICPU, p.DBCPU, p.CPUPerEventMS)
		}
		row("server RSS", "peak %.1f MiB (early %.1f, late %.1f)", r.PeakRSSMiB, r.RSSEarlyMiB, r.RSSLateMiB)
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	tw.Flush()
}

func rateText(r float64) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0f/s", r)
}
