package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Inline ("async": false) delivery shares the result writer with the
// workers: each result goes into the collector's next batch (written
// within resultLinger), and its attempt's worker slot is freed
// only once the batch is written, so DeliverNow still answers with written
// results and never holds more claimed-but-unwritten events than Workers.
// A batch frees all its slots at once, so the next claim takes them all in
// one statement: a fan-out is claimed in waves sized to the free workers.

// inlineSlots counts a DeliverNow call's free workers.
type inlineSlots struct {
	mu   sync.Mutex
	cond sync.Cond
	free int
}

func newInlineSlots(n int) *inlineSlots {
	s := &inlineSlots{free: n}
	s.cond.L = &s.mu
	return s
}

// take waits for a free worker and takes every free one, at most most.
func (s *inlineSlots) take(most int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.free == 0 {
		s.cond.Wait()
	}
	n := min(s.free, most)
	s.free -= n
	return n
}

func (s *inlineSlots) put(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	s.mu.Unlock()
	s.cond.Signal()
}

// inlineWaiter is an inline result waiting for the collector's write.
type inlineWaiter struct {
	slots *inlineSlots
	done  chan struct{}
}

// inlineCtx bounds one database call of an inline delivery by a lease: a
// hung connection must not block the request, nor Stop, forever. The call
// does not end with ctx (a client hanging up is no reason to lose a
// claim or a result).
func (d *Dispatcher) inlineCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Lease)
}

// claimInline is ClaimEvents within a lease, a panic turned into an error.
func (d *Dispatcher) claimInline(ctx context.Context, ids []int64) ([]webhook.Job, error) {
	cctx, cancel := d.inlineCtx(ctx)
	defer cancel()
	return safely(d, "claim inline events", func() ([]webhook.Job, error) {
		return d.q.ClaimEvents(cctx, d.cfg.Owner, ids, d.cfg.Lease)
	})
}

// writeInline writes an inline result and frees its slot once written (or
// once a lease has passed: the collector keeps retrying, and the caller
// answers with the attempt's outcome). Without a running collector (before
// Start) it writes the result itself.
func (d *Dispatcher) writeInline(ctx context.Context, r webhook.Result, slots *inlineSlots) {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if !started {
		defer slots.put(1)
		wctx, cancel := d.inlineCtx(ctx)
		defer cancel()
		if err := d.complete(wctx, []webhook.Result{r}); err != nil {
			d.log.Error("write an inline result failed; its lease will expire and the event will be retried",
				"event_id", r.EventID, "error", err)
		}
		return
	}
	ref := webhook.LeaseRef{EventID: r.EventID, Lease: r.Lease}
	w := &inlineWaiter{slots: slots, done: make(chan struct{})}
	d.mu.Lock()
	d.waiters[ref] = w
	d.mu.Unlock()
	timer := time.NewTimer(d.cfg.Lease)
	defer timer.Stop()
	select {
	case d.results <- r:
		select {
		case <-w.done:
			return // written() freed the slot
		case <-timer.C:
			d.log.Error("an inline result is not written after a lease; answering, the writer keeps retrying", "event_id", r.EventID)
		}
	case <-d.runCtx.Done():
	}
	d.mu.Lock()
	_, still := d.waiters[ref]
	delete(d.waiters, ref)
	d.mu.Unlock()
	if still {
		slots.put(1)
	}
}

// written tells the inline deliveries waiting for results of batch that
// the writer is done with them, freeing their slots per DeliverNow call at
// once.
// awaited reports whether a DeliverNow call waits for r to be written.
func (d *Dispatcher) awaited(r *webhook.Result) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.waiters[webhook.LeaseRef{EventID: r.EventID, Lease: r.Lease}]
	return ok
}

func (d *Dispatcher) written(batch []webhook.Result) {
	d.mu.Lock()
	if len(d.waiters) == 0 {
		d.mu.Unlock()
		return
	}
	freed := map[*inlineSlots]int{}
	for _, r := range batch {
		ref := webhook.LeaseRef{EventID: r.EventID, Lease: r.Lease}
		if w, ok := d.waiters[ref]; ok {
			delete(d.waiters, ref)
			close(w.done)
			freed[w.slots]++
		}
	}
	d.mu.Unlock()
	for s, n := range freed {
		s.put(n)
	}
}
