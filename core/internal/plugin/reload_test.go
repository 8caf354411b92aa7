package plugin

import (
	"context"
	"encoding/json"
	"github.com/whisperer/whisperer/internal/poll"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReloadWatchesTheDirectory(t *testing.T) {
	dir := t.TempDir()
	sink := newSink()
	cfg := testConfig(dir)
	cfg.PollInterval = 20 * time.Millisecond
	h, _ := startHost(t, cfg, sink)
	ctx := context.Background()
	wat := filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm")
	c := filepath.Join("..", "..", "..", "examples", "custom-countdown", "c", "custom.wasm")

	// Added.
	copyFile(t, wat, dir, "custom.wasm")
	poll.Until(t, 10*time.Second, "custom to register", func() bool { return sink.has("cd", "custom") })
	first := infoOf(t, h, "custom.wasm")
	if first.Name != "custom-countdown-wat" || !first.Loaded {
		t.Fatalf("info after add: %+v", first)
	}

	// Changed.
	copyFile(t, c, dir, "custom.wasm")
	poll.Until(t, 10*time.Second, "the C version to replace the WAT one", func() bool {
		return infoOf(t, h, "custom.wasm").Name == "custom-countdown-c"
	})
	if v, err := sink.countdown(t, "custom").Value(ctx, 2, json.RawMessage(`{"factor":"5"}`)); v != 20 || err != nil {
		t.Fatalf("C version: %d, %v", v, err) // only the C version accepts "5"
	}

	// Changed into garbage: the previous version keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "custom.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the broken change to be reported", func() bool {
		return strings.Contains(infoOf(t, h, "custom.wasm").Error, "still serving the previous version")
	})
	if i := infoOf(t, h, "custom.wasm"); !i.Loaded || !strings.Contains(i.Error, "not a valid WebAssembly module") {
		t.Fatalf("info after broken change: %+v", i)
	}
	if v, err := sink.countdown(t, "custom").Value(ctx, 1, json.RawMessage(`{"factor":5}`)); v != 5 || err != nil {
		t.Fatalf("previous version after a broken change: %d, %v", v, err)
	}

	// Removed.
	if err := os.Remove(filepath.Join(dir, "custom.wasm")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "custom to unregister", func() bool { return !sink.has("cd", "custom") })
	if len(h.Plugins()) != 0 {
		t.Fatalf("plugins after remove: %+v", h.Plugins())
	}
}

func TestReloadResolvesDuplicates(t *testing.T) {
	dir := t.TempDir()
	wat := filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm")
	copyFile(t, wat, dir, "a.wasm")
	copyFile(t, filepath.Join("testdata", "dup.wasm"), dir, "b.wasm")
	sink := newSink()
	h, _ := startHost(t, testConfig(dir), sink)
	ctx := context.Background()
	if i := infoOf(t, h, "b.wasm"); i.Loaded || !strings.Contains(i.Error, `plugin b.wasm: register: b.wasm: key "custom" is already registered by a.wasm`) {
		t.Fatalf("b.wasm: %+v", i)
	}
	if err := os.Remove(filepath.Join(dir, "a.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// b.wasm did not change, but the key it wanted is free now.
	if i := infoOf(t, h, "b.wasm"); !i.Loaded || i.Error != "" {
		t.Fatalf("b.wasm after a.wasm left: %+v", i)
	}
	if v, err := sink.countdown(t, "custom").Value(ctx, 1, json.RawMessage(`{}`)); v != 7 || err != nil {
		t.Fatalf("b's custom: %d, %v", v, err)
	}
}

// TestReloadInFlightFinishesOnOldVersion swaps a plugin while a call runs
// on it: the call completes on the old version, the next call uses the new.
func TestReloadInFlightFinishesOnOldVersion(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "slow.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	cfg.CallTimeout = 5 * time.Second
	h, logs := startHost(t, cfg, sink)
	ctx := context.Background()
	old := sink.countdown(t, "slow")

	var (
		wg  sync.WaitGroup
		got int64
		err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		got, err = old.Value(ctx, 0, json.RawMessage(`{}`))
	}()
	poll.Until(t, 10*time.Second, "the call to start", func() bool { return strings.Contains(logs.String(), "msg=started") })
	copyFile(t, filepath.Join("testdata", "slow2.wasm"), dir, "slow.wasm")
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := sink.countdown(t, "slow").Value(ctx, 0, json.RawMessage(`{}`)); v != 2 || err != nil {
		t.Fatalf("new version: %d, %v", v, err)
	}
	wg.Wait()
	if got != 1 || err != nil {
		t.Fatalf("in-flight call: %d, %v; want 1 from the old version", got, err)
	}
	// The old version is closed now; a stale reference says so.
	if _, err := old.Value(ctx, 0, json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "unloaded") {
		t.Fatalf("stale call: %v", err)
	}
}

// TestReloadHashesUnchangedStat: SIGHUP (Reload) loads a file rewritten with
// the same size and modification time (cp -p, rsync -t, tar), which the
// poll's size+mtime check cannot see.
func TestReloadHashesUnchangedStat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slow.wasm")
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "slow.wasm")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := startHost(t, testConfig(dir), newSink())
	first := infoOf(t, h, "slow.wasm")

	copyFile(t, filepath.Join("testdata", "slow2.wasm"), dir, "slow.wasm") // same size
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if now, err := os.Stat(path); err != nil || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the rewrite changed the file's stat: %v %v", now, err)
	}
	if err := h.scan(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if i := infoOf(t, h, "slow.wasm"); i.SHA256 != first.SHA256 {
		t.Fatalf("the poll read a file whose size and mtime did not change: %+v", i)
	}
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if i := infoOf(t, h, "slow.wasm"); i.SHA256 == first.SHA256 || !i.Loaded || i.Error != "" {
		t.Fatalf("after SIGHUP still serving %.12s: %+v", first.SHA256, i)
	}
}

// TestReloadFiltersAndTransforms: a file's filters and transforms are
// added, replaced and removed with the file, like its countdowns.
func TestReloadFiltersAndTransforms(t *testing.T) {
	dir := t.TempDir()
	sink := newSink()
	cfg := testConfig(dir)
	cfg.PollInterval = 20 * time.Millisecond
	h, _ := startHost(t, cfg, sink)
	ctx := context.Background()

	copyFile(t, filepath.Join("..", "..", "..", "examples", "filter", "field-equals.wasm"), dir, "ext.wasm")
	poll.Until(t, 10*time.Second, "the filter to register", func() bool { return sink.has("fi", "field-equals") })
	if ok, err := sink.filter(t, "field-equals").Match(ctx, json.RawMessage(`{"field":"a","equals":1}`), "e", json.RawMessage(`{"a":1}`)); !ok || err != nil {
		t.Fatalf("filter: %v, %v", ok, err)
	}

	// Changed into a file with transforms only: the filter goes, they come.
	copyFile(t, filepath.Join("testdata", "eviltransform.wasm"), dir, "ext.wasm")
	poll.Until(t, 10*time.Second, "the transforms to replace the filter", func() bool {
		return sink.has("tr", "tjsonbody") && !sink.has("fi", "field-equals")
	})
	if i := infoOf(t, h, "ext.wasm"); len(i.Filters) != 0 || len(i.Transforms) != 9 {
		t.Fatalf("info after the change: %+v", i)
	}

	if err := os.Remove(filepath.Join(dir, "ext.wasm")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the transforms to unregister", func() bool { return !sink.has("tr", "tjsonbody") })
}
