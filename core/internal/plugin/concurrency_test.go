package plugin

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestConcurrentCalls has many goroutines call the same plugins at once
// (run with -race): every call gets its own instance for its duration.
func TestConcurrentCalls(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./examples/custom-countdown"), dir, "custom-countdown.wasm")
	copyFile(t, goWasm(t, "./examples/callback"), dir, "callback.wasm")
	copyFile(t, filepath.Join("testdata", "noisy.wasm"), dir, "noisy.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	// This test is about sharing, not speed: 32 goroutines on a small,
	// race-instrumented machine may wait long for a CPU.
	cfg.CallTimeout, cfg.CallbackTimeout = 5*time.Second, 5*time.Second
	h, _ := startHost(t, cfg, sink)
	ctx := context.Background()
	cd := sink.countdown(t, "custom")
	cb := sink.callback(t, "foo.bar.app.callback")
	noisy := sink.callback(t, "noisy")
	doc := callbackDoc(t, 1024)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				retry := g + i
				want := int64(3 * retry)
				if retry%2 == 0 {
					want *= 2
				}
				v, err := cd.Value(ctx, retry, json.RawMessage(`{"factor":3}`))
				if err == nil && v != want {
					t.Errorf("custom(%d) = %d, want %d", retry, v, want)
				}
				if err == nil {
					_, _, err = cd.Validate(ctx, json.RawMessage(`{"factor":3}`))
				}
				if err == nil {
					err = cb(ctx, doc)
				}
				if err == nil && i%10 == 0 {
					err = noisy(ctx, &webhook.CallbackDoc{})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Plugins may be listed while calls run.
	for range 10 {
		_ = h.Plugins()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
