package plugin

import (
	"context"
	"github.com/whisperer/whisperer/internal/testlog"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogEnabled checks the optional whisperer.log_enabled import: the
// host's answer follows its logger's level (asked per call), error is always
// enabled, a wrong signature is refused, and the Go SDK skips what the host
// would drop.
func TestLogEnabled(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "logenabled.wasm"), dir, "logenabled.wasm")
	copyFile(t, filepath.Join("testdata", "badlogenabled.wasm"), dir, "badlogenabled.wasm")
	copyFile(t, goWasm(t, "./examples/callback"), dir, "callback.wasm")
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	lb := &testlog.Buffer{}
	logger := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: &level}))
	sink := newSink()
	h, err := New(testConfig(dir), sink, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())

	if i := infoOf(t, h, "badlogenabled.wasm"); i.Loaded ||
		!strings.Contains(i.Error, "import whisperer.log_enabled has signature (i32, i32, i32) -> (), want (i32) -> (i32)") {
		t.Errorf("badlogenabled: loaded=%v error %q", i.Loaded, i.Error)
	}
	ctx := context.Background()
	lvl := sink.countdown(t, "lvl")
	check := func(want map[int]int64) {
		t.Helper()
		for l, w := range want {
			if got, err := lvl.Value(ctx, l, nil); got != w || err != nil {
				t.Errorf("host at %v: log_enabled(%d) = %d, %v; want %d", level.Level(), l, got, err, w)
			}
		}
	}
	// 0 debug, 1 info, 2 warn, 3 error; 9 is unknown, so info.
	check(map[int]int64{0: 0, 1: 0, 2: 1, 3: 1, 9: 0})
	level.Set(slog.LevelError + 4) // above error: error stays enabled
	check(map[int]int64{0: 0, 1: 0, 2: 0, 3: 1, 9: 0})
	level.Set(slog.LevelDebug)
	check(map[int]int64{0: 1, 1: 1, 2: 1, 3: 1, 9: 1})

	cb := sink.callback(t, "foo.bar.app.callback")
	doc := callbackDoc(t, 1024)
	level.Set(slog.LevelWarn)
	if err := cb(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(lb.String(), "delivery of") {
		t.Errorf("info line logged with the host at warn:\n%s", lb.String())
	}
	level.Set(slog.LevelInfo)
	if err := cb(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lb.String(), "delivery of package-created event") {
		t.Errorf("info line missing with the host at info:\n%s", lb.String())
	}
}
