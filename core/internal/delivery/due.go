package delivery

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// dueSlack is added to a known due time before the claim loop claims for
// it: the store adds the wait to the database's clock when it writes the
// row, a moment after the node computed it.
const dueSlack = 5 * time.Millisecond

// maxDueTimes bounds the due times a node remembers; beyond it the later
// ones are left to the poll (delivery.poll_interval).
const maxDueTimes = 4096

// dueTimes are the times at which retries and postponements this node
// wrote fall due, and the earliest due time the database held when a
// claim found nothing (learnNextDue: a retry another node wrote): the
// claim loop sleeps until the earliest instead of the next poll, so a
// retry due at T is claimed at T, not up to a poll interval later. rearm
// (cap 1) tells a sleeping claim loop that an earlier time arrived.
type dueTimes struct {
	mu    sync.Mutex
	times timeHeap
	rearm chan struct{}
	// read is when a claim loop last read the next due time.
	read time.Time
}

// timeToRead reports whether nextDueEvery has passed since the last read
// of the next due time, and if so counts one now.
func (q *dueTimes) timeToRead(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Sub(q.read) < nextDueEvery {
		return false
	}
	q.read = now
	return true
}

func (q *dueTimes) add(t time.Time) {
	q.mu.Lock()
	earlier := len(q.times) == 0 || t.Before(q.times[0])
	if len(q.times) < maxDueTimes || earlier {
		heap.Push(&q.times, t)
	}
	q.mu.Unlock()
	if earlier {
		select {
		case q.rearm <- struct{}{}:
		default:
		}
	}
}

// earliest is the first remembered due time.
func (q *dueTimes) earliest() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.times) == 0 {
		return time.Time{}, false
	}
	return q.times[0], true
}

// consume forgets the times a claim starting at now covers.
func (q *dueTimes) consume(now time.Time) {
	q.mu.Lock()
	for len(q.times) > 0 && !q.times[0].Add(dueSlack).After(now) {
		heap.Pop(&q.times)
	}
	q.mu.Unlock()
}

// nextDueEvery spaces the reads of the next due time: empty claims come in
// bursts under load (wake-ups from other nodes' publishes), and a due time
// learnt this long ago is still early enough for a retry's countdown.
const nextDueEvery = 100 * time.Millisecond

// learnNextDue asks the queue when its next pending event falls due, after
// a claim found nothing due, and remembers it when it is earlier than any
// time known. It is one read of the due index per empty claim, at most one
// per nextDueEvery: a claim that found work is followed by another claim
// or a wake-up anyway. A failure leaves it to the poll.
func (d *Dispatcher) learnNextDue() {
	if !d.dues.timeToRead(time.Now()) {
		return
	}
	ctx, cancel := context.WithTimeout(d.claimCtx, claimTimeout)
	defer cancel()
	type next struct {
		wait time.Duration
		ok   bool
	}
	n, err := safely(d, "next due time", func() (next, error) {
		wait, ok, err := d.q.NextDue(ctx)
		return next{wait, ok}, err
	})
	if err != nil || !n.ok {
		if err != nil && d.claimCtx.Err() == nil {
			d.log.Warn("read the next due time failed; relying on the poll", "error", err)
		}
		return
	}
	at := d.cfg.Now().Add(n.wait)
	if known, ok := d.dues.earliest(); !ok || at.Before(known) {
		d.dues.add(at)
	}
}

// noteRetries remembers when the pending results just written fall due.
func (d *Dispatcher) noteRetries(batch []webhook.Result) {
	for i := range batch {
		if batch[i].State == webhook.StatePending {
			d.dues.add(batch[i].NextAttemptAt)
		}
	}
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
