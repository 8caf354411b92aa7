package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
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
	i := 0
	measure(b, func() error {
		i++
		_, err := cd.Value(ctx, i&7, kwargs)
		return err
	})
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
	measure(b, func() error { return cb(ctx, doc) })
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

// benchPayload is a payload of about 1 KiB whose "status" comes last, so
// that a filter on it reads the whole payload.
func benchPayload(b *testing.B) json.RawMessage {
	p := map[string]any{"id": 12345, "name": "package-name", "version": "1.2.3", "description": strings.Repeat("a fine package ", 30),
		"tags": []string{"alpha", "beta", "gamma"}, "owner": map[string]any{"id": 7, "email": "owner@example.com", "name": "Owner"},
		"files": []map[string]any{{"name": "a.tar.gz", "size": 1024}, {"name": "b.whl", "size": 2048}}}
	body, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	body = append(body[:len(body)-1], `,"zzz_pad":"`+strings.Repeat("x", max(0, 1000-len(body)))+`","status":"paid"}`...)
	if !json.Valid(body) || len(body) < 1000 || len(body) > 1100 {
		b.Fatalf("bench payload: %d bytes, valid %v", len(body), json.Valid(body))
	}
	return body
}

// benchFilter measures one warm filter call with a 1 KiB payload.
func benchFilter(b *testing.B, src string) {
	dir := b.TempDir()
	copyFile(b, src, dir, "filter.wasm")
	sink := newSink()
	startHost(b, benchConfig(dir), sink)
	f := sink.filter(b, "field-equals")
	ctx := context.Background()
	kwargs, payload := json.RawMessage(`{"field":"status","equals":"paid"}`), benchPayload(b)
	measure(b, func() error {
		ok, err := f.Match(ctx, kwargs, "package-created", payload)
		if err == nil && !ok {
			err = errors.New("filter skipped the event")
		}
		return err
	})
}

// measure runs call b.N times and reports the median and p99.
func measure(b *testing.B, call func() error) {
	if err := call(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, min(b.N, 1<<20))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	reportP50(b, lat)
}

func BenchmarkFilterWAT(b *testing.B) {
	benchFilter(b, filepath.Join("..", "..", "..", "examples", "filter", "field-equals.wasm"))
}

func BenchmarkFilterGo(b *testing.B) {
	benchFilter(b, goWasm(b, "./core/internal/plugin/testdata/gofilter"))
}

// benchTransform measures one warm transform call: a 1 KiB payload and
// its 1 KiB request body in, a new body out.
func benchTransform(b *testing.B, src, name string, kwargs json.RawMessage) {
	dir := b.TempDir()
	copyFile(b, src, dir, "transform.wasm")
	sink := newSink()
	startHost(b, benchConfig(dir), sink)
	tr := sink.transform(b, name)
	ctx := context.Background()
	in := benchTransformInput(b)
	measure(b, func() error {
		res, err := tr.Apply(ctx, kwargs, in)
		if err == nil && len(res.Body) == 0 && name != "keep" {
			err = errors.New("transform returned no body")
		}
		return err
	})
}

// benchTransformInput is a transform's input with a 1 KiB payload and its
// 1 KiB request body.
func benchTransformInput(b *testing.B) *webhook.TransformInput {
	payload := benchPayload(b)
	return &webhook.TransformInput{EventType: "package-created", UUID: "6f1c2a0e9b8d4c3fa1e2d3c4b5a69788", HookID: 7, RetryCount: 1,
		URL: "https://hooks.slack.example/services/T000/B000/XXXX", Headers: map[string]string{"content-type": "application/json",
			"user-agent": "whisperer", "webhook-id": "6f1c2a0e9b8d4c3fa1e2d3c4b5a69788"},
		Payload: payload, Body: append(append([]byte(`{"event":{"type":"package-created","uuid":"6f1c2a0e9b8d4c3fa1e2d3c4b5a69788"},"payload":`), payload...), '}')}
}

// chatKwargs is BenchmarkTransformGo's template: it reads three payload
// members.
var chatKwargs = json.RawMessage(`{"template":"{event_type} {payload.name} {payload.version}: {payload.status}","key":"text"}`)

// BenchmarkTransformGo is examples/transform's chat message with a
// template that reads three payload members.
func BenchmarkTransformGo(b *testing.B) {
	benchTransform(b, goWasm(b, "./examples/transform"), "chat", chatKwargs)
}

// BenchmarkTransformWAT is a WAT transform answering a fixed body and
// header (eviltransform's healthy entry): the host's share of a transform.
func BenchmarkTransformWAT(b *testing.B) {
	benchTransform(b, filepath.Join("testdata", "eviltransform.wasm"), "tjsonbody", json.RawMessage(`{}`))
}

// benchConfig is testConfig with deadlines that no loaded machine reaches:
// a benchmark measures calls, and one call descheduled past the 100 ms
// default must not abort the run (hostile_test.go tests the deadlines).
func benchConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.CallTimeout, cfg.CallbackTimeout = time.Minute, time.Minute
	return cfg
}

// BenchmarkTransformGoNoop is a Go transform that answers a fixed body:
// the SDK's and the host's share of BenchmarkTransformGo.
func BenchmarkTransformGoNoop(b *testing.B) {
	benchTransform(b, goWasm(b, "./core/internal/plugin/testdata/gofilter"), "noop", json.RawMessage(`{}`))
}

func BenchmarkTransformGoKeep(b *testing.B) {
	benchTransform(b, goWasm(b, "./core/internal/plugin/testdata/gofilter"), "keep", json.RawMessage(`{}`))
}

// BenchmarkTransformEncode is the host's side of a transform, natively:
// the input with its member index and record for a 1 KiB payload and
// body, and the decoding of a small result.
func BenchmarkTransformEncode(b *testing.B) {
	payload := benchPayload(b)
	in := &webhook.TransformInput{EventType: "package-created", UUID: "6f1c2a0e9b8d4c3fa1e2d3c4b5a69788", HookID: 7,
		URL: "https://hooks.slack.example/services/T000/B000/XXXX", Headers: map[string]string{"content-type": "application/json",
			"user-agent": "whisperer", "webhook-id": "6f1c2a0e9b8d4c3fa1e2d3c4b5a69788"},
		Payload: payload, Body: append(append([]byte(`{"payload":`), payload...), '}')}
	kwargs := json.RawMessage(`{"template":"{event_type}: {payload.status}"}`)
	result := []byte(`{"cancel":false,"body":{"text":"package-created: paid"}}`)
	b.ReportAllocs()
	for b.Loop() {
		buf := inputs.Get().(*inputBuf)
		bb := append(buf.b[:0], kwargs...)
		var doc transformDoc
		bb = doc.append(bb, in)
		bb = append(bb, in.Body...)
		buf.b = bb
		buf.index(kwargs, int(doc.spans[abi.TSpanPayload].off), len(payload))
		buf.b = doc.record(buf.b, in)
		buf.release()
		if _, err := parseTransform(result); err != nil {
			b.Fatal(err)
		}
	}
}
