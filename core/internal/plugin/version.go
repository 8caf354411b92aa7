package plugin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
)

// Errors of plugin calls, for errors.Is.
var (
	// ErrTimeout: the call exceeded its time limit; the instance was discarded.
	ErrTimeout = errors.New("plugin: call exceeded its time limit")
	// ErrFailed: the guest reported a failure (a negative or non-zero
	// result); the error text carries its last error-level log message.
	ErrFailed = errors.New("plugin: guest reported a failure")
	// ErrCrashed: the guest trapped or exited; the instance was discarded.
	ErrCrashed = errors.New("plugin: guest crashed")
	// ErrUnloaded: the plugin version was unloaded (file removed or
	// replaced, or the host closed) before the call could start.
	ErrUnloaded = errors.New("plugin: unloaded")
)

// version is one loaded content of one plugin file: a compiled module, its
// manifest and a pool of instances. A reload makes a new version and retires
// the old one, which closes once its in-flight calls return.
type version struct {
	file     string
	sum      string
	manifest abi.Manifest
	rt       wazero.Runtime
	cfg      Config
	logger   *slog.Logger
	initFn   bool
	// record: the module exports whisperer_callback_record; trRecord:
	// whisperer_transform_record.
	record, trRecord bool
	// loadTook is how long load took (compile, manifest, probe), for the log.
	loadTook time.Duration

	slots *sem  // one place per busy instance of this version
	gate  *gate // the host's bound on calls in flight
	// cbSlots keeps one place of the gate's callback lane for the other
	// files: a slow plugin's callbacks never take all of it.
	cbSlots *sem

	// module is the module's code (after limitDepth), compiled again
	// when a call finds compiled released (releaseIdle).
	module    []byte
	compileMu sync.Mutex // one compilation at a time

	mu       sync.Mutex
	compiled wazero.CompiledModule // nil while released
	lastUse  time.Duration         // when the last call started (monoNow)
	idle     []*instance           // guarded by gate.idle.mu
	busy     int
	retired  bool
	closed   bool
}

// gate bounds the instances in flight across every plugin file of a host,
// and so the host's memory: each holds up to memory_limit_mb of linear
// memory and its call stack while it runs. Countdowns and validators (short,
// on the delivery and API paths) and callbacks (up to callback_timeout each)
// have a pool_size each, so that slow callbacks never hold up a countdown.
// Instances between calls are kept in idle, within its own budget.
type gate struct {
	calls, callbacks *sem
	watch            *watchdog    // and their time
	inFlight, peak   atomic.Int64 // peak is read by tests
	// stopping refuses new calls on retired versions once Stop began: a
	// caller still holding a countdown would otherwise keep a version
	// busy, and its runtime open, for as long as it calls.
	stopping atomic.Bool
	idle     idlePool
	// cacheDir is the working compilation cache, or "" without one: only
	// with one are idle modules released (compiling again from it is
	// quick, compiling a Go guest anew takes seconds).
	cacheDir string
}

func newGate(cfg Config) *gate {
	g := &gate{calls: newSem(cfg.PoolSize), callbacks: newSem(cfg.PoolSize),
		watch: newWatchdog(min(cfg.CallTimeout, cfg.CallbackTimeout))}
	g.idle.budget = cfg.idleBudget()
	return g
}

// enter takes a place in lane, waiting until one is free or ctx ends.
func (g *gate) enter(ctx context.Context, lane *sem) error {
	if err := lane.acquire(ctx); err != nil {
		return fmt.Errorf("wait for a free plugin instance: %w", err)
	}
	n := g.inFlight.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return nil
}

func (g *gate) leave(lane *sem) {
	g.inFlight.Add(-1)
	lane.release()
}

// sem is a counting semaphore whose waiters are served in order. Taking and
// giving back a free place is a mutex's lock and unlock: a buffered
// channel's send and receive, ~140 instructions each with the runtime's
// lock, were four of a call's costs.
type sem struct {
	mu      sync.Mutex
	n, size int
	waiters []chan struct{} // closed when handed a place
}

func newSem(size int) *sem { return &sem{size: size} }

// acquire takes a place, waiting until one is free or ctx ends; a free
// place is taken whether or not ctx has ended.
func (s *sem) acquire(ctx context.Context) error {
	s.mu.Lock()
	if s.n < s.size && len(s.waiters) == 0 {
		s.n++
		s.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	s.waiters = append(s.waiters, ready)
	s.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	select {
	case <-ready: // handed a place meanwhile: pass it on
		s.mu.Unlock()
		s.release()
	default:
		i := slices.Index(s.waiters, ready)
		s.waiters = slices.Delete(s.waiters, i, i+1)
		s.mu.Unlock()
	}
	return ctx.Err()
}

// release gives a place back, to the first waiter if there is one.
func (s *sem) release() {
	s.mu.Lock()
	if len(s.waiters) > 0 {
		close(s.waiters[0])
		s.waiters = slices.Delete(s.waiters, 0, 1)
	} else {
		s.n--
	}
	s.mu.Unlock()
}

// instance is one instantiated module; it serves one call at a time.
type instance struct {
	mod                            api.Module
	alloc, countdown, validate, cb api.Function
	cbRecord                       api.Function
	// The filter and transform exports, nil when the module has none.
	filter, filterValidate       api.Function
	transform, transformValidate api.Function
	transformRecord              api.Function // nil unless version.trRecord
	stdout, stderr               *stream
	buf, bufCap                  uint32 // current input buffer
	stack                        [7]uint64

	peak api.Global        // the depth counter's peak (depth.go)
	halt api.MutableGlobal // set to stop a call (halt.go); nil in a module without code
	// st is the state of the instance's current call; watch is the call
	// as the watchdog sees it.
	st     *callState
	ctx    callCtx // of the call in progress
	watch  watched
	called time.Duration // when its last call started (monoNow)

	// While idle (see idlePool):
	owner        *version
	cost         int64
	since        time.Duration // monoNow
	newer, older *instance
}

func (v *version) instantiate(ctx context.Context) (*instance, error) {
	st := newCallState(v.logger)
	inst := &instance{
		stdout: &stream{name: "stdout", level: slog.LevelInfo, st: st},
		stderr: &stream{name: "stderr", level: slog.LevelWarn, st: st},
		st:     st,
		ctx:    callCtx{Context: context.Background(), st: st},
		called: monoNow(), // for an instance pooled without a call
	}
	// No start functions here: they run below, under the watchdog, which
	// can stop them only once the instance exists (its halt global).
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		WithStdout(inst.stdout).WithStderr(inst.stderr).
		WithRandSource(rand.Reader).
		WithSysWalltime().WithSysNanotime().
		WithNanosleep(func(int64) {}). // no real sleep: a sleeping guest must not hold an instance
		WithOsyield(func() {}).
		WithStartFunctions()
	ctx = context.WithValue(ctx, stateKey{}, st)
	ctx = experimental.WithMemoryAllocator(ctx, memoryAllocator)
	compiled, err := v.compiledModule(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile again: %w", err)
	}
	mod, err := v.rt.InstantiateModule(ctx, compiled, cfg)
	inst.stdout.flush()
	inst.stderr.flush()
	st.finish(ctx)
	inst.stdout.st, inst.stderr.st = nil, nil
	if err != nil {
		return nil, v.describe("instantiate", st, nil, err, v.cfg.CallbackTimeout)
	}
	inst.mod = mod
	inst.halt, _ = mod.ExportedGlobal(haltExport).(api.MutableGlobal)
	starts := []string{startExport}
	if v.initFn {
		starts = append(starts, abi.ExportInitialize)
	}
	for _, name := range starts {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		halted, err := v.run(ctx, inst, "instantiate", v.cfg.CallbackTimeout, func(ctx context.Context, _ *instance) error {
			_, err := fn.Call(ctx)
			return err
		})
		if err == nil && halted {
			// It returned after the flag was set: the instance would
			// trap at its first check, and the limit was passed.
			err = fmt.Errorf("instantiate: %w (%s)", ErrTimeout, v.cfg.CallbackTimeout)
		}
		if err != nil {
			_ = mod.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	inst.alloc = mod.ExportedFunction(abi.ExportAlloc)
	inst.countdown = mod.ExportedFunction(abi.ExportCountdown)
	inst.validate = mod.ExportedFunction(abi.ExportValidate)
	inst.cb = mod.ExportedFunction(abi.ExportCallback)
	inst.filter = mod.ExportedFunction(abi.ExportFilter)
	inst.filterValidate = mod.ExportedFunction(abi.ExportFilterValidate)
	inst.transform = mod.ExportedFunction(abi.ExportTransform)
	inst.transformValidate = mod.ExportedFunction(abi.ExportTransformValidate)
	inst.peak = mod.ExportedGlobal(peakExport)
	if v.record {
		inst.cbRecord = mod.ExportedFunction(abi.ExportCallbackRecord)
	}
	if v.trRecord {
		inst.transformRecord = mod.ExportedFunction(abi.ExportTransformRecord)
	}
	return inst, nil
}

// compiledModule returns the compiled module, compiling it again (from
// the compilation cache) when releaseIdle released it. The caller holds a
// busy count, so it is not released again before the instance exists.
func (v *version) compiledModule(ctx context.Context) (wazero.CompiledModule, error) {
	v.compileMu.Lock()
	defer v.compileMu.Unlock()
	v.mu.Lock()
	c := v.compiled
	v.mu.Unlock()
	if c != nil {
		return c, nil
	}
	start := time.Now()
	c, err := v.rt.CompileModule(ctx, v.module)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.compiled = c
	v.mu.Unlock()
	v.logger.Debug("plugin module compiled again", "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// releaseIdle releases the compiled module when the version has had no
// instance and no call since cutoff, and the compilation cache can give it
// back quickly. It reports whether it did.
func (v *version) releaseIdle(cutoff time.Duration) bool {
	if v.gate.cacheDir == "" {
		return false
	}
	v.mu.Lock()
	c := v.compiled
	if c == nil || v.retired || v.busy > 0 || v.lastUse >= cutoff || v.gate.idle.idleOf(v) > 0 {
		v.mu.Unlock()
		return false
	}
	v.compiled = nil
	v.mu.Unlock()
	_ = c.Close(context.Background())
	return true
}

// describe turns a call error into one naming what failed and why; halted
// is why the watchdog stopped the call, if it did.
func (v *version) describe(what string, st *callState, halted, err error, limit time.Duration) error {
	var exit *sys.ExitError
	reason := st.lastErr
	if reason == "" {
		reason = st.firstStderr
	}
	if reason != "" {
		reason = ": " + reason
	}
	switch {
	case halted == errLimit:
		return fmt.Errorf("%s: %w (%s)", what, ErrTimeout, limit)
	case halted != nil:
		return fmt.Errorf("%s: caller gave up: %w", what, halted)
	case errors.As(err, &exit):
		return fmt.Errorf("%s: %w: exited with code %d%s", what, ErrCrashed, exit.ExitCode(), reason)
	case errors.Is(err, ErrFailed), errors.Is(err, ErrCrashed):
		return fmt.Errorf("%s: %w%s", what, err, reason)
	default:
		return fmt.Errorf("%s: %w: %v%s", what, ErrCrashed, err, reason)
	}
}

// monoStart is the origin of monoNow.
var monoStart = time.Now()

// monoNow is the monotonic clock's time since monoStart: the times a call
// keeps (its start, its deadline, its instance's release) are one clock
// reading each, where time.Now takes two (the wall clock too).
func monoNow() time.Duration { return time.Since(monoStart) }

// errLimit is why the watchdog halts a call past its time limit.
var errLimit = errors.New("plugin time limit")

// acquire returns an idle instance or a new one, waiting while PoolSize
// instances are busy.
func (v *version) acquire(ctx context.Context) (*instance, error) {
	if err := v.slots.acquire(ctx); err != nil {
		return nil, fmt.Errorf("wait for a free instance: %w", err)
	}
	v.mu.Lock()
	if v.closed || v.retired && v.gate.stopping.Load() {
		v.mu.Unlock()
		v.slots.release()
		return nil, ErrUnloaded
	}
	v.busy++
	inst := v.gate.idle.take(v)
	v.mu.Unlock()
	if inst != nil {
		return inst, nil
	}
	inst, err := v.instantiate(context.WithoutCancel(ctx))
	if err != nil {
		v.release(nil, false)
		return nil, err
	}
	return inst, nil
}

// release returns inst to the pool, or discards it when it is not healthy
// or the version is retired.
func (v *version) release(inst *instance, healthy bool) {
	used := monoNow()
	if inst != nil {
		used = inst.called // a clock reading less per call; idle reaping does not need the end
	}
	v.mu.Lock()
	v.busy--
	v.lastUse = used
	keep := inst != nil && healthy && !v.retired
	var drop []*instance
	if keep {
		// Under v.mu, so that a retire cannot close v before inst is pooled.
		drop = v.gate.idle.put(v, inst)
	} else if inst != nil {
		drop = []*instance{inst}
	}
	closeNow := v.retired && v.busy == 0 && !v.closed
	if closeNow {
		v.closed = true
	}
	v.mu.Unlock()
	v.slots.release()
	closeInstances(drop)
	if closeNow {
		v.closeAll()
	}
}

// retire stops the version from keeping instances; it closes when the last
// in-flight call returns.
func (v *version) retire() {
	v.mu.Lock()
	v.retired = true
	closeNow := v.busy == 0 && !v.closed
	if closeNow {
		v.closed = true
	}
	v.mu.Unlock()
	if closeNow {
		v.closeAll()
	}
}

func (v *version) closeAll() {
	closeInstances(v.gate.idle.drain(v))
	v.compileMu.Lock() // a compilation in progress ends first
	defer v.compileMu.Unlock()
	v.mu.Lock()
	c := v.compiled
	v.compiled = nil
	v.mu.Unlock()
	if c != nil {
		_ = c.Close(context.Background())
	}
}

func (v *version) isClosed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closed
}

// call runs fn on a pooled instance under limit, within lane of the gate.
// fn returns ErrFailed (wrapped) for guest-reported failures, which keep
// the instance.
func (v *version) call(ctx context.Context, lane *sem, what string, limit time.Duration, fn func(ctx context.Context, inst *instance) error) error {
	if lane == v.gate.callbacks {
		if err := v.cbSlots.acquire(ctx); err != nil {
			return fmt.Errorf("plugin %s: %s: wait for a free plugin instance: %w", v.file, what, err)
		}
		defer v.cbSlots.release()
	}
	if err := v.gate.enter(ctx, lane); err != nil {
		return fmt.Errorf("plugin %s: %s: %w", v.file, what, err)
	}
	defer v.gate.leave(lane)
	inst, err := v.acquire(ctx)
	if err != nil {
		return fmt.Errorf("plugin %s: %s: %w", v.file, what, err)
	}
	if ctx.Err() != nil { // the instance never ran: it stays healthy
		v.release(inst, true)
		return fmt.Errorf("plugin %s: %s: caller gave up: %w", v.file, what, context.Cause(ctx))
	}
	halted, err := v.run(ctx, inst, what, limit, fn)
	if err != nil {
		err = fmt.Errorf("plugin %s: %w", v.file, err)
	}
	v.release(inst, !halted && (err == nil || errors.Is(err, ErrFailed)) && !inst.deepStack())
	return err
}

// run runs fn on inst, watched (halt.go) for up to limit or until ctx
// ends, with the guest's output going to the instance's call state. It
// reports whether the watchdog halted the call (the instance must then be
// dropped), and the call's error described.
func (v *version) run(ctx context.Context, inst *instance, what string, limit time.Duration, fn func(ctx context.Context, inst *instance) error) (halted bool, _ error) {
	inst.called = monoNow()
	if ctx.Err() != nil {
		return false, fmt.Errorf("%s: caller gave up: %w", what, context.Cause(ctx))
	}
	st := inst.st
	st.reset()
	inst.stdout.st, inst.stderr.st = st, st
	deadline := inst.called + limit
	if deadline < inst.called { // a limit meant as "never" (2562047h) wraps
		deadline = math.MaxInt64
	}
	v.gate.watch.begin(ctx, inst, deadline)
	inst.ctx.Context = ctx
	err, panicked := v.guarded(fn, inst, what)
	inst.ctx.Context = context.Background() // the caller's is not kept alive by a pooled instance
	why := v.gate.watch.end(inst)
	inst.stdout.flush()
	inst.stderr.flush()
	st.finish(ctx)
	inst.stdout.st, inst.stderr.st = nil, nil
	if err == nil {
		return why != nil, nil // it returned before the halt took
	}
	if panicked {
		return true, fmt.Errorf("%s: %w", what, err) // the instance's state is unknown: dropped
	}
	if why == nil && inst.tooDeep() {
		err = fmt.Errorf("%w: call stack over the %d MiB limit (runaway recursion?)", ErrCrashed, stackBudget>>20)
	}
	return why != nil, v.describe(what, st, why, err, limit)
}

// errHostPanic is a call's error when the host's own code panicked during
// it (the guest's traps, and panics in host functions it calls, are
// wazero's errors already).
var errHostPanic = errors.New("host panic")

// guarded runs fn, turning a panic of the host's own code into an error,
// logged with its stack: the call must still end its watch and release its
// slot, or every later call of the plugin would wait for a slot forever.
func (v *version) guarded(fn func(ctx context.Context, inst *instance) error, inst *instance, what string) (err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			v.logger.Error("plugin call: host panic", "plugin", v.file, "call", what, "panic", p, "stack", string(debug.Stack()))
			err, panicked = fmt.Errorf("%w: %w: %v", ErrCrashed, errHostPanic, p), true
		}
	}()
	return fn(&inst.ctx, inst), false
}

// keepDepth is the deepest estimated stack an instance may have run and
// still be pooled: wazero keeps each function's grown native stack (up to
// about twice the deepest call) on the Go heap for its next calls, which
// the idle budget does not count.
const keepDepth = 256 << 10

// deepStack reports whether a call of inst has gone past keepDepth.
func (inst *instance) deepStack() bool {
	return inst.peak != nil && uint32(inst.peak.Get()) > keepDepth
}

// tooDeep reports whether the depth check (limitDepth) trapped.
func (inst *instance) tooDeep() bool {
	g := inst.mod.ExportedGlobal(depthExport)
	return g != nil && uint32(g.Get()) == depthExceeded
}

// input writes data into the instance's input buffer, asking the guest for
// a bigger one when it does not fit.
func (inst *instance) input(ctx context.Context, data []byte, limit int) (uint32, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if len(data) > limit {
		return 0, fmt.Errorf("input of %d bytes is over the %d byte limit: %w", len(data), limit, ErrFailed)
	}
	if uint32(len(data)) > inst.bufCap {
		size := uint32(1024)
		for size < uint32(len(data)) {
			size *= 2
		}
		inst.stack[0] = uint64(size)
		if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
			return 0, fmt.Errorf("%s(%d): %w", abi.ExportAlloc, size, err)
		}
		inst.buf, inst.bufCap = uint32(inst.stack[0]), size
		if inst.buf == 0 {
			inst.bufCap = 0
			return 0, fmt.Errorf("%s(%d) returned 0: %w", abi.ExportAlloc, size, ErrCrashed)
		}
	}
	if !inst.mod.Memory().Write(inst.buf, data) {
		inst.bufCap = 0
		return 0, fmt.Errorf("%s returned %d, outside memory: %w", abi.ExportAlloc, inst.buf, ErrCrashed)
	}
	return inst.buf, nil
}

// output copies the packed ptr<<32|len document a guest returned.
func (inst *instance) output(packed uint64, limit int) ([]byte, error) {
	b, err := inst.view(packed, limit)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// view is the packed ptr<<32|len document a guest returned, in its memory:
// valid until the instance runs again.
func (inst *instance) view(packed uint64, limit int) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if int(n) > limit {
		return nil, fmt.Errorf("result of %d bytes is over the %d byte limit: %w", n, limit, ErrCrashed)
	}
	b, ok := inst.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("result at %d (%d bytes) is outside memory: %w", ptr, n, ErrCrashed)
	}
	return b, nil
}

func (v *version) readManifest(ctx context.Context) (abi.Manifest, error) {
	var doc []byte
	err := v.call(ctx, v.gate.callbacks, "manifest", v.cfg.CallbackTimeout, func(ctx context.Context, inst *instance) error {
		fn := inst.mod.ExportedFunction(abi.ExportManifest)
		res, err := fn.Call(ctx)
		if err != nil {
			return err
		}
		if res[0] == 0 {
			return fmt.Errorf("%s returned no document: %w", abi.ExportManifest, ErrFailed)
		}
		doc, err = inst.output(res[0], abi.MaxManifestBytes)
		return err
	})
	if err != nil {
		return abi.Manifest{}, err
	}
	v.mu.Lock()
	c := v.compiled // set by load, before any reaper sees v
	v.mu.Unlock()
	m, err := parseManifest(doc, c.ExportedFunctions())
	if err != nil {
		return m, fmt.Errorf("plugin %s: %w", v.file, err)
	}
	return m, nil
}

// countdown calls whisperer_countdown; what names the entry in errors.
func (v *version) countdown(ctx context.Context, idx int, what string, retryCount int, kwargs json.RawMessage) (int64, error) {
	var secs int64
	err := v.call(ctx, v.gate.calls, what, v.cfg.CallTimeout, func(ctx context.Context, inst *instance) error {
		ptr, err := inst.input(ctx, kwargs, v.cfg.maxInput())
		if err != nil {
			return err
		}
		s := inst.stack[:]
		s[0], s[1], s[2], s[3] = uint64(idx), uint64(min(max(retryCount, 0), math.MaxInt32)), uint64(ptr), uint64(len(kwargs))
		if err := inst.countdown.CallWithStack(ctx, s); err != nil {
			return err
		}
		secs = int64(s[0])
		if secs < 0 {
			return fmt.Errorf("returned %d: %w", secs, ErrFailed)
		}
		return nil
	})
	return secs, err
}

// validate calls whisperer_validate.
func (v *version) validate(ctx context.Context, idx int, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
	return v.runValidate(ctx, "validator of "+strconv.Quote(v.manifest.Countdowns[idx]), idx, kwargs,
		func(inst *instance) api.Function { return inst.validate })
}

// runValidate calls the validator export that fn picks (whisperer_validate
// or a filter's or transform's) with kwargs.
func (v *version) runValidate(ctx context.Context, what string, idx int, kwargs json.RawMessage, fn func(*instance) api.Function) (json.RawMessage, map[string]any, error) {
	var (
		clean     json.RawMessage
		fieldErrs map[string]any
	)
	err := v.call(ctx, v.gate.calls, what, v.cfg.CallTimeout, func(ctx context.Context, inst *instance) error {
		ptr, err := inst.input(ctx, kwargs, v.cfg.maxInput())
		if err != nil {
			return err
		}
		s := inst.stack[:]
		s[0], s[1], s[2] = uint64(idx), uint64(ptr), uint64(len(kwargs))
		if err := fn(inst).CallWithStack(ctx, s); err != nil {
			return err
		}
		res := int64(s[0])
		switch {
		case res < 0:
			return fmt.Errorf("returned %d: %w", res, ErrFailed)
		case res == 0:
			clean = kwargs
			return nil
		}
		doc, err := inst.output(uint64(res), abi.MaxResultBytes)
		if err != nil {
			return err
		}
		clean, fieldErrs, err = parseValidation(doc)
		return err
	})
	return clean, fieldErrs, err
}

// parseValidation decodes {"kwargs": {...}} or {"errors": {...}}.
func parseValidation(doc []byte) (json.RawMessage, map[string]any, error) {
	var res struct {
		Kwargs json.RawMessage `json:"kwargs"`
		Errors map[string]any  `json:"errors"`
	}
	if err := json.Unmarshal(doc, &res); err != nil {
		return nil, nil, fmt.Errorf("result document is not valid JSON: %v: %w", err, ErrFailed)
	}
	if len(res.Errors) > 0 {
		return nil, res.Errors, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(res.Kwargs, &obj); err != nil || obj == nil {
		return nil, nil, fmt.Errorf(`result document has neither "errors" nor a "kwargs" object: %w`, ErrFailed)
	}
	return res.Kwargs, nil, nil
}

// callback calls whisperer_callback_record with the document and the
// record when the module exports it, else whisperer_callback with the
// document. Both are encoded before an instance is taken. what names the
// entry in errors.
func (v *version) callback(ctx context.Context, idx int, what string, doc *webhook.CallbackDoc) error {
	if doc == nil {
		return fmt.Errorf("plugin %s: %s: no callback document", v.file, what)
	}
	enc := encoders.Get().(*callbackEncoder)
	defer enc.release()
	docLen, err := enc.encode(doc, v.record)
	if err != nil {
		return fmt.Errorf("plugin %s: %s: encode the document: %w", v.file, what, err)
	}
	in, record := enc.buf, v.record
	if limit := v.cfg.maxInput(); record && len(in) > limit && docLen <= limit {
		// The record would push a document that fits over the input limit:
		// whisperer_callback, which every module must export, takes it.
		record = false
	}
	if !record {
		in = in[:docLen]
	}
	return v.call(ctx, v.gate.callbacks, what, v.cfg.CallbackTimeout, func(ctx context.Context, inst *instance) error {
		ptr, err := inst.input(ctx, in, v.cfg.maxInput())
		if err != nil {
			return err
		}
		s := inst.stack[:]
		s[0], s[1], s[2], s[3] = uint64(idx), uint64(ptr), uint64(docLen), uint64(len(in)-docLen)
		fn := inst.cb
		if record {
			fn = inst.cbRecord
		}
		if err := fn.CallWithStack(ctx, s); err != nil {
			return err
		}
		if code := int32(s[0]); code != 0 {
			return fmt.Errorf("returned %d: %w", code, ErrFailed)
		}
		return nil
	})
}
