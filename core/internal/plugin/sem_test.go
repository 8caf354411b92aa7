package plugin

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/internal/poll"
)

// TestSemHandsPlacesInOrder: a released place goes to the first waiter, a
// waiter whose context ends leaves the queue, and a place free when the
// context has ended is still taken.
func TestSemHandsPlacesInOrder(t *testing.T) {
	s := newSem(1)
	ctx := context.Background()
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	gaveUp, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() { errs <- s.acquire(gaveUp) }()
	got := make(chan int, 2)
	for i := range 2 {
		waitWaiters(t, s, i+1)
		go func() {
			if err := s.acquire(ctx); err != nil {
				t.Error(err)
			}
			got <- i
		}()
	}
	waitWaiters(t, s, 3)
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiter whose context ended: %v", err)
	}
	s.release()
	if first := <-got; first != 0 {
		t.Fatalf("waiter %d was served first", first)
	}
	s.release()
	<-got
	s.release()
	if s.n != 0 || len(s.waiters) != 0 {
		t.Fatalf("after every release: %d taken, %d waiting", s.n, len(s.waiters))
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if err := s.acquire(done); err != nil {
		t.Fatalf("a free place with an ended context: %v", err)
	}
}

// TestSemCancelRacingRelease: waiters that give up while places are handed
// out never lose or duplicate one.
func TestSemCancelRacingRelease(t *testing.T) {
	const size = 2
	s := newSem(size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, peak := 0, 0
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*50*time.Microsecond)
			defer cancel()
			if s.acquire(ctx) != nil {
				return
			}
			mu.Lock()
			held++
			peak = max(peak, held)
			mu.Unlock()
			time.Sleep(20 * time.Microsecond)
			mu.Lock()
			held--
			mu.Unlock()
			s.release()
		}()
	}
	wg.Wait()
	if peak > size {
		t.Fatalf("%d places held at once, size %d", peak, size)
	}
	if s.n != 0 || len(s.waiters) != 0 {
		t.Fatalf("at the end: %d taken, %d waiting", s.n, len(s.waiters))
	}
	for range size {
		if err := s.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// waitWaiters waits until s has n waiters.
func waitWaiters(t *testing.T, s *sem, n int) {
	t.Helper()
	poll.Until(t, 10*time.Second, "the waiters to queue", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiters) >= n
	})
}
