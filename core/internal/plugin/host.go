package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
)

// Sink receives what each plugin file registers. Apply replaces everything
// source (the file's base name) registered before with countdowns and
// callbacks, atomically: on an error (a key taken by another source) nothing
// changes. Nil maps unregister the source. The host calls Apply from one
// goroutine at a time.
type Sink interface {
	Apply(source string, r webhook.Registrations) error
}

// Info describes one plugin file, for listings and checks.
type Info struct {
	// File is the file's base name, also the Sink source.
	File string `json:"file"`
	// Name is the manifest's optional plugin name.
	Name string `json:"name,omitempty"`
	// SHA256 is the hex digest of the version being served (or checked).
	SHA256 string `json:"sha256,omitempty"`
	// Countdowns and Callbacks are the registered keys, in manifest order.
	Countdowns []string `json:"countdowns"`
	Callbacks  []string `json:"callbacks"`
	// Filters and Transforms are the registered plugin filters and
	// transforms, in manifest order.
	Filters    []string `json:"filters"`
	Transforms []string `json:"transforms"`
	// Loaded reports whether this file's registrations are live.
	Loaded bool `json:"loaded"`
	// LoadedAt is when the served version was registered, RFC 3339 in UTC
	// with microseconds like every time the API answers; empty when not
	// loaded.
	LoadedAt string `json:"loaded_at,omitempty"`
	// Error is why the file (or its latest change) is not served; empty
	// when all is well.
	Error string `json:"error,omitempty"`
	// Loading is true while the server's first load has not reached this
	// file yet, or is compiling it.
	Loading bool `json:"loading,omitempty"`
}

// maxFileBytes bounds a plugin file read into memory.
const maxFileBytes = 256 << 20

// Host loads, serves and reloads the plugins of one directory. Its methods
// are safe for concurrent use. After Stop every registered function
// returns ErrUnloaded.
type Host struct {
	cfg    Config
	sink   Sink
	logger *slog.Logger
	rt     wazero.Runtime
	gate   *gate

	scanMu sync.Mutex // one scan at a time

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool
	stopped chan struct{} // closed when the first Stop returns
	cancel  context.CancelFunc
	done    chan struct{}

	// loading is true from New until the first load has ended (or Stop);
	// loaded is closed then.
	loading    atomic.Bool
	loaded     chan struct{}
	loadedOnce sync.Once
}

// entry is the state of one file in the directory.
type entry struct {
	file    string
	size    int64
	modTime time.Time
	sum     string   // digest of the content last tried
	cur     *version // registered in the sink
	pending *version // loaded but refused by the sink; retried each scan
	err     error
	at      time.Time
	loading bool // listed by the first load, not loaded yet
}

// New returns a host for cfg that registers into sink and logs to logger.
// It loads nothing until Start.
func New(cfg Config, sink Sink, logger *slog.Logger) (*Host, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("plugin: nil sink")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rt, cached, err := newRuntime(context.Background(), cfg, logger)
	if err != nil {
		return nil, err
	}
	g := newGate(cfg)
	if cached {
		g.cacheDir = cfg.CacheDir
	}
	h := &Host{cfg: cfg, sink: sink, logger: logger, rt: rt, gate: g, entries: map[string]*entry{}, loaded: make(chan struct{})}
	h.loading.Store(true)
	return h, nil
}

// newRuntime returns a runtime for cfg, and whether it compiles through
// the compilation cache in cfg.CacheDir.
func newRuntime(ctx context.Context, cfg Config, logger *slog.Logger) (wazero.Runtime, bool, error) {
	// Not WithCloseOnContextDone: the host stops calls itself (halt.go).
	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(cfg.memoryLimitPages())
	cached := false
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			// A read-only data dir must not stop the server: compile anew.
			logger.Warn("plugin compilation cache unavailable; compiling in memory", "dir", cfg.CacheDir, "error", err)
		} else {
			rc, cached = rc.WithCompilationCache(cache), true
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, false, fmt.Errorf("plugin: instantiate WASI: %w", err)
	}
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostLog), logSig.params, logSig.results).
		WithParameterNames("level", "ptr", "len").
		Export(abi.ImportLog).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostLogEnabled), logEnabledSig.params, logEnabledSig.results).
		WithParameterNames("level").
		Export(abi.ImportLogEnabled).
		Instantiate(ctx)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, false, fmt.Errorf("plugin: instantiate host module: %w", err)
	}
	return rt, cached, nil
}

// Start loads the directory and, unless PollInterval is negative, watches it
// until ctx ends or Stop. It returns after the first load, or at once with
// Config.Background (Loaded tells when it is done); a plugin that fails to
// load is reported by Plugins and logged, not returned.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.closed || h.done != nil {
		h.mu.Unlock()
		return fmt.Errorf("plugin: host %w", service.ErrStarted)
	}
	loopCtx, cancel := context.WithCancel(ctx)
	h.cancel, h.done = cancel, make(chan struct{})
	h.mu.Unlock()
	if h.cfg.Background {
		go h.watch(loopCtx, true)
		return nil
	}
	h.firstLoad(ctx)
	go h.watch(loopCtx, false)
	return nil
}

// Loading reports whether the first load has not ended yet: a countdown or
// callback nobody registers may still be declared by a file being loaded.
// It is cheap, for the delivery path.
func (h *Host) Loading() bool { return h.loading.Load() }

// Loaded is closed when the first load has ended, or at Stop.
func (h *Host) Loaded() <-chan struct{} { return h.loaded }

func (h *Host) endLoading() {
	h.loadedOnce.Do(func() {
		h.loading.Store(false)
		close(h.loaded)
	})
}

// firstLoad loads the directory, saying how it goes: every file is listed
// as loading at once (Plugins), each is logged as it is compiled and
// loaded, and the end is logged with the totals.
func (h *Host) firstLoad(ctx context.Context) {
	defer h.endLoading()
	start := time.Now()
	if files, err := listDir(h.cfg.Dir); err == nil && len(files) > 0 {
		h.mu.Lock()
		for _, f := range files {
			if h.entries[f.name] == nil {
				h.entries[f.name] = &entry{file: f.name, loading: true}
			}
		}
		h.mu.Unlock()
		h.logger.Info("loading plugins", "dir", h.cfg.Dir, "files", len(files), "background", h.cfg.Background)
	}
	// Each file's failure is logged where it happens ("plugin not
	// loaded"); only a directory that cannot be read is left to say.
	if err := h.scan(ctx, false); err != nil && ctx.Err() == nil {
		if _, derr := listDir(h.cfg.Dir); derr != nil {
			h.logger.Error("plugin directory", "dir", h.cfg.Dir, "error", derr)
		}
	}
	h.mu.Lock()
	loaded, failed := 0, 0
	for _, e := range h.entries {
		e.loading = false
		if e.cur != nil {
			loaded++
		} else {
			failed++
		}
	}
	h.mu.Unlock()
	if loaded+failed > 0 && ctx.Err() == nil {
		h.logger.Info("plugins loaded", "loaded", loaded, "failed", failed, "took", time.Since(start).Round(time.Millisecond))
	}
	// Decoding and compiling leave tens of MB of garbage that the runtime
	// would return to the OS only slowly: return it now, once.
	debug.FreeOSMemory()
}

func (h *Host) watch(ctx context.Context, first bool) {
	defer close(h.done)
	if first {
		h.firstLoad(ctx)
	}
	var poll <-chan time.Time
	if h.cfg.PollInterval >= 0 {
		t := time.NewTicker(h.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	reap := time.NewTicker(max(h.cfg.IdleTimeout/2, 10*time.Millisecond))
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll:
			if err := h.scan(ctx, false); err != nil && ctx.Err() == nil {
				h.logger.Error("plugin reload", "error", err)
			}
		case <-reap.C:
			h.reap()
		}
	}
}

// reap closes the instances idle for longer than IdleTimeout and releases
// the compiled modules of plugins without calls for as long: an idle
// server keeps neither guest memory nor machine code (a Go guest's is
// about 14 MB), and the next call compiles from the cache again.
func (h *Host) reap() {
	cutoff := monoNow() - h.cfg.IdleTimeout
	insts := h.gate.idle.reap(cutoff)
	closeInstances(insts)
	h.mu.Lock()
	var vs []*version
	for _, e := range h.entries {
		vs = append(vs, e.cur, e.pending)
	}
	h.mu.Unlock()
	released := 0
	for _, v := range vs {
		if v != nil && v.releaseIdle(cutoff) {
			released++
		}
	}
	if released > 0 {
		h.logger.Debug("idle plugin modules released", "modules", released, "instances", len(insts))
		// Release the modules' memory now rather than at the next
		// collections: their machine code is freed by a finalizer.
		debug.FreeOSMemory()
	}
}

// Reload rescans the directory now (for SIGHUP): new and changed files are
// loaded, removed ones unregistered. Unlike the poll, it reads and hashes
// every file, so content rewritten with the same size and modification time
// (cp -p, rsync -t, tar) is loaded too. The error joins what went wrong,
// file by file; the plugins that are fine are served regardless.
func (h *Host) Reload(ctx context.Context) error { return h.scan(ctx, true) }

// scan brings the entries up to date with the directory. The poll passes
// hashAll false and skips files whose size and mtime are unchanged.
func (h *Host) scan(ctx context.Context, hashAll bool) error {
	h.scanMu.Lock()
	defer h.scanMu.Unlock()
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return errors.New("plugin: host closed")
	}
	files, err := listDir(h.cfg.Dir)
	if err != nil {
		return err
	}
	var errs []error
	h.mu.Lock()
	var gone []*entry
	for name, e := range h.entries {
		if !slices.ContainsFunc(files, func(f fileStat) bool { return f.name == name }) {
			gone = append(gone, e)
			delete(h.entries, name)
		}
	}
	h.mu.Unlock()
	for _, e := range gone {
		if err := h.sink.Apply(e.file, webhook.Registrations{}); err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: unregister: %w", e.file, err))
		}
		h.logger.Info("plugin removed", "plugin", e.file)
		retire(e.cur, e.pending)
	}
	// Removals first, so a key a removed file held is free for the others.
	for _, f := range files {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := h.sync(ctx, f, hashAll); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type fileStat struct {
	name    string
	size    int64
	modTime time.Time
}

func listDir(dir string) ([]fileStat, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plugin: read directory: %w", err)
	}
	var out []fileStat
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".wasm") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, de.Name())) // follows symlinks
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, fileStat{de.Name(), fi.Size(), fi.ModTime()})
	}
	return out, nil // os.ReadDir sorts by name: first file wins a key
}

// sync brings one file's entry up to date; unless hashAll, a file whose
// size and mtime are unchanged is not read.
func (h *Host) sync(ctx context.Context, f fileStat, hashAll bool) error {
	h.mu.Lock()
	e := h.entries[f.name]
	if e == nil {
		e = &entry{file: f.name}
		h.entries[f.name] = e
	}
	h.mu.Unlock()

	if !hashAll && e.size == f.size && e.modTime.Equal(f.modTime) && e.sum != "" {
		return h.retryPending(e)
	}
	bin, err := readFile(filepath.Join(h.cfg.Dir, f.name))
	if err != nil {
		return h.fail(e, fmt.Errorf("plugin %s: %w", f.name, err))
	}
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])
	h.mu.Lock()
	e.size, e.modTime = f.size, f.modTime
	same := digest == e.sum
	e.sum = digest
	h.mu.Unlock()
	if same {
		return h.retryPending(e)
	}
	v, err := load(ctx, h.rt, h.gate, h.cfg, h.logger, f.name, digest, bin)
	h.mu.Lock()
	e.loading = false
	h.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // stopping: not the file's fault
	}
	if err != nil {
		return h.fail(e, err)
	}
	return h.register(e, v)
}

// retryPending registers an unchanged file refused for a duplicate key
// again: the key may have been freed since.
func (h *Host) retryPending(e *entry) error {
	if e.pending != nil {
		return h.register(e, e.pending)
	}
	return nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bin, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(bin) > maxFileBytes {
		return nil, fmt.Errorf("file is larger than %d MiB", maxFileBytes>>20)
	}
	return bin, nil
}

func (h *Host) fail(e *entry, err error) error {
	if e.cur != nil {
		err = fmt.Errorf("%w (still serving the previous version %.12s)", err, e.cur.sum)
	}
	h.mu.Lock()
	e.err = err
	pending := e.pending
	e.pending = nil
	h.mu.Unlock()
	retire(pending)
	h.logger.Error("plugin not loaded", "plugin", e.file, "error", err)
	h.observeLoadFailure(e.file, "load", err)
	return err
}

// register hands v's functions to the sink and, when it accepts them,
// makes v the served version.
func (h *Host) register(e *entry, v *version) error {
	// Each entry is named once, here: quoting per call cost ~12% of a WAT
	// countdown call.
	cds := make(map[string]webhook.Countdown, len(v.manifest.Countdowns))
	for i, key := range v.manifest.Countdowns {
		what := "countdown " + strconv.Quote(key)
		cds[key] = webhook.Countdown{
			Value: func(ctx context.Context, retryCount int, kwargs json.RawMessage) (int64, error) {
				return v.countdown(ctx, i, what, retryCount, kwargs)
			},
			Validate: func(ctx context.Context, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
				return v.validate(ctx, i, kwargs)
			},
		}
	}
	cbs := make(map[string]webhook.CallbackFunc, len(v.manifest.Callbacks))
	for i, name := range v.manifest.Callbacks {
		what := "callback " + strconv.Quote(name)
		cbs[name] = func(ctx context.Context, doc *webhook.CallbackDoc) error { return v.callback(ctx, i, what, doc) }
	}
	fs, ts := v.registrations()
	r := h.observed(e.file, webhook.Registrations{Countdowns: cds, Callbacks: cbs, Filters: fs, Transforms: ts})
	if err := h.sink.Apply(e.file, r); err != nil {
		err = fmt.Errorf("plugin %s: register: %w", e.file, err)
		if e.cur != nil {
			err = fmt.Errorf("%w (still serving the previous version %.12s)", err, e.cur.sum)
		}
		h.mu.Lock()
		old := e.pending
		e.pending, e.err = v, err
		h.mu.Unlock()
		if old != v {
			retire(old)
			h.logger.Error("plugin not registered", "plugin", e.file, "error", err)
			h.observeLoadFailure(e.file, "register", err)
		}
		return err
	}
	h.mu.Lock()
	old := e.cur
	e.cur, e.pending, e.err, e.at = v, nil, nil, time.Now()
	h.mu.Unlock()
	retire(old)
	h.logger.Info("plugin loaded", "plugin", e.file, "sha256", v.sum,
		"countdowns", v.manifest.Countdowns, "callbacks", v.manifest.Callbacks,
		"filters", entryNames(v.manifest.Filters), "transforms", entryNames(v.manifest.Transforms), "took", v.loadTook.Round(time.Millisecond))
	return nil
}

func retire(vs ...*version) {
	for _, v := range vs {
		if v != nil {
			v.retire()
		}
	}
}

// load compiles bin, checks its ABI, instantiates it once and reads and
// checks its manifest.
func load(ctx context.Context, rt wazero.Runtime, g *gate, cfg Config, logger *slog.Logger, file, sum string, bin []byte) (*version, error) {
	start := time.Now()
	limited, err := limitDepth(bin)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: not a valid WebAssembly module: %w", file, err)
	}
	logger.Info("plugin compiling", "plugin", file, "bytes", len(bin))
	if cfg.beforeCompile != nil {
		cfg.beforeCompile(file)
	}
	before := cacheEntries(g.cacheDir)
	compiled, err := rt.CompileModule(ctx, limited)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: not a valid WebAssembly module: %w", file, err)
	}
	logger.Info("plugin compiled", "plugin", file, "took", time.Since(start).Round(time.Millisecond),
		"cache", cacheOutcome(g.cacheDir, before))
	if err := checkABI(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("plugin %s: %w", file, err)
	}
	_, initFn := compiled.ExportedFunctions()[abi.ExportInitialize]
	_, record := compiled.ExportedFunctions()[abi.ExportCallbackRecord]
	record = record && !cfg.jsonOnly
	_, trRecord := compiled.ExportedFunctions()[abi.ExportTransformRecord]
	v := &version{
		file: file, sum: sum, compiled: compiled, module: limited, rt: rt, gate: g, cfg: cfg, initFn: initFn, record: record,
		trRecord: trRecord && !cfg.jsonOnly,
		logger:   logger.With("plugin", file),
		slots:    newSem(cfg.PoolSize),
		cbSlots:  newSem(max(1, cfg.PoolSize-1)),
	}
	m, err := v.readManifest(ctx)
	if err == nil {
		v.manifest = m
		err = v.probe(ctx)
	}
	if err == nil {
		err = v.probeEntries(ctx)
	}
	if err != nil {
		v.retire()
		return nil, err
	}
	v.loadTook = time.Since(start)
	return v, nil
}

// cacheEntries counts the files of the compilation cache in dir ("" is
// none): a compilation that adds one missed the cache.
func cacheEntries(dir string) int {
	if dir == "" {
		return 0
	}
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(d.Name(), ".tmp") {
			n++
		}
		return nil
	})
	return n
}

// cacheOutcome says whether a compilation came from the cache, for the log.
func cacheOutcome(dir string, before int) string {
	switch {
	case dir == "":
		return "off"
	case cacheEntries(dir) > before:
		return "miss (compiled and stored)"
	default:
		return "hit"
	}
}

// probe calls each validator once with {} so that a manifest naming an
// index the module cannot serve fails the load, not a user's request.
func (v *version) probe(ctx context.Context) error {
	for i, key := range v.manifest.Countdowns {
		if _, _, err := v.validate(ctx, i, json.RawMessage(`{}`)); err != nil {
			return fmt.Errorf("manifest declares countdown %q (index %d) but its validator fails: %w", key, i, err)
		}
	}
	return nil
}

// Plugins describes every plugin file, sorted by name.
func (h *Host) Plugins() []Info {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Info, 0, len(h.entries))
	for _, e := range h.entries {
		out = append(out, e.info())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.File, b.File) })
	return out
}

func (e *entry) info() Info {
	i := newInfo(e.file)
	i.Loading = e.loading
	v := e.cur
	if v == nil {
		v = e.pending
	}
	if v != nil {
		i.describe(v)
	}
	if e.cur != nil {
		i.Loaded, i.LoadedAt = true, e.at.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	if e.err != nil {
		i.Error = e.err.Error()
	}
	return i
}

// Stop stops watching, unregisters every plugin, waits for in-flight calls
// until ctx ends, and releases the runtime, started or not. It is
// idempotent: a later Stop waits for the first, up to its own ctx.
func (h *Host) Stop(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		stopped := h.stopped
		h.mu.Unlock()
		if err := service.Wait(ctx, stopped); err != nil {
			return fmt.Errorf("plugin: stop: %w", err)
		}
		return nil
	}
	h.closed = true
	h.stopped = make(chan struct{})
	defer close(h.stopped)
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	h.endLoading()
	h.scanMu.Lock() // wait out a running scan
	defer h.scanMu.Unlock()
	h.mu.Lock()
	entries := h.entries
	h.entries = map[string]*entry{}
	h.mu.Unlock()
	h.gate.stopping.Store(true)
	var vs []*version
	for _, e := range entries {
		_ = h.sink.Apply(e.file, webhook.Registrations{})
		retire(e.cur, e.pending)
		vs = append(vs, e.cur, e.pending)
	}
	// In-flight calls finish first, unless ctx ends: then they are halted
	// (each stops at its next check). The runtime is closed only once none
	// runs: closing it frees the memory of a guest still running.
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var (
		stopErr error
		halted  time.Time
		ended   = ctx.Done()
	)
	for !allClosed(vs) {
		select {
		case <-ended:
			ended = nil
			stopErr = fmt.Errorf("plugin: stop: %w", ctx.Err())
			h.gate.watch.haltAll(errStopping)
			halted = time.Now()
		case <-t.C:
		}
		if stopErr != nil && time.Since(halted) > haltGrace {
			return fmt.Errorf("%w; plugin calls still running after %s, runtime left open", stopErr, haltGrace)
		}
	}
	return errors.Join(stopErr, h.rt.Close(context.WithoutCancel(ctx)))
}

// errStopping is the cause of the calls Stop halts; haltGrace is how long
// it waits for them (a host function runs to its end before its guest
// meets the flag).
var errStopping = errors.New("the plugin host is stopping")

const haltGrace = 5 * time.Second

func allClosed(vs []*version) bool {
	for _, v := range vs {
		if v != nil && !v.isClosed() {
			return false
		}
	}
	return true
}

// Check loads file as the host would and reports what it registers, or
// what is wrong (for "whisperer plugins check FILE.wasm"). Registration
// conflicts with other files are not checked. Guest logs go to logger
// (nil discards them).
func Check(ctx context.Context, cfg Config, file string, logger *slog.Logger) (Info, error) {
	cfg = cfg.WithDefaults()
	info := newInfo(filepath.Base(file))
	if err := cfg.Validate(); err != nil {
		return info, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := readFile(file)
	if err != nil {
		return info, fmt.Errorf("plugin %s: %w", info.File, err)
	}
	rt, cached, err := newRuntime(ctx, cfg, logger)
	if err != nil {
		return info, err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	sum := sha256.Sum256(bin)
	info.SHA256 = hex.EncodeToString(sum[:])
	g := newGate(cfg)
	if cached {
		g.cacheDir = cfg.CacheDir
	}
	v, err := load(ctx, rt, g, cfg, logger, info.File, info.SHA256, bin)
	if err != nil {
		info.Error = err.Error()
		return info, err
	}
	defer v.retire()
	info.describe(v)
	return info, nil
}

// newInfo is the Info of file with empty (not null) lists.
func newInfo(file string) Info {
	return Info{File: file, Countdowns: []string{}, Callbacks: []string{}, Filters: []string{}, Transforms: []string{}}
}

// describe fills in what version v registers.
func (i *Info) describe(v *version) {
	i.Name, i.SHA256 = v.manifest.Name, v.sum
	i.Countdowns = append(i.Countdowns, v.manifest.Countdowns...)
	i.Callbacks = append(i.Callbacks, v.manifest.Callbacks...)
	i.Filters = append(i.Filters, entryNames(v.manifest.Filters)...)
	i.Transforms = append(i.Transforms, entryNames(v.manifest.Transforms)...)
}
