package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

func (q *recordingQueue) Postpone(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error {
	if err := q.Store.Postpone(ctx, leases, until); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.postponed == nil {
		q.postponed = map[int64][]time.Time{}
	}
	for _, l := range leases {
		q.postponed[l.EventID] = append(q.postponed[l.EventID], until)
	}
	return nil
}

// timesReceiver records when each request arrived.
type timesReceiver struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *timesReceiver) handle(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
}

func (r *timesReceiver) sorted() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.SortedFunc(slices.Values(r.times), func(a, b time.Time) int { return a.Compare(b) })
}

// Ten events at once to a hook limited to 2 requests per second: the first
// goes at once, the other nine are postponed to slots half a second apart
// (each once, with no attempt spent), and the receiver never gets them
// faster than the rate. A hook without a limit gets its ten events, none
// postponed. The clock is real: the queue decides when a postponed event is
// due. Every check is a lower bound on times, which a slow machine cannot
// break; that the limit holds up no other hook is TestRateLimitHoldsNoWorker.
func TestRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var slow, fast timesReceiver
		slowRC, fastRC := newReceiver(t, slow.handle), newReceiver(t, fast.handle)
		slowHook := f.hook(t, slowRC.URL, func(w *webhook.Webhook) { w.Config = map[string]any{"rate_limit_per_second": 2} })
		f.hook(t, fastRC.URL)
		var events []webhook.Event
		for i := range 10 {
			events = append(events, storetest.Publish(t, s, "package-created", fmt.Sprintf(`{"i":%d}`, i))...)
		}
		d := f.start(t, delivery.Config{Workers: 4, BatchSize: 100, Now: time.Now})
		for _, ev := range events {
			poll.Until(t, 15*time.Second, "every event delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		}
		for _, ev := range events {
			if j := f.event(t, ev.ID); j.Event.RetryCount != 1 || len(j.Event.Attempts) != 1 {
				t.Errorf("event %d: %d attempts, retry_count %d; a postponement must cost none", ev.ID, len(j.Event.Attempts), j.Event.RetryCount)
			}
		}

		const interval = 500 * time.Millisecond
		// The limit is on when requests start: the attempt times. Never
		// ahead of the rate counted from the first (the queue stores
		// microseconds, hence the slack).
		var started []time.Time
		for _, ev := range events {
			if ev.WebhookID == slowHook.ID {
				a := f.event(t, ev.ID).Event.Attempts[0]
				started = append(started, a.AttemptedAt)
				f.q.mu.Lock()
				if p := f.q.postponed[ev.ID]; len(p) > 0 && a.AttemptedAt.Before(p[len(p)-1].Add(-time.Millisecond)) {
					t.Errorf("event %d started at %v, before its slot %v", ev.ID, a.AttemptedAt, p[len(p)-1])
				}
				f.q.mu.Unlock()
			}
		}
		slices.SortFunc(started, func(a, b time.Time) int { return a.Compare(b) })
		for k, at := range started {
			if early := started[0].Add(time.Duration(k) * interval).Sub(at); early > 2*time.Millisecond {
				t.Errorf("request %d started %v after the first: %v ahead of the rate", k+1, at.Sub(started[0]), early)
			}
		}
		// The receiver sees the same: a request arrives after it started.
		got := slow.sorted()
		if len(got) != 10 {
			t.Fatalf("the limited hook got %d requests, want 10", len(got))
		}
		for k, at := range got {
			if early := started[0].Add(time.Duration(k) * interval).Sub(at); early > 2*time.Millisecond {
				t.Errorf("request %d arrived %v after the first started: %v ahead of the rate", k+1, at.Sub(started[0]), early)
			}
		}
		// The postponements: nine, one per event, to slots exactly 1/rate apart.
		var untils []time.Time
		f.q.mu.Lock()
		for _, ev := range events {
			if ev.WebhookID != slowHook.ID {
				if len(f.q.postponed[ev.ID]) != 0 {
					t.Errorf("an event of the unlimited hook was postponed")
				}
				continue
			}
			untils = append(untils, f.q.postponed[ev.ID]...)
		}
		f.q.mu.Unlock()
		slices.SortFunc(untils, func(a, b time.Time) int { return a.Compare(b) })
		if len(untils) != 9 {
			t.Fatalf("%d postponements, want 9: %v", len(untils), untils)
		}
		for i := 1; i < len(untils); i++ {
			if gap := untils[i].Sub(untils[i-1]); gap != interval {
				t.Errorf("slots %d and %d are %v apart, want %v", i, i+1, gap, interval)
			}
		}
		if st := d.Stats(); st.Postponed != 9 || st.Delivered != 20 || st.Attempts != 20 {
			t.Errorf("stats = %+v", st)
		}
		if n := len(fast.sorted()); n != 10 {
			t.Errorf("the unlimited hook got %d requests, want 10", n)
		}
	})
}

// A limited hook's postponed events hold no worker: with one worker and a
// hook limited to one request an hour whose ten events are queued before
// the ten of an unlimited hook, the unlimited hook gets all ten while nine
// wait in the queue, each postponed once to its own slot. A worker that
// waited for a slot would keep the unlimited hook waiting for hours.
func TestRateLimitHoldsNoWorker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var slow, fast timesReceiver
		slowRC, fastRC := newReceiver(t, slow.handle), newReceiver(t, fast.handle)
		slowHook := f.hook(t, slowRC.URL, func(w *webhook.Webhook) { w.Config = map[string]any{"rate_limit_per_second": 1.0 / 3600} })
		storetest.Hook(t, s, f.user.ID, "package-updated", fastRC.URL)
		var limited []webhook.Event
		for i := range 10 {
			limited = append(limited, storetest.Publish(t, s, "package-created", fmt.Sprintf(`{"i":%d}`, i))...)
		}
		for i := range 10 {
			storetest.Publish(t, s, "package-updated", fmt.Sprintf(`{"i":%d}`, i))
		}
		d := f.start(t, delivery.Config{Workers: 1, Now: time.Now})
		poll.Until(t, 15*time.Second, "the unlimited hook's ten requests", func() bool { return len(fast.sorted()) == 10 })
		poll.Until(t, 15*time.Second, "nine postponements", func() bool { return d.Stats().Postponed == 9 })
		if n := len(slow.sorted()); n != 1 {
			t.Errorf("the limited hook got %d requests, want 1", n)
		}
		var untils []time.Time
		f.q.mu.Lock()
		for _, ev := range limited {
			if ev.WebhookID != slowHook.ID {
				t.Fatalf("event %d is not the limited hook's", ev.ID)
			}
			untils = append(untils, f.q.postponed[ev.ID]...)
		}
		f.q.mu.Unlock()
		slices.SortFunc(untils, func(a, b time.Time) int { return a.Compare(b) })
		if len(untils) != 9 {
			t.Fatalf("%d postponements, want 9: %v", len(untils), untils)
		}
		for i := 1; i < len(untils); i++ {
			if gap := untils[i].Sub(untils[i-1]); gap != time.Hour {
				t.Errorf("slots %d and %d are %v apart, want 1h", i, i+1, gap)
			}
		}
		// A receiver sees a request before the dispatcher counts its
		// attempt: wait for the count, then check all of it.
		poll.Until(t, 15*time.Second, "eleven deliveries counted", func() bool { return d.Stats().Delivered >= 11 })
		if st := d.Stats(); st.Postponed != 9 || st.Delivered != 11 || st.Attempts != 11 {
			t.Errorf("stats = %+v", st)
		}
	})
}
