package plugin

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/internal/poll"
)

// holdCompile returns a beforeCompile hook that blocks the compilation of
// file until the returned release is called.
func holdCompile(file string) (hook func(string), reached <-chan struct{}, release func()) {
	gate, at := make(chan struct{}), make(chan struct{})
	var once, atOnce sync.Once
	return func(f string) {
			if f == file {
				atOnce.Do(func() { close(at) })
				<-gate
			}
		}, at, func() {
			once.Do(func() { close(gate) })
		}
}

// A background Start returns before the plugins are loaded: while a file
// compiles, the host says it is loading, lists every file as loading and
// has registered nothing; then it loads them all and logs the progress.
func TestBackgroundFirstLoad(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "fastcb.wasm"), dir, "a.wasm")
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "b.wasm")
	hook, reached, release := holdCompile("a.wasm")
	defer release()
	cfg := testConfig(dir)
	cfg.Background, cfg.beforeCompile = true, hook
	sink := newSink()
	h, logs := startHost(t, cfg, sink)
	<-reached
	if !h.Loading() {
		t.Fatal("Loading is false while a.wasm compiles")
	}
	select {
	case <-h.Loaded():
		t.Fatal("Loaded is closed while a.wasm compiles")
	default:
	}
	for _, f := range []string{"a.wasm", "b.wasm"} {
		if i := infoOf(t, h, f); !i.Loading || i.Loaded || i.Error != "" {
			t.Fatalf("%s while loading: %+v", f, i)
		}
	}
	if sink.has("cb", "fast") || sink.has("cd", "slow") {
		t.Fatal("registered before loading")
	}
	release()
	<-h.Loaded()
	if h.Loading() {
		t.Fatal("Loading after Loaded")
	}
	for _, f := range []string{"a.wasm", "b.wasm"} {
		if i := infoOf(t, h, f); i.Loading || !i.Loaded {
			t.Fatalf("%s after loading: %+v", f, i)
		}
	}
	if !sink.has("cb", "fast") || !sink.has("cd", "slow") {
		t.Fatal("not registered after loading")
	}
	b, _ := json.Marshal(infoOf(t, h, "a.wasm"))
	if strings.Contains(string(b), "loading") {
		t.Fatalf("a loaded plugin's JSON says loading: %s", b)
	}
	for _, want := range []string{`msg="loading plugins"`, `files=2`, `msg="plugin compiling" plugin=a.wasm`,
		`msg="plugin compiled" plugin=a.wasm`, `cache=`, `msg="plugin loaded" plugin=b.wasm`, `msg="plugins loaded" loaded=2 failed=0`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// A file that fails to load in the background ends the loading all the
// same, with its error listed and logged.
func TestBackgroundLoadFailure(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "badmanifest.wasm"), dir, "bad.wasm")
	copyFile(t, filepath.Join("testdata", "fastcb.wasm"), dir, "good.wasm")
	cfg := testConfig(dir)
	cfg.Background = true
	sink := newSink()
	h, logs := startHost(t, cfg, sink)
	<-h.Loaded()
	if i := infoOf(t, h, "bad.wasm"); i.Loading || i.Loaded || i.Error == "" {
		t.Fatalf("bad.wasm: %+v", i)
	}
	if !sink.has("cb", "fast") {
		t.Fatal("good.wasm not registered")
	}
	for _, want := range []string{`msg="plugin not loaded" plugin=bad.wasm`, `msg="plugins loaded" loaded=1 failed=1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// A reload (SIGHUP) while the first load runs waits for it and then
// rescans; Stop while it runs ends it and releases Loaded.
func TestReloadAndStopDuringFirstLoad(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "fastcb.wasm"), dir, "a.wasm")
	hook, reached, release := holdCompile("a.wasm")
	defer release()
	cfg := testConfig(dir)
	cfg.Background, cfg.beforeCompile = true, hook
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	<-reached
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.Reload(context.Background()) }()
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "b.wasm")
	release()
	if err := <-reloaded; err != nil {
		t.Fatalf("reload during the first load: %v", err)
	}
	<-h.Loaded()
	if !sink.has("cb", "fast") || !sink.has("cd", "slow") {
		t.Fatalf("after the reload: %+v", h.Plugins())
	}

	// Stop while a compilation is held.
	hook2, reached2, release2 := holdCompile("a.wasm")
	cfg.beforeCompile = hook2
	h2, err := New(cfg, newSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-reached2
	stopped := make(chan error, 1)
	go func() { stopped <- h2.Stop(context.Background()) }()
	release2()
	if err := <-stopped; err != nil {
		t.Fatalf("stop during the first load: %v", err)
	}
	<-h2.Loaded()
	if h2.Loading() {
		t.Fatal("Loading after Stop")
	}
}

// Past idle_timeout an idle plugin keeps no instance and no compiled
// module; its next call compiles it again from the cache and answers.
func TestIdleModuleReleased(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "slow.wasm")
	cfg := testConfig(dir)
	cfg.IdleTimeout, cfg.CallTimeout = 20*time.Millisecond, 5*time.Second // slow1 spins 200ms
	sink := newSink()
	h, logs := startHost(t, cfg, sink)
	v := h.entries["slow.wasm"].cur
	released := func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.compiled == nil && len(v.idle) == 0
	}
	for round := range 2 {
		poll.Until(t, 10*time.Second, "the idle module released", released)
		n, err := sink.countdown(t, "slow").Value(context.Background(), 0, json.RawMessage(`{}`))
		if err != nil || n != 1 {
			t.Fatalf("round %d: call after release: %d, %v", round, n, err)
		}
	}
	if !strings.Contains(logs.String(), "idle plugin modules released") {
		t.Errorf("release not logged:\n%s", logs)
	}
	if !infoOf(t, h, "slow.wasm").Loaded {
		t.Fatal("a released module is still a loaded plugin")
	}
}

// Without a working compilation cache modules are kept: compiling a Go
// guest anew takes seconds.
func TestIdleModuleKeptWithoutCache(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "slow1.wasm"), dir, "slow.wasm")
	cfg := testConfig(dir)
	cfg.IdleTimeout = time.Millisecond
	h, err := New(cfg, newSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.gate.cacheDir = "" // as when the cache directory is unusable
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())
	v := h.entries["slow.wasm"].cur
	poll.Until(t, 10*time.Second, "the idle instance closed", func() bool { return h.gate.idle.idleOf(v) == 0 })
	if v.releaseIdle(monoNow() + time.Hour) {
		t.Fatal("released without a cache")
	}
}
