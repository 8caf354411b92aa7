package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// TestMain lets the test binary be the floor relay too: --floor starts
// os.Executable() with floor-relay, which in a test is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "floor-relay" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestFloor runs the floor scenario end to end on each database: every
// event published is received once and, with a database, recorded
// delivered; with --fail-first each is received twice, the retry after
// the countdown; a relay SIGKILLed and restarted loses nothing.
func TestFloor(t *testing.T) {
	cases := []struct {
		backend string
		extra   []string
	}{
		{"none", nil},
		{"sqlite", nil},
		{"sqlite", []string{"--fail-first", "--retry-seconds", "1"}},
		{"sqlite", []string{"--kill-after", "20", "--down", "100ms"}},
		{"postgres", nil},
		{"postgres", []string{"--kill-after", "20", "--down", "100ms"}},
	}
	settle := statsSettle
	statsSettle = 0 // the counters' deltas are not checked here
	t.Cleanup(func() {
		statsSettle = settle
		for _, drop := range dropAtExit { // main drops them at exit
			drop()
		}
		dropAtExit = nil
	})
	for _, c := range cases {
		t.Run(c.backend, func(t *testing.T) {
			args := []string{"--floor", "--backend", c.backend, "--events", "40", "-c", "4", "--warmup", "10", "--json", "--timeout", "30s"}
			if c.backend == "postgres" {
				if os.Getenv("WHISPERER_TEST_POSTGRES") == "" {
					t.Skip("set WHISPERER_TEST_POSTGRES=1 (and WHISPERER_TEST_POSTGRES_DSN) to run against PostgreSQL")
				}
				if dsn := os.Getenv("WHISPERER_TEST_POSTGRES_DSN"); dsn != "" {
					args = append(args, "--postgres", dsn)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, append(args, c.extra...), &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			var r result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			killed := slices.Contains(c.extra, "--kill-after")
			// A publish whose answer the kill swallowed is published again
			// (more rows), and what the killed relay had sent but not
			// recorded is sent again (duplicates; unknown uuids when they
			// are the warm-up's): at least once.
			if !r.Floor || r.Lost != 0 || r.Received != r.Expected || r.Received < 40 ||
				(!killed && (r.Received != 40 || r.Duplicates != 0 || r.Unknown != 0)) || r.Unknown > 10 {
				t.Fatalf("floor=%v %d rows, received %d, lost %d, duplicates %d, unknown %d; want 40 received once each",
					r.Floor, r.Expected, r.Received, r.Lost, r.Duplicates, r.Unknown)
			}
			// Its CPU is counted in 10 ms ticks, too coarse for 40 events;
			// the kernel's counts show the relay's process was the one read
			// (not after a restart: its counts start over).
			if !killed && (r.ServerSwitchesPerEvent <= 0 || r.ServerSyscallsPerEvent <= 0) {
				t.Fatalf("the relay's switches (%v) and syscalls (%v per event) were not measured", r.ServerSwitchesPerEvent, r.ServerSyscallsPerEvent)
			}
			if c.backend != "none" && r.Delivered != r.Expected {
				t.Fatalf("%d rows, %d recorded delivered", r.Expected, r.Delivered)
			}
			if slices.Contains(c.extra, "--fail-first") && (r.Attempts != 80 || r.Retried != 40 || r.MinRetryGapMS < 1000) {
				t.Fatalf("--fail-first: %d attempts, %d retried, shortest gap %v ms; want 80, 40, ≥ 1000", r.Attempts, r.Retried, r.MinRetryGapMS)
			}
		})
	}
}
