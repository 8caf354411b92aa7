//go:build tracehook

package main

import (
	"os"
	"runtime/trace"
	"strconv"
	"time"
)

// Built only with -tags tracehook, for measuring (docs/BENCHMARKS.md,
// "Fewer wake-ups per event"): WHISPERER_BENCH_TRACE=FILE writes an execution
// trace (go tool trace) of WHISPERER_BENCH_TRACE_FOR seconds (default 3),
// starting WHISPERER_BENCH_TRACE_AFTER seconds after the process starts, so
// that a load tool's warm-up is left out.
func init() {
	path := os.Getenv("WHISPERER_BENCH_TRACE")
	if path == "" {
		return
	}
	after, _ := strconv.Atoi(os.Getenv("WHISPERER_BENCH_TRACE_AFTER"))
	span, err := strconv.Atoi(os.Getenv("WHISPERER_BENCH_TRACE_FOR"))
	if err != nil || span <= 0 {
		span = 3
	}
	go func() {
		time.Sleep(time.Duration(after) * time.Second)
		f, err := os.Create(path)
		if err != nil {
			return
		}
		defer f.Close()
		if trace.Start(f) != nil {
			return
		}
		time.Sleep(time.Duration(span) * time.Second)
		trace.Stop()
	}()
}
