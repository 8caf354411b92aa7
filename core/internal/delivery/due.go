package delivery

import (
	"container/heap"
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
// wrote fall due: the claim loop sleeps until the earliest instead of the
// next poll, so a retry due at T is claimed at T, not up to a poll
// interval later. rearm (cap 1) tells a sleeping claim loop that an
// earlier time arrived.
type dueTimes struct {
	mu    sync.Mutex
	times timeHeap
	rearm chan struct{}
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
