package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// statsSettle is how long PostgreSQL may keep a backend's counters before
// it publishes them to pg_stat_* (PGSTAT_IDLE_INTERVAL, 10 s, in 15+): the
// tool waits this long before the first and after the last reading, so the
// deltas are the run's.
var statsSettle = 11 * time.Second

// pgCounters are the run database's cumulative statistics: transactions,
// rows read and the queue table's scans and updates. Their deltas over a
// run, divided by the events, say where the database's work goes.
type pgCounters struct {
	Xacts, TupReturned, TupFetched, BlksHit  int64
	EvIdxScan, EvIdxTupFetch, EvSeqTupRead   int64
	EvUpd, EvHotUpd                          int64
	DueIdxScan, DueIdxTupRead, AllIdxTupRead int64
}

func readPGCounters(ctx context.Context, db *bun.DB) (pgCounters, error) {
	var c pgCounters
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()),
		(SELECT tup_returned FROM pg_stat_database WHERE datname = current_database()),
		(SELECT tup_fetched FROM pg_stat_database WHERE datname = current_database()),
		(SELECT blks_hit FROM pg_stat_database WHERE datname = current_database()),
		COALESCE(t.idx_scan, 0), COALESCE(t.idx_tup_fetch, 0), t.seq_tup_read, t.n_tup_upd, t.n_tup_hot_upd,
		COALESCE((SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'webhook_events_due'), 0),
		COALESCE((SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'webhook_events_due'), 0),
		COALESCE((SELECT sum(idx_tup_read) FROM pg_stat_user_indexes), 0)::bigint
		FROM pg_stat_user_tables t WHERE t.relname = 'webhook_events'`).Scan(
		&c.Xacts, &c.TupReturned, &c.TupFetched, &c.BlksHit, &c.EvIdxScan, &c.EvIdxTupFetch, &c.EvSeqTupRead,
		&c.EvUpd, &c.EvHotUpd, &c.DueIdxScan, &c.DueIdxTupRead, &c.AllIdxTupRead)
	return c, err
}

// dbWork is the database's work per event over a run (PostgreSQL).
type dbWork struct {
	XactsPerEvent       float64 `json:"xacts_per_event"`
	RowsReadPerEvent    float64 `json:"rows_read_per_event"` // tup_returned + tup_fetched
	TupReturnedPerEvent float64 `json:"tup_returned_per_event"`
	TupFetchedPerEvent  float64 `json:"tup_fetched_per_event"`
	BlksHitPerEvent     float64 `json:"blks_hit_per_event"`
	// DueIdxScans and DueTupReadPerScan: the claim's partial index, how
	// often it was scanned and how many entries a scan read.
	DueIdxScans       int64   `json:"due_idx_scans"`
	DueTupReadPerScan float64 `json:"due_tup_read_per_scan"`
	DueTupReadPerEv   float64 `json:"due_tup_read_per_event"`
	IdxTupReadPerEv   float64 `json:"idx_tup_read_per_event"`
	// HotUpdateShare is the share of webhook_events updates that were HOT.
	Updates        int64   `json:"updates"`
	HotUpdateShare float64 `json:"hot_update_share"`
}

func (c pgCounters) per(before pgCounters, events int) dbWork {
	n := float64(max(events, 1))
	w := dbWork{
		XactsPerEvent:       float64(c.Xacts-before.Xacts) / n,
		TupReturnedPerEvent: float64(c.TupReturned-before.TupReturned) / n,
		TupFetchedPerEvent:  float64(c.TupFetched-before.TupFetched) / n,
		BlksHitPerEvent:     float64(c.BlksHit-before.BlksHit) / n,
		DueIdxScans:         c.DueIdxScan - before.DueIdxScan,
		DueTupReadPerEv:     float64(c.DueIdxTupRead-before.DueIdxTupRead) / n,
		IdxTupReadPerEv:     float64(c.AllIdxTupRead-before.AllIdxTupRead) / n,
		Updates:             c.EvUpd - before.EvUpd,
	}
	w.RowsReadPerEvent = w.TupReturnedPerEvent + w.TupFetchedPerEvent
	if w.DueIdxScans > 0 {
		w.DueTupReadPerScan = float64(c.DueIdxTupRead-before.DueIdxTupRead) / float64(w.DueIdxScans)
	}
	if w.Updates > 0 {
		w.HotUpdateShare = float64(c.EvHotUpd-before.EvHotUpd) / float64(w.Updates)
	}
	return w
}

// backendCPU follows the CPU of the PostgreSQL backends serving the run's
// database (pg_stat_activity), sampled while the run goes: a backend that
// appears during the run counts from zero, one that ends keeps its last
// reading. Unlike every postgres process on the machine, this is the run's
// own work (background writers and other users' queries excluded).
type backendCPU struct {
	mu   sync.Mutex
	base map[int]float64
	last map[int]float64
	init bool
}

func (p *backendCPU) sample(ctx context.Context, db *bun.DB) {
	var pids []int
	if err := db.NewRaw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> '"+benchApp+"'`).
		Scan(ctx, &pids); err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.base == nil {
		p.base, p.last = map[int]float64{}, map[int]float64{}
	}
	for _, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			continue
		}
		if _, ok := p.base[pid]; !ok {
			if p.init {
				p.base[pid] = 0
			} else {
				p.base[pid] = c
			}
		}
		p.last[pid] = c
	}
	p.init = true
}

func (p *backendCPU) seconds() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s float64
	for pid, c := range p.last {
		s += c - p.base[pid]
	}
	return s
}

// loadAvg is the machine's 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// benchApp names the tool's own PostgreSQL connections, so that the CPU
// of what the tool does itself (a preload, the loss check) is not counted
// as the run's.
const benchApp = "whisperer-bench"

// ownURL is url for the tool's own connections.
func ownURL(url string) string {
	if !strings.HasPrefix(url, "postgres") {
		return url
	}
	if strings.Contains(url, "?") {
		return url + "&application_name=" + benchApp
	}
	return url + "?application_name=" + benchApp
}
