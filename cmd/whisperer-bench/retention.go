package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// purgeResult is what --purge measures: `whisperer retention purge` run
// by hand over the aged preload after the measured run, its CPU and that
// of the PostgreSQL backends serving it, per deleted event — to set
// against the run's CPU per delivery (docs/SCALING.md).
type purgeResult struct {
	Events   int64   `json:"events"`
	Attempts int64   `json:"attempts"`
	Messages int64   `json:"messages"`
	WallSec  float64 `json:"wall_sec"`
	CLICPU   float64 `json:"cli_cpu_sec"`
	DBCPU    float64 `json:"db_cpu_sec"`
	// CPUPerEventMS is (CLI + database) CPU ÷ events deleted.
	CPUPerEventMS float64 `json:"cpu_per_event_ms"`
}

// preloadAged inserts o.preload delivered events created o.preloadAge
// ago, each with its own message and one attempt, as a month of traffic
// leaves them for retention to delete. PostgreSQL only.
func (b *bench) preloadAged(ctx context.Context) error {
	if b.dialect != "postgres" {
		return errors.New("--preload-age needs --backend postgres")
	}
	hook, err := b.createHook(ctx, b.subToken, "package-created", b.rcv.url+"?preload", false)
	if err != nil {
		return err
	}
	var userID int64
	if err := b.db.NewRaw("SELECT user_id FROM webhooks WHERE id = ?", hook).Scan(ctx, &userID); err != nil {
		return err
	}
	at := time.Now().UTC().Add(-b.o.preloadAge)
	us := at.UnixMicro()
	payload := `{"id": "evt_0000000000", "type": "package-created", "data": {"tracking": "1Z999AA10123456784", "weight_kg": 2.5}}`
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO messages (event_type, payload, created_at)
			SELECT 'package-created', ?, ? FROM generate_series(1, ?)`, []any{payload, at, b.o.preload}},
		{`INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, delivered,
			retry_count, next_attempt_at, response_http_status, created_at, modified_at)
			SELECT md5('aged' || m.id), m.id, ?, ?, 'package-created', 'delivered', true, 0, ?, 204, m.created_at, m.created_at
			FROM messages m WHERE m.event_type = 'package-created' AND m.created_at = ?`, []any{hook, userID, us, at}},
		{`INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body)
			SELECT id, created_at, 1500, 204, '' FROM webhook_events WHERE webhook_id = ?`, []any{hook}},
		{`VACUUM ANALYZE`, nil},
	} {
		if _, err := b.db.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("%.40s: %w", st.q, err)
		}
	}
	b.note("%d delivered events preloaded, created %s ago, each with a message and an attempt", b.o.preload, b.o.preloadAge)
	return nil
}

var purgedLine = regexp.MustCompile(`deleted (\d+) delivered event\(s\), (\d+) attempt\(s\) and (\d+) message\(s\)`)

// purge runs `whisperer retention purge --days 1` against the run's
// database (the servers' own retention is off: --preload-age turns it off)
// and measures it.
func (b *bench) purge(ctx context.Context) (*purgeResult, error) {
	var pg backendCPU
	pg.sample(ctx, b.db)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				pg.sample(ctx, b.db)
			}
		}
	}()
	cmd := exec.CommandContext(ctx, b.o.bin, "retention", "purge", "--days", "1")
	cmd.Env = b.cliEnv
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	close(stop)
	<-done
	if err != nil {
		return nil, fmt.Errorf("retention purge: %v\n%s", err, out)
	}
	m := purgedLine.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("retention purge: unexpected output %q", out)
	}
	r := &purgeResult{WallSec: wall.Seconds(), DBCPU: pg.seconds(),
		CLICPU: (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()}
	r.Events, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.Attempts, _ = strconv.ParseInt(string(m[2]), 10, 64)
	r.Messages, _ = strconv.ParseInt(string(m[3]), 10, 64)
	if r.Events > 0 {
		r.CPUPerEventMS = (r.CLICPU + r.DBCPU) * 1000 / float64(r.Events)
	}
	return r, nil
}
