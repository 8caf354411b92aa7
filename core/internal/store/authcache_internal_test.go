package store

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Requests that arrive while a data_version read runs must not trust it
// (it may have read before their revocation committed): they share the
// next read, one read for all of them.
func TestVersionGateSharesTheNextRead(t *testing.T) {
	for _, secondOK := range []bool{true, false} {
		var g versionGate
		var reads atomic.Int32
		var secondStarted atomic.Bool
		release := make(chan struct{})
		first := func() bool { reads.Add(1); <-release; return true }
		second := func() bool { reads.Add(1); secondStarted.Store(true); return secondOK }

		done := make(chan bool, 1)
		go func() { done <- g.check(first) }()
		waitFor(t, &g, func() bool { return g.running })

		var wg sync.WaitGroup
		results := make([]bool, 3)
		sawSecond := make([]bool, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = g.check(second)
				sawSecond[i] = secondStarted.Load()
			}()
		}
		// One of them queues the next read; the others wait for it.
		waitFor(t, &g, func() bool { return g.queued && g.waiting == 2 })
		close(release)
		if !<-done {
			t.Fatal("the first read failed")
		}
		wg.Wait()
		if n := reads.Load(); n != 2 {
			t.Errorf("%d reads for 4 requests, want 2 (the running one and one shared)", n)
		}
		for i := range 3 {
			if !sawSecond[i] || results[i] != secondOK {
				t.Errorf("request %d: result %v (want %v), returned before the second read started: %v",
					i, results[i], secondOK, !sawSecond[i])
			}
		}
	}
}

func waitFor(t *testing.T, g *versionGate, cond func() bool) {
	t.Helper()
	for range 1_000_000 {
		g.mu.Lock()
		ok := cond()
		g.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
	t.Fatal("the gate never reached the state")
}
