package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"

	"github.com/uptrace/bun"
)

// startFloor starts the floor relay (relay.go) in place of the servers:
// this binary again, as `whisperer-bench floor-relay`, so that it is a
// process of its own whose CPU, context switches and syscalls are read
// from /proc like a server's, and whose PostgreSQL backends are the run
// database's like a server's. It has one hook, id 1, to the receiver;
// --env applies to it as to a server (e.g. GOMAXPROCS).
func (b *bench) startFloor() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	b.pubToken = hex.EncodeToString(tok[:])
	b.eventType, b.hookIDs = "bench-floor", []int64{1}
	args := []string{"floor-relay", "--db", b.dbURL, "--target", b.rcv.url + "?h=0",
		"--retry", (time.Duration(b.o.retrySeconds) * time.Second).String(), "--timeout", "2s"}
	n, err := startNode(exe, args, b.dir, append(append(os.Environ(), b.o.env...), "WB_FLOOR_TOKEN="+b.pubToken), 0)
	if err != nil {
		return err
	}
	b.nodes = append(b.nodes, n)
	b.note("floor relay (whisperer-bench floor-relay, database %s), not Whisperer", b.o.backend)
	return nil
}

// runRow is one event row of the run.
type runRow struct {
	UUID  string `bun:"uuid"`
	State string `bun:"state"`
}

// runRows reads the run's rows; with no database (the floor's none) they
// are the events the publishes were answered for, none recorded.
func (b *bench) runRows(ctx context.Context) ([]runRow, error) {
	var rows []runRow
	if b.db == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		for id := range b.pubAt {
			rows = append(rows, runRow{UUID: id})
		}
		return rows, nil
	}
	err := b.db.NewRaw("SELECT uuid, state FROM webhook_events WHERE id > ? AND webhook_id IN (?)", b.baseID, bun.List(b.hookIDs)).Scan(ctx, &rows)
	return rows, err
}
