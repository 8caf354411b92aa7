package plugin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// benchCountdown measures one warm countdown call through the host and
// reports the median alongside the mean.
func benchCountdown(b *testing.B, src string) {
	dir := b.TempDir()
	copyFile(b, src, dir, "custom.wasm")
	sink := newSink()
	startHost(b, benchConfig(dir), sink)
	cd := sink.countdown(b, "custom")
	ctx := context.Background()
	kwargs := json.RawMessage(`{"factor": 5}`)
	if _, err := cd.Value(ctx, 1, kwargs); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, min(b.N, 1<<20))
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := cd.Value(ctx, i&7, kwargs); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	reportP50(b, lat)
}

func reportP50(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}

func BenchmarkCountdownGo(b *testing.B) { benchCountdown(b, goWasm(b, "./examples/custom-countdown")) }

func BenchmarkCountdownWAT(b *testing.B) {
	benchCountdown(b, filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm"))
}

func BenchmarkCountdownC(b *testing.B) {
	benchCountdown(b, filepath.Join("..", "..", "..", "examples", "custom-countdown", "c", "custom.wasm"))
}

// BenchmarkCallbackGo is a callback round trip with a 1 KiB document; the
// host logs at info, so the example's info line is formatted and logged.
func BenchmarkCallbackGo(b *testing.B) { benchCallback(b, slog.LevelInfo) }

// BenchmarkCallbackGoWarnLog is the same with the host logging at warn: the
// SDK asks whisperer.log_enabled and skips formatting the info line.
func BenchmarkCallbackGoWarnLog(b *testing.B) { benchCallback(b, slog.LevelWarn) }

func benchCallback(b *testing.B, level slog.Level) {
	dir := b.TempDir()
	copyFile(b, goWasm(b, "./examples/callback"), dir, "callback.wasm")
	sink := newSink()
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))
	h, err := New(benchConfig(dir), sink, logger)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Stop(context.Background()) })
	cb := sink.callback(b, "foo.bar.app.callback")
	ctx := context.Background()
	doc := callbackDoc(b, 1024)
	lat := make([]time.Duration, 0, min(b.N, 1<<20))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := cb(ctx, doc); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	reportP50(b, lat)
}

// BenchmarkHostStart starts a host over the two Go examples with a warm
// compilation cache: what a server restart costs.
func BenchmarkHostStart(b *testing.B) {
	dir := b.TempDir()
	copyFile(b, goWasm(b, "./examples/custom-countdown"), dir, "custom-countdown.wasm")
	copyFile(b, goWasm(b, "./examples/callback"), dir, "callback.wasm")
	cfg := benchConfig(dir)
	ctx := context.Background()
	start := func() {
		h, err := New(cfg, newSink(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if len(h.Plugins()) != 2 || !h.Plugins()[0].Loaded || !h.Plugins()[1].Loaded {
			b.Fatalf("not loaded: %+v", h.Plugins())
		}
		if err := h.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	start() // warm the cache
	b.ResetTimer()
	for range b.N {
		start()
	}
}

// BenchmarkCallbackEncode is the host's side of a callback: the 1 KiB
// document and its record, written natively.
func BenchmarkCallbackEncode(b *testing.B) {
	doc := callbackDoc(b, 1024)
	doc.Response.Headers = map[string]string{"content-type": "application/json", "date": "Fri, 27 Nov 2026 12:00:00 GMT",
		"content-length": "812", "server": "nginx", "x-request-id": "4f1c2a0e9b8d"}
	b.ReportAllocs()
	for b.Loop() {
		e := encoders.Get().(*callbackEncoder)
		if _, err := e.encode(doc, true); err != nil {
			b.Fatal(err)
		}
		e.release()
	}
}

// benchConfig is testConfig with deadlines that no loaded machine reaches:
// a benchmark measures calls, and one call descheduled past the 100 ms
// default must not abort the run (hostile_test.go tests the deadlines).
func benchConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.CallTimeout, cfg.CallbackTimeout = time.Minute, time.Minute
	return cfg
}
