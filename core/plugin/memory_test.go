package plugin

import (
	"context"
	"io"
	"log/slog"
	"testing"
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
	defer h.Close(context.Background())
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
		h.Close(context.Background())
	}
}
