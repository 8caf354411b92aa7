package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestHaltStopsEveryRunaway: a start function and an _initialize that never
// return fail their load with the time limit (they run under the host's
// watch, not inside instantiation), and recursion that never loops and
// never gets deep (2^60 calls) is stopped by the check on function entry.
// The start function of a healthy module still runs before its exports.
func TestHaltStopsEveryRunaway(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"haltstart", "haltinit", "fork"} {
		copyFile(t, filepath.Join("testdata", name+".wasm"), dir, name+".wasm")
	}
	cfg := testConfig(dir)
	cfg.CallTimeout, cfg.CallbackTimeout = 50*time.Millisecond, 200*time.Millisecond
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	for _, file := range []string{"haltstart.wasm", "haltinit.wasm"} {
		i := infoOf(t, h, file)
		if i.Loaded || !strings.Contains(i.Error, "instantiate: "+ErrTimeout.Error()+" (200ms)") {
			t.Errorf("%s: loaded=%v, error %q, want the instantiation's time limit", file, i.Loaded, i.Error)
		}
	}
	ctx := context.Background()
	for range 2 { // a fresh instance after the halted one
		if _, err := sink.countdown(t, "fork").Value(ctx, 0, json.RawMessage(`{}`)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("fork: %v, want %v", err, ErrTimeout)
		}
		if v, err := sink.countdown(t, "ok").Value(ctx, 0, json.RawMessage(`{}`)); err != nil || v != 7 {
			t.Fatalf("ok (set by the start function): %d, %v", v, err)
		}
	}
}

// TestGuestLoopLetsTheGCRun: native code cannot be preempted by the Go
// runtime, so a guest that loops without leaving it would hold up the
// stop-the-world of every garbage collection, and with it the whole process
// (the watchdog included). The halt check visits Go every so often: a
// collection finishes while the loop still runs. It runs in a child
// process, which a deadlock would hang past its deadline.
func TestGuestLoopLetsTheGCRun(t *testing.T) {
	if os.Getenv("WHISPERER_TEST_GC_CHILD") != "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGuestLoopLetsTheGCRun$", "-test.v")
		cmd.Env = append(os.Environ(), "WHISPERER_TEST_GC_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("child (a hang is killed after 2 minutes): %v\n%s", err, out)
		}
		return
	}
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "loop.wasm"), dir, "loop.wasm")
	cfg := testConfig(dir)
	cfg.CallTimeout = time.Minute // the loop outlasts the test's collections
	sink := newSink()
	startHost(t, cfg, sink)
	loop := sink.countdown(t, "loop")
	ctx, cancel := context.WithCancel(context.Background())
	var ended atomic.Bool
	done := make(chan error, 1)
	go func() {
		_, err := loop.Value(ctx, 0, json.RawMessage(`{}`))
		ended.Store(true)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // into the loop
	for range 3 {
		runtime.GC()
	}
	if ended.Load() {
		t.Fatalf("the loop ended before the collections: %v", <-done)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled loop: %v, want the caller's cancellation", err)
	}
}

// TestInstrumentKeepsSemantics: kitchen.wasm's checksum is the same from
// the module as compiled (plain wazero, no instrumentation), from the
// instrumented module, and through the host, call after call; and the
// instrumentation did add its checks (the rewritten code is larger).
func TestInstrumentKeepsSemantics(t *testing.T) {
	bin, err := os.ReadFile(filepath.Join("testdata", "kitchen.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := limitDepth(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) <= len(bin)+64 {
		t.Fatalf("instrumented module is %d bytes, the original %d: no checks added?", len(out), len(bin))
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	sum := func(b []byte) uint64 {
		m, err := rt.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(ctx)
		var first uint64
		for i := range 3 {
			res, err := m.ExportedFunction("whisperer_countdown").Call(ctx, 0, 0, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = res[0]
			} else if res[0] != first {
				t.Fatalf("call %d: %d, first %d", i, res[0], first)
			}
		}
		return first
	}
	want := sum(bin)
	if got := sum(out); got != want {
		t.Fatalf("instrumented checksum %d, original %d", got, want)
	}
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "kitchen.wasm"), dir, "kitchen.wasm")
	sink := newSink()
	startHost(t, testConfig(dir), sink)
	for range 3 {
		if got, err := sink.countdown(t, "kitchen").Value(ctx, 0, json.RawMessage(`{}`)); err != nil || uint64(got) != want {
			t.Fatalf("through the host: %d, %v; want %d", got, err, want)
		}
	}
}

// BenchmarkWazeroCall is what halt.go saves: one call of an exported
// identity function straight into wazero, without the host, as this host
// called before (close-on-context-done, a deadline per call) and as it
// calls now (neither).
func BenchmarkWazeroCall(b *testing.B) {
	// (module (func (export "f") (param i64) (result i64) local.get 0))
	bin := []byte("\x00asm\x01\x00\x00\x00\x01\x06\x01\x60\x01\x7e\x01\x7e\x03\x02\x01\x00\x07\x05\x01\x01f\x00\x00\x0a\x06\x01\x04\x00\x20\x00\x0b")
	for _, tc := range []struct {
		name            string
		close, deadline bool
	}{{"plain", false, false}, {"close-on-done", true, false}, {"close-on-done+deadline", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(tc.close))
			defer rt.Close(ctx)
			m, err := rt.Instantiate(ctx, bin)
			if err != nil {
				b.Fatal(err)
			}
			f, stack := m.ExportedFunction("f"), []uint64{1}
			for b.Loop() {
				c, cancel := ctx, context.CancelFunc(func() {})
				if tc.deadline {
					c, cancel = context.WithTimeout(ctx, time.Second)
				}
				if err := f.CallWithStack(c, stack); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		})
	}
}

// TestHaltReachesHostCallsAndLeaves plays the watchdog on escape.wasm: a
// loop calling a host function (directly, or through a table) meets the
// flag right after the call that set it, not a budget's worth of host
// calls later (a host function's time is not the guest's code: random_get
// of 32 MiB a call ran a 50 ms call for minutes); and a loop calling a
// long leaf function meets it within a few iterations, the leaf's size
// spent at its entry (a leaf has no depth wrapper).
func TestHaltReachesHostCallsAndLeaves(t *testing.T) {
	bin, err := os.ReadFile(filepath.Join("testdata", "escape.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := limitDepth(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	pokes := 0
	_, err = rt.NewHostModuleBuilder("t").NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module) {
		pokes++
		m.ExportedGlobal(haltExport).(api.MutableGlobal).Set(1)
	}).Export("poke").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"hostloop", "indirectloop", "leafloop"} {
		m, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		pokes = 0
		if fn == "leafloop" {
			m.ExportedGlobal(haltExport).(api.MutableGlobal).Set(1)
		}
		if _, err := m.ExportedFunction(fn).Call(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: %v, want the halt check's trap", fn, err)
		}
		n := api.DecodeI32(m.ExportedGlobal("n").Get())
		switch {
		case fn != "leafloop" && (pokes != 1 || n != 1):
			t.Errorf("%s: %d host calls in %d iterations after the flag, want 1", fn, pokes, n)
		case fn == "leafloop" && n > 64:
			t.Errorf("leafloop: %d iterations with the flag set, want a few", n)
		}
		m.Close(ctx)
	}
}

// TestLimitDepthRefusesTypedSelectOfReference: wazero 1.12 validates a
// typed select naming a reference type by its heap type but compiles it as
// one byte, and then panicked compiling the code it never checked (a
// 447-byte module crashed the server at load). Only the value types of
// WebAssembly 2.0 pass.
func TestLimitDepthRefusesTypedSelectOfReference(t *testing.T) {
	// One function () -> (): i32.const 0 ×3, select (1 type: 0x63 0x1a), drop.
	mod := func(types ...byte) []byte {
		code := append([]byte{0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x1c, 0x01}, types...)
		code = append(code, 0x1a, 0x0b)
		b := []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x05\x03\x01\x00\x01\x0a")
		b = append(b, byte(len(code)+2), 0x01, byte(len(code)))
		return append(b, code...)
	}
	if _, err := limitDepth(mod(0x7f)); err != nil {
		t.Fatalf("select (result i32): %v", err)
	}
	if _, err := limitDepth(mod(0x63, 0x1a)); err == nil || !strings.Contains(err.Error(), "typed select") {
		t.Fatalf("select of a reference type: %v, want it refused", err)
	}
}

// TestStopHaltsCallsInFlight: Stop whose context ends while a call loops
// halts the call (it fails with the host's reason) and does not close the
// runtime under it: closing frees the memory the guest is writing (a
// SIGSEGV in 5 of 5 runs before).
func TestStopHaltsCallsInFlight(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "loop.wasm"), dir, "loop.wasm")
	cfg := testConfig(dir)
	cfg.CallTimeout = time.Minute
	sink := newSink()
	h, _ := startHost(t, cfg, sink) // its cleanup's Stop finds it stopped
	loop := sink.countdown(t, "loop")
	done := make(chan error, 1)
	go func() {
		_, err := loop.Value(context.Background(), 0, json.RawMessage(`{}`))
		done <- err
	}()
	for h.gate.inFlight.Load() == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: %v, want the context's error", err)
	}
	if err := <-done; !errors.Is(err, errStopping) {
		t.Errorf("call: %v, want %v", err, errStopping)
	}
}
