package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/whisperer/whisperer/internal/poll"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileLoad makes 80 concurrent calls into the hostile modules: the
// recursing validator and countdown (deeprec), the memory bomb, the endless
// loop; bigmemory is refused at load. It returns the errors' count.
func hostileLoad(t testing.TB, dir string, cfg Config) (*Host, int) {
	t.Helper()
	for _, name := range []string{"membomb", "bigmemory", "deeprec", "loop"} {
		copyFile(t, filepath.Join("testdata", name+".wasm"), dir, name+".wasm")
	}
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	calls := []func() error{
		func() error {
			_, _, err := sink.countdown(t, "deeprec").Validate(context.Background(), json.RawMessage(`{"n":1}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "deeprec").Value(context.Background(), 1, json.RawMessage(`{}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "membomb").Value(context.Background(), 1, json.RawMessage(`{}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "loop").Value(context.Background(), 0, json.RawMessage(`{}`))
			return err
		},
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	if only := os.Getenv("WHISPERER_RSS_ONLY"); only != "" {
		k, _ := strconv.Atoi(only)
		calls = calls[k : k+1]
	}
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := calls[i%len(calls)](); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return h, failed
}

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(t testing.TB, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestHostilePeakRSS runs hostileLoad in a child process (a fresh VmHWM)
// and reports its peak and kept RSS. WHISPERER_RSS_CALLS=0 measures the
// base: the same host with the modules loaded and no calls.
func TestHostilePeakRSS(t *testing.T) {
	if os.Getenv("WHISPERER_RSS_CHILD") == "1" {
		cfg := testConfig(t.TempDir())
		if os.Getenv("WHISPERER_RSS_CALLS") == "0" {
			for _, name := range []string{"membomb", "bigmemory", "deeprec", "loop"} {
				copyFile(t, filepath.Join("testdata", name+".wasm"), cfg.Dir, name+".wasm")
			}
			startHost(t, cfg, newSink())
		} else {
			start := time.Now()
			_, failed := hostileLoad(t, cfg.Dir, cfg)
			fmt.Printf("calls failed=%d in %v\n", failed, time.Since(start).Round(time.Millisecond))
		}
		printRSS(t)
		return
	}
	base, _ := childRSS(t, "TestHostilePeakRSS", "0")
	hwm, rss := childRSS(t, "TestHostilePeakRSS", "80")
	t.Logf("base %d MiB, peak %d MiB, kept %d MiB", base>>10, hwm>>10, rss>>10)
	// Instances in flight × (linear memory + call stack: the budget, and
	// wazero's copy of it while the stack doubles) + slack for the Go heap.
	cfg := testConfig("").WithDefaults()
	bound := int64(cfg.PoolSize)*(int64(cfg.MemoryLimitMB)+3*stackBudget>>20)<<10 + 32<<10
	if hwm-base > bound {
		t.Errorf("80 hostile calls took the peak RSS %d MiB over the base, more than %d MiB", (hwm-base)>>10, bound>>10)
	}
}

// printRSS is the child's side of childRSS.
func printRSS(t *testing.T) {
	runtime.GC()
	fmt.Printf("VmHWM=%d VmRSS=%d\n", procStatus(t, "VmHWM"), procStatus(t, "VmRSS"))
}

// childRSS runs test in a child process (a fresh VmHWM) with
// WHISPERER_RSS_CALLS=calls and returns the VmHWM and VmRSS (KiB) it
// printed with printRSS.
func childRSS(t *testing.T, test, calls string) (hwm, rss int64) {
	t.Helper()
	if testing.Short() {
		t.Skip("spawns children")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory would be measured too")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), "WHISPERER_RSS_CHILD=1", "WHISPERER_RSS_CALLS="+calls)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(line, "VmHWM=%d VmRSS=%d", &hwm, &rss); err == nil {
			t.Logf("calls=%s: %s", calls, line)
		} else if strings.HasPrefix(line, "calls failed") {
			t.Log(line)
		}
	}
	if hwm == 0 {
		t.Fatalf("child printed no VmHWM:\n%s", out)
	}
	return hwm, rss
}

// TestIdleMemoryBoundedAcrossFiles: 16 plugin files whose countdown grows
// memory to ~15 MiB and whose validator recurses ~4 MiB deep, both
// returning normally. WebAssembly memory never shrinks and wazero keeps a
// grown call stack, so every healthy instance kept both while idle:
// pool_size of them per file. Idle instances now keep at most idleBudget
// between all files, and none that ran past keepDepth; the peak is the
// documented bound.
func TestIdleMemoryBoundedAcrossFiles(t *testing.T) {
	const files = 16
	cfg := testConfig(t.TempDir())
	cfg.MemoryLimitMB, cfg.PoolSize = 16, 2
	cfg.CallTimeout = 10 * time.Second // page faults on a busy machine; not what is tested
	if os.Getenv("WHISPERER_RSS_CHILD") == "1" {
		for i := range files {
			copyFile(t, filepath.Join("testdata", "grow.wasm"), cfg.Dir, fmt.Sprintf("grow%d.wasm", i))
		}
		sink := newSink()
		startHost(t, cfg, sink)
		if os.Getenv("WHISPERER_RSS_CALLS") != "0" {
			sink.mu.Lock()
			cds := slices.Collect(maps.Values(sink.countdowns))
			sink.mu.Unlock()
			if len(cds) != files {
				t.Fatalf("%d countdowns registered, want %d", len(cds), files)
			}
			var wg sync.WaitGroup
			for _, cd := range cds {
				for range cfg.PoolSize {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if v, err := cd.Value(context.Background(), 0, json.RawMessage(`{}`)); v != 1 || err != nil {
							t.Errorf("grow = %d, %v", v, err)
						}
					}()
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, _, err := cd.Validate(context.Background(), json.RawMessage(`{"deep": 1}`)); err != nil {
							t.Errorf("deep validator: %v", err)
						}
					}()
				}
			}
			wg.Wait()
		}
		printRSS(t)
		return
	}
	base, _ := childRSS(t, "TestIdleMemoryBoundedAcrossFiles", "0")
	hwm, rss := childRSS(t, "TestIdleMemoryBoundedAcrossFiles", "2")
	t.Logf("base %d MiB, peak %d MiB, kept %d MiB", base>>10, hwm>>10, rss>>10)
	// The documented bound: idle instances' budget, and 2 lanes × pool_size
	// calls in flight × (memory_limit_mb + 24 MiB of stack); 32 MiB of slack
	// for the Go heap.
	c := cfg.WithDefaults()
	idle := c.idleBudget() >> 10
	inFlight := int64(2*c.PoolSize) * (int64(c.MemoryLimitMB) + 3*stackBudget>>20) << 10
	if rss-base > idle+32<<10 {
		t.Errorf("idle instances kept %d MiB over the base, more than the %d MiB budget (+32)", (rss-base)>>10, idle>>10)
	}
	if hwm-base > idle+inFlight+32<<10 {
		t.Errorf("peak RSS %d MiB over the base, more than %d MiB", (hwm-base)>>10, (idle+inFlight+32<<10)>>10)
	}
}

// TestCallsInFlightBoundedAcrossFiles: however many calls arrive for
// however many plugin files, at most pool_size countdown and validator
// calls run at once (each holds an instance: memory and a stack).
func TestCallsInFlightBoundedAcrossFiles(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.PoolSize = 2
	h, failed := hostileLoad(t, cfg.Dir, cfg)
	if failed != 80 {
		t.Errorf("%d of 80 hostile calls failed", failed)
	}
	if p := h.gate.peak.Load(); p > int64(cfg.PoolSize) {
		t.Fatalf("%d calls ran at once, pool_size is %d", p, cfg.PoolSize)
	}
}

// TestDeepRecursionStopsAtTheStackBudget: a recursing guest traps at the
// host's depth check, with an error that says so, long before wazero's
// own ~100 MB stack ceiling.
func TestDeepRecursionStopsAtTheStackBudget(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "deeprec.wasm"), dir, "deeprec.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	cfg.CallTimeout = 5 * time.Second // the budget, not the deadline, must stop it
	startHost(t, cfg, sink)
	cd := sink.countdown(t, "deeprec")
	want := fmt.Sprintf("call stack over the %d MiB limit", stackBudget>>20)
	for range 2 {
		_, err := cd.Value(context.Background(), 1, json.RawMessage(`{}`))
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), want) {
			t.Fatalf("countdown: %v, want %v containing %q", err, ErrCrashed, want)
		}
		_, _, err = cd.Validate(context.Background(), json.RawMessage(`{"n":1}`))
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), want) {
			t.Fatalf("validator: %v, want %v containing %q", err, ErrCrashed, want)
		}
	}
}

// TestSlowCallbacksLeaveALaneForOthers: callbacks of a plugin that never
// returns take at most pool_size-1 of the host's callback places, so
// another plugin's callback still runs.
func TestSlowCallbacksLeaveALaneForOthers(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "loop.wasm"), dir, "loop.wasm")
	copyFile(t, filepath.Join("testdata", "fastcb.wasm"), dir, "fast.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	cfg.PoolSize, cfg.CallbackTimeout = 2, time.Minute
	h, _ := startHost(t, cfg, sink)
	slow, fast := sink.callback(t, "loop"), sink.callback(t, "fast")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = slow(ctx, callbackDoc(t, 100))
		}()
	}
	defer wg.Wait()
	defer cancel()
	poll.Until(t, 10*time.Second, "the slow callbacks to run", func() bool { return h.gate.inFlight.Load() >= int64(cfg.PoolSize-1) })
	// A deadline only so that the failure is reported, not hung.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := fast(fctx, callbackDoc(t, 100)); err != nil {
		t.Fatalf("fast callback while the slow ones run: %v", err)
	}
}
