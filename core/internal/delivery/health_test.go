package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// fakeClock is a dispatcher clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (f *fixture) hookNow(t *testing.T, id int64) webhook.Webhook {
	t.Helper()
	h, err := f.s.Webhook(context.Background(), webhook.Scope{All: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A 410 Gone is final: the event is given up after that one attempt and the
// hook is deactivated with the reason; its other queued events are then
// given up without a request.
func TestGoneDeactivatesHook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
		h := f.hook(t, rc.URL)
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		d := f.start(t, delivery.Config{Workers: 1, BatchSize: 1})
		poll.Until(t, 15*time.Second, "the event given up", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateGivenUp })
		if j := f.event(t, ev.ID); j.Event.RetryCount != 1 || len(j.Event.Attempts) != 1 || j.Event.Attempts[0].Status != 410 {
			t.Fatalf("event after a 410: %+v", j.Event)
		}
		got := f.hookNow(t, h.ID)
		if got.IsActive || got.DisabledReason != store.ReasonGone || got.DisabledAt == nil {
			t.Fatalf("hook after a 410: %+v", got)
		}
		if n := rc.hits.Load(); n != 1 {
			t.Errorf("receiver hit %d times, want 1", n)
		}
		if st := d.Stats(); st.GivenUp != 1 || st.Failed != 0 {
			t.Errorf("stats = %+v", st)
		}
	})
}

// A job claimed after its hook was deactivated is not sent: it is given up
// with the reason, and its owner can redeliver it once the hook is active
// again.
func TestInactiveHookNotSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, nil)
		h := f.hook(t, rc.URL)
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		ctx := context.Background()
		if err := s.DeactivateWebhook(ctx, webhook.Scope{All: true}, h.ID); err != nil {
			t.Fatal(err)
		}
		f.start(t, delivery.Config{Workers: 1, BatchSize: 1})
		poll.Until(t, 15*time.Second, "the event given up", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateGivenUp })
		j := f.event(t, ev.ID)
		if len(j.Event.Attempts) != 1 || j.Event.Attempts[0].Error != "webhook is inactive: "+store.ReasonOwner || j.Event.Attempts[0].Status != 0 {
			t.Fatalf("attempts: %+v", j.Event.Attempts)
		}
		if n := rc.hits.Load(); n != 0 {
			t.Fatalf("receiver hit %d times, want 0", n)
		}
		if got := f.hookNow(t, h.ID); got.DisabledReason != store.ReasonOwner || got.FailingSince != nil {
			t.Fatalf("a job not sent changed the hook's health: %+v", got)
		}
		// Re-enabled and redelivered: it arrives.
		h.IsActive = true
		if _, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, h, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Redeliver(ctx, webhook.Scope{All: true}, ev.UUID, false); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 15*time.Second, "the redelivered event delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		if n := rc.hits.Load(); n != 1 {
			t.Fatalf("receiver hit %d times, want 1", n)
		}
	})
}

// Events published 12 hours (and a minute) apart (fake clock) to two hooks
// with one attempt each: the hook that always fails is deactivated once it
// has failed for disable_after (48h); the one with a success in between
// stays active though its failures span longer. The extra minute keeps
// each check off the window's edge: PostgreSQL puts attempt times on its
// own clock to the second, and on a busy machine that second can differ
// between two batches.
func TestFailureWindowDeactivatesHook(t *testing.T) {
	storetest.EachWith(t, store.Options{DisableAfter: 48 * time.Hour}, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		clk := &fakeClock{t: epoch}
		dead := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
		var flakyHits int
		flaky := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			flakyHits++ // one worker: requests do not overlap
			if flakyHits != 4 {
				w.WriteHeader(503)
			}
		})
		deadHook, flakyHook := f.hook(t, dead.URL), f.hook(t, flaky.URL)
		d := f.start(t, delivery.Config{Workers: 1, BatchSize: 2, MaxRetries: 1, Now: clk.now})
		const step = 12*time.Hour + time.Minute
		for i := range 8 { // at 0h, 12h, … 84h (and i minutes); flaky succeeds at 36h
			evs := storetest.Publish(t, s, "package-created", fmt.Sprintf(`{"i":%d}`, i))
			d.Notify()
			for _, ev := range evs {
				poll.Until(t, 15*time.Second, "the attempt recorded", func() bool { return f.event(t, ev.ID).Event.State != webhook.StatePending })
			}
			elapsed := clk.now().Sub(epoch)
			if got := f.hookNow(t, deadHook.ID); got.IsActive != (elapsed < 48*time.Hour) {
				t.Fatalf("after %v: failing hook active = %v (%+v)", elapsed, got.IsActive, got)
			}
			if got := f.hookNow(t, flakyHook.ID); !got.IsActive {
				t.Fatalf("after %v: the hook with a success at 36h was deactivated (%+v)", elapsed, got)
			}
			clk.add(step)
		}
		got := f.hookNow(t, deadHook.ID)
		if got.DisabledReason != "every delivery failed for 2 days" || got.FailingSince == nil || got.FailingSince.Sub(epoch).Abs() > time.Second {
			t.Fatalf("failing hook: %+v", got)
		}
		// Deactivated at 48h: the events published after it were not
		// queued for it.
		if n := dead.hits.Load(); n != 5 {
			t.Errorf("the failing hook was sent %d requests, want 5", n)
		}
		if fs := f.hookNow(t, flakyHook.ID).FailingSince; fs == nil || fs.Sub(epoch.Add(4*step)).Abs() > time.Second {
			t.Errorf("flaky hook failing since %v, want the first failure after its success (48h)", fs)
		}
	})
}
