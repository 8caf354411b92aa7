package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// semState is what s holds: places taken and waiters.
func semState(s *sem) (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, len(s.waiters)
}

// checkQuiet: with no call in flight, every count is back to zero.
func checkQuiet(t *testing.T, h *Host, v *version) {
	t.Helper()
	for name, s := range map[string]*sem{"gate.calls": h.gate.calls, "gate.callbacks": h.gate.callbacks, "slots": v.slots, "cbSlots": v.cbSlots} {
		if n, w := semState(s); n != 0 || w != 0 {
			t.Errorf("%s: %d taken, %d waiting", name, n, w)
		}
	}
	if n := h.gate.inFlight.Load(); n != 0 {
		t.Errorf("%d in flight", n)
	}
	h.gate.watch.mu.Lock()
	if h.gate.watch.calls != nil {
		t.Errorf("the watchdog still lists a call")
	}
	h.gate.watch.mu.Unlock()
	v.mu.Lock()
	if v.busy != 0 {
		t.Errorf("%d busy", v.busy)
	}
	v.mu.Unlock()
	h.gate.idle.mu.Lock()
	n := 0
	for inst := h.gate.idle.newest; inst != nil; inst = inst.older {
		if inst.ctx.Context != context.Background() {
			t.Errorf("an idle instance keeps a caller's context")
		}
		if inst.watch.ctx != nil || inst.watch.next != nil || inst.watch.prev != nil {
			t.Errorf("an idle instance is still watched")
		}
		n++
	}
	if n != len(v.idle) {
		t.Errorf("idle list of %d, version's idle %d", n, len(v.idle))
	}
	h.gate.idle.mu.Unlock()
}

func stressHost(t *testing.T, pool int) (*Host, *memSink, *version) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "spinwork.wasm"), dir, "spinwork.wasm")
	cfg := testConfig(dir)
	cfg.PoolSize = pool
	cfg.CallTimeout, cfg.CallbackTimeout = 2*time.Second, 2*time.Second
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	h.mu.Lock()
	v := h.entries["spinwork.wasm"].cur
	h.mu.Unlock()
	return h, sink, v
}

// TestSemStress: many callers with short random deadlines on a
// plugin of two instances: no place leaks, no count goes wrong, and a
// later call of each kind succeeds.
func TestSemStress(t *testing.T) {
	h, sink, v := stressHost(t, 2)
	cd := sink.countdown(t, "spin")
	cb := sink.callback(t, "spin")
	tr := sink.transform(t, "echo")
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(3000))*time.Microsecond)
				var err error
				switch r.IntN(3) {
				case 0:
					_, err = cd.Value(ctx, r.IntN(50), json.RawMessage(`{}`))
				case 1:
					err = cb(ctx, &webhook.CallbackDoc{})
				case 2:
					var res webhook.TransformResult
					res, err = tr.Apply(ctx, json.RawMessage(`{"body":"x"}`), &webhook.TransformInput{})
					if err == nil && string(res.Body) != "x" {
						t.Errorf("body %q", res.Body)
					}
				}
				cancel()
				k := "ok"
				if err != nil {
					k = err.Error()
					if i := strings.LastIndex(k, ": "); i >= 0 {
						k = k[i+2:]
					}
				}
				mu.Lock()
				outcomes[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("outcomes: %v", outcomes)
	checkQuiet(t, h, v)
	if _, err := cd.Value(context.Background(), 1, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := cb(context.Background(), &webhook.CallbackDoc{}); err != nil {
		t.Fatal(err)
	}
	checkQuiet(t, h, v)
}

// TestTransformBodyNotAliased: a transform's result outlives the
// next call of its instance, which overwrites the guest memory it was read
// from.
func TestTransformBodyNotAliased(t *testing.T) {
	_, sink, _ := stressHost(t, 1)
	tr := sink.transform(t, "echo")
	ctx := context.Background()
	var kept []webhook.TransformResult
	for i := range 20 {
		kw := fmt.Sprintf(`{"body":%s,"headers":{"X-N":"%d%s"}}`, map[bool]string{true: `"s` + strings.Repeat("a", i) + `"`, false: `[` + strings.Repeat("1,", i) + `2]`}[i%2 == 0], i, strings.Repeat("h", i))
		res, err := tr.Apply(ctx, json.RawMessage(kw), &webhook.TransformInput{})
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, res)
	}
	for i, res := range kept {
		body := `[` + strings.Repeat("1,", i) + `2]`
		if i%2 == 0 {
			body = "s" + strings.Repeat("a", i)
		}
		if string(res.Body) != body || res.Headers["X-N"] != fmt.Sprint(i)+strings.Repeat("h", i) {
			t.Errorf("result %d changed: %q %v", i, res.Body, res.Headers)
		}
	}
}

// TestStopMidFlight: Stop whose context ends while many calls run
// or wait halts or fails them all; none hangs and the watchdog lists none.
func TestStopMidFlight(t *testing.T) {
	for round := range 3 {
		h, sink, v := stressHost(t, 3)
		cd := sink.countdown(t, "spin")
		cb := sink.callback(t, "spin")
		var wg sync.WaitGroup
		for g := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					var err error
					if (g+i)%2 == 0 {
						_, err = cd.Value(context.Background(), 2000, json.RawMessage(`{}`)) // 40ms
					} else {
						err = cb(context.Background(), &webhook.CallbackDoc{})
					}
					if err != nil {
						if !errors.Is(err, errStopping) && !errors.Is(err, ErrUnloaded) {
							t.Errorf("call: %v", err)
						}
						return
					}
				}
			}()
		}
		poll.Until(t, 10*time.Second, "calls in flight", func() bool { return h.gate.inFlight.Load() >= 2 })
		time.Sleep(time.Duration(round) * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		err := h.Stop(ctx)
		t.Logf("round %d: Stop took %v: %v", round, time.Since(start), err)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Stop: %v", err)
		}
		// Callers still holding the plugin's functions must not keep its
		// retired version busy past the halt (Stop refuses their new calls).
		if err != nil && strings.Contains(err.Error(), "runtime left open") {
			t.Errorf("Stop left the runtime open: %v", err)
		}
		wg.Wait()
		checkQuiet(t, h, v)
	}
}

// TestSemCancelRace: waiters cancelled from another goroutine at
// the moment places are released: the count never passes the size, every
// place comes back, and none is handed out twice.
func TestSemCancelRace(t *testing.T) {
	for size := 1; size <= 3; size++ {
		s := newSem(size)
		var held, peak, wins, fails atomicCounter
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(g), uint64(size)))
				for range 300 {
					ctx, cancel := context.WithCancel(context.Background())
					if r.IntN(2) == 0 {
						go cancel()
					} else if r.IntN(2) == 0 {
						cancel()
					}
					if err := s.acquire(ctx); err != nil {
						fails.add(1)
						cancel()
						continue
					}
					wins.add(1)
					if n := held.add(1); n > size {
						peak.add(1)
					}
					if r.IntN(4) == 0 {
						time.Sleep(time.Microsecond)
					}
					held.add(-1)
					s.release()
					cancel()
				}
			}()
		}
		wg.Wait()
		if peak.get() != 0 {
			t.Errorf("size %d: more than %d held %d times", size, size, peak.get())
		}
		if n, w := semState(s); n != 0 || w != 0 {
			t.Errorf("size %d: at the end %d taken, %d waiting", size, n, w)
		}
		t.Logf("size %d: %d taken, %d gave up", size, wins.get(), fails.get())
	}
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add(d int) int { c.mu.Lock(); defer c.mu.Unlock(); c.n += d; return c.n }
func (c *atomicCounter) get() int      { return c.add(0) }
