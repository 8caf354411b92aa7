package delivery

import (
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// limiter applies hooks' config.rate_limit_per_second on one dispatcher.
// Each limited hook gets a slot schedule 1/rate apart (GCRA, burst 1): a
// job whose slot is now is sent; a later one is postponed in the queue to
// its slot, which is reserved for that event, so it is sent as soon as it
// comes back, without a second wait. Workers never sleep on a limit, so
// other hooks are not slowed.
//
// The limit is per dispatcher (per node): with n nodes a hook can receive
// up to n times its rate. Requests never start before their slot; a job
// that comes back late (a poll later) can start less than 1/rate after the
// one before it, but the count of requests since the first never exceeds
// 1 + rate × elapsed.
type limiter struct {
	mu    sync.Mutex
	hooks map[int64]*bucket
	// slots are the times reserved for postponed events, by event id.
	slots map[int64]time.Time
	// max bounds each map before idle entries are swept; ttl is how long a
	// reserved slot is kept after it passed (the event went elsewhere).
	max int
	ttl time.Duration
}

type bucket struct {
	next time.Time // the first free slot
}

// maxLimiterEntries bounds the limiter's maps (hooks, reserved slots)
// before a sweep drops the idle entries.
const maxLimiterEntries = 10000

func newLimiter(ttl time.Duration) *limiter {
	return &limiter{hooks: map[int64]*bucket{}, slots: map[int64]time.Time{}, max: maxLimiterEntries, ttl: ttl}
}

// slotEarly is how early a postponed event may come back and still use its
// slot: the queue stores times in microseconds.
const slotEarly = time.Millisecond

// admit reports whether job may be sent at now; when it may not, until is
// the slot it is postponed to.
// maxInterval caps the spacing of a tiny rate limit.
const maxInterval = 24 * time.Hour

func (l *limiter) admit(job *webhook.Job, now time.Time) (until time.Time, ok bool) {
	rate, limited := job.Webhook.RateLimit()
	if !limited {
		return time.Time{}, true
	}
	// A rate too high to matter is no limit; one so low that its interval
	// overflows (or is absurd) is one a day, not no limit.
	secs := 1 / rate
	if secs < 1e-9 {
		return time.Time{}, true
	}
	interval := time.Duration(min(secs, maxInterval.Seconds()) * float64(time.Second))
	l.mu.Lock()
	defer l.mu.Unlock()
	if slot, ok := l.slots[job.Event.ID]; ok {
		if !now.Before(slot.Add(-slotEarly)) {
			delete(l.slots, job.Event.ID)
			return time.Time{}, true
		}
		return slot, false // back early (redelivered, released): it keeps its place
	}
	b := l.hooks[job.Webhook.ID]
	if b == nil {
		if len(l.hooks) >= l.max {
			l.sweep(now)
		}
		b = &bucket{}
		l.hooks[job.Webhook.ID] = b
	}
	slot := b.next
	if slot.Before(now) {
		slot = now
	}
	b.next = slot.Add(interval)
	if !slot.After(now) {
		return time.Time{}, true
	}
	if len(l.slots) >= l.max {
		l.sweep(now)
	}
	l.slots[job.Event.ID] = slot
	return slot, false
}

// sweep drops buckets with no reserved future (a fresh bucket behaves the
// same) and slots long past (their event was delivered elsewhere, given up
// or deleted). l.mu is held.
func (l *limiter) sweep(now time.Time) {
	for id, b := range l.hooks {
		if !b.next.After(now) {
			delete(l.hooks, id)
		}
	}
	for id, slot := range l.slots {
		if slot.Add(l.ttl).Before(now) {
			delete(l.slots, id)
		}
	}
}
