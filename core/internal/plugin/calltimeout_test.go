package plugin

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"
)

// TestHugeCallTimeout: a call_timeout as long as a time.Duration
// holds (2562047h, "no limit" to an operator) must not halt a 200ms call:
// the deadline, the call's start plus the limit, must not wrap around.
func TestHugeCallTimeout(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "slow1.wasm")
	cfg := testConfig(dir)
	cfg.CallTimeout = math.MaxInt64
	cfg.CallbackTimeout = time.Second
	sink := newSink()
	startHost(t, cfg, sink)
	if _, err := sink.countdown(t, "slow").Value(context.Background(), 0, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("call_timeout %v: %v", cfg.CallTimeout, err)
	}
}
