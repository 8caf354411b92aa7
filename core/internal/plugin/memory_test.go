package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
)

// TestGoGuestMemoryStaysBounded: a Go guest's garbage is collected although
// the SDK yields to the runtime's goroutines only every 16th call. 5,000
// callbacks with a 16 KiB document allocate ~160 MiB in the guest, well past
// its 64 MiB limit, so without collection the instance would die.
func TestGoGuestMemoryStaysBounded(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./examples/callback"), dir, "callback.wasm")
	sink := newSink()
	h, err := New(testConfig(dir), sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())
	cb := sink.callback(t, "foo.bar.app.callback")
	doc := callbackDoc(t, 16<<10)
	for i := range 5000 {
		if err := cb(context.Background(), doc); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	v := h.entries["callback.wasm"].cur
	v.gate.idle.mu.Lock()
	defer v.gate.idle.mu.Unlock()
	if len(v.idle) != 1 {
		t.Fatalf("%d idle instances, want the one that served every call", len(v.idle))
	}
	if size := v.idle[0].mod.Memory().Size(); size > 24<<20 {
		t.Fatalf("guest memory grew to %d MiB over 5,000 calls", size>>20)
	}
}

// TestCallbackRecordAtTheInputLimit: a document that fits the input limit
// (a quarter of memory_limit_mb) alone, but not with its record, goes to
// whisperer_callback instead of failing.
func TestCallbackRecordAtTheInputLimit(t *testing.T) {
	for _, jsonOnly := range []bool{true, false} {
		dir := t.TempDir()
		copyFile(t, goWasm(t, "./examples/callback"), dir, "callback.wasm")
		cfg := testConfig(dir)
		cfg.MemoryLimitMB = 64
		cfg.jsonOnly = jsonOnly
		sink := newSink()
		h, err := New(cfg, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		cb := sink.callback(t, "foo.bar.app.callback")
		doc := callbackDoc(t, cfg.WithDefaults().maxInput()-16)
		if err := cb(context.Background(), doc); err != nil {
			t.Errorf("jsonOnly=%v: %v", jsonOnly, err)
		}
		h.Stop(context.Background())
	}
}

// TestPluginsReuseTheirInstances: the example plugins and the Go test
// guest, whose memory grows in their first calls and then stays, serve
// every call from one instance: the idle budget does not cost them a new
// instance per call.
func TestPluginsReuseTheirInstances(t *testing.T) {
	ctx := context.Background()
	countdown := func(t *testing.T, s *memSink) error {
		_, err := s.countdown(t, "custom").Value(ctx, 3, json.RawMessage(`{"factor": 5}`))
		return err
	}
	callback := func(name string) func(*testing.T, *memSink) error {
		return func(t *testing.T, s *memSink) error { return s.callback(t, name)(ctx, callbackDoc(t, 16<<10)) }
	}
	examples := filepath.Join(moduleRoot(t), "examples", "custom-countdown")
	for _, p := range []struct {
		name, wasm string
		call       func(*testing.T, *memSink) error
	}{
		{"go-countdown", goWasm(t, "./examples/custom-countdown"), countdown},
		{"go-callback", goWasm(t, "./examples/callback"), callback("foo.bar.app.callback")},
		{"go-echo", goWasm(t, "./core/internal/plugin/testdata/echo"), callback("echo")},
		{"c", filepath.Join(examples, "c", "custom.wasm"), countdown},
		{"wat", filepath.Join(examples, "wat", "custom.wasm"), countdown},
	} {
		t.Run(p.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, p.wasm, dir, "p.wasm")
			sink := newSink()
			h, _ := startHost(t, testConfig(dir), sink)
			v := h.entries["p.wasm"].cur
			idle := func() []*instance {
				v.gate.idle.mu.Lock()
				defer v.gate.idle.mu.Unlock()
				return slices.Clone(v.idle)
			}
			var first []*instance
			for i := range 200 {
				if err := p.call(t, sink); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if i == 0 {
					first = idle()
				}
			}
			if last := idle(); len(first) != 1 || len(last) != 1 || first[0] != last[0] {
				t.Fatalf("idle instances after the first call %v, after 200 calls %v: want the same one", first, last)
			}
			t.Logf("one instance served 200 calls; %d KiB of linear memory", first[0].mod.Memory().Size()>>10)
		})
	}
}

// TestIdleInstancesLeastRecentlyUsed: with room for two grown instances
// (pool_size 2 × memory_limit_mb 16), calling four files that grow to ~15
// MiB keeps the last two files' instances and closes the others'; a file
// called again reuses its own.
func TestIdleInstancesLeastRecentlyUsed(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MemoryLimitMB, cfg.PoolSize = 16, 2
	cfg.CallTimeout = 10 * time.Second // page faults on a busy machine; not what is tested
	for i := range 4 {
		copyFile(t, filepath.Join("testdata", "grow.wasm"), cfg.Dir, fmt.Sprintf("grow%d.wasm", i))
	}
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	vs := make([]*version, 4)
	call := func(i int) {
		t.Helper()
		vs[i] = h.entries[fmt.Sprintf("grow%d.wasm", i)].cur
		if v, err := sink.countdown(t, vs[i].manifest.Countdowns[0]).Value(context.Background(), 0, nil); v != 1 || err != nil {
			t.Fatalf("grow%d = %d, %v", i, v, err)
		}
	}
	idle := func() (n []int, used int64, grow2 *instance) {
		p := &h.gate.idle
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, v := range vs {
			n = append(n, len(v.idle))
		}
		if len(vs[2].idle) > 0 {
			grow2 = vs[2].idle[0]
		}
		return n, p.used, grow2
	}
	for i := range 4 {
		call(i)
	}
	n, used, kept := idle()
	if !slices.Equal(n, []int{0, 0, 1, 1}) || used > cfg.WithDefaults().idleBudget() {
		t.Fatalf("idle instances per file %v, %d bytes; want [0 0 1 1] within %d", n, used, cfg.WithDefaults().idleBudget())
	}
	call(2)
	if n, _, again := idle(); !slices.Equal(n, []int{0, 0, 1, 1}) || again != kept {
		t.Fatalf("grow2 called again: idle instances per file %v, reused %v", n, again == kept)
	}
	call(0)
	if n, _, _ := idle(); !slices.Equal(n, []int{1, 0, 1, 0}) {
		t.Fatalf("grow0 called again: idle instances per file %v, want the least recently used (grow3) closed", n)
	}
}

// TestDeepStackInstanceNotPooled: an instance whose call went past
// keepDepth (grow.wasm's validator recurses ~4 MiB deep and returns 0) is
// closed after the call, since wazero keeps the stack it grew; a shallow
// call's instance is pooled.
func TestDeepStackInstanceNotPooled(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CallTimeout = 10 * time.Second // a 4 MiB recursion under -race on a busy machine; not what is tested
	copyFile(t, filepath.Join("testdata", "grow.wasm"), cfg.Dir, "grow.wasm")
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	v := h.entries["grow.wasm"].cur
	cd := sink.countdown(t, v.manifest.Countdowns[0])
	idle := func() int {
		v.gate.idle.mu.Lock()
		defer v.gate.idle.mu.Unlock()
		return len(v.idle)
	}
	if _, _, err := cd.Validate(context.Background(), json.RawMessage(`{"deep": 1}`)); err != nil {
		t.Fatal(err)
	}
	if n := idle(); n != 0 {
		t.Fatalf("%d idle instances after a call %d KiB deep, want 0", n, 30000*frameCost(1)>>10)
	}
	if _, _, err := cd.Validate(context.Background(), json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := idle(); n != 1 {
		t.Fatalf("%d idle instances after a shallow call, want 1", n)
	}
}

// TestTransformRecordAtTheInputLimit: an input that fits the limit only
// without its transform record goes to whisperer_transform, without it.
func TestTransformRecordAtTheInputLimit(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./examples/transform"), dir, "transform.wasm")
	cfg := testConfig(dir)
	cfg.MemoryLimitMB = 64
	cfg.CallTimeout = 10 * time.Second // a 16 MiB input; the limit is not what is tested
	sink := newSink()
	startHost(t, cfg, sink)
	kwargs := json.RawMessage(`{}`)
	in := &webhook.TransformInput{EventType: "e", UUID: "u", Payload: json.RawMessage(`{"a":1}`)}
	var doc transformDoc
	buf := &inputBuf{b: doc.append(append([]byte(nil), kwargs...), in)}
	buf.index(kwargs, int(doc.spans[abi.TSpanPayload].off), len(in.Payload))
	in.Body = bytes.Repeat([]byte("x"), cfg.WithDefaults().maxInput()-16-len(buf.b))
	res, err := sink.transform(t, "chat").Apply(context.Background(), kwargs, in)
	if err != nil || string(res.Body) != `{"text":"e event u"}` {
		t.Fatalf("body %q, %v", res.Body, err)
	}
}
