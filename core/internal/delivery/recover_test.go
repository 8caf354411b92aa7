package delivery_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// The crash report: a hook stored with random kwargs up to 2^63-1 (the
// previous release accepted them) panicked in its first failed attempt,
// and again after every restart. The row is written straight into the
// database; the attempt is recorded failed, the retry is scheduled within
// MaxWait, and the dispatcher keeps delivering.
func TestStoredOutOfRangeCountdownDoesNotCrash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
		hook := f.hook(t, rc.URL, func(w *webhook.Webhook) {
			w.RetryCountdown = webhook.CountdownConfig{Choice: "random",
				Kwargs: json.RawMessage(`{"min_value": 0, "max_value": 9223372036854775807}`)}
		})
		f.start(t, delivery.Config{})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		// The fake clock makes every retry due at once: look at the first.
		poll.Until(t, 15*time.Second, "the failed attempt recorded", func() bool { return len(f.q.resultsFor(ev.ID)) > 0 })
		r := f.q.resultsFor(ev.ID)[0]
		if wait := r.NextAttemptAt.Sub(r.Attempt.AttemptedAt); r.State != webhook.StatePending || r.Attempt.Status != 500 ||
			wait < 0 || wait > countdown.MaxWait || r.Attempt.Error != "" || r.WebhookID != hook.ID {
			t.Fatalf("result %+v: wait %s, want a 500 retried within [0, %s] with no error", r, wait, countdown.MaxWait)
		}
		if a := f.event(t, ev.ID).Event.Attempts; len(a) == 0 || a[len(a)-1].Status != 500 {
			t.Fatalf("stored attempts %+v", a)
		}
	})
}

// panickyCountdowns is the real registry, except that the countdown
// "boom" panics: a countdown with a bug.
type panickyCountdowns struct{ *countdown.Registry }

func (c panickyCountdowns) Wait(ctx context.Context, cfg webhook.CountdownConfig, n int) (time.Duration, error) {
	if cfg.Choice == "boom" {
		panic("countdown bug")
	}
	return c.Registry.Wait(ctx, cfg, n)
}

// A countdown that panics is a countdown that failed: the attempt is
// recorded with the receiver's answer and the panic in its error text,
// and retried on the default countdown.
func TestCountdownPanicBecomesFailedAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		f.cd = panickyCountdowns{countdown.NewRegistry()}
		var calls atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.WriteHeader(500)
			}
		})
		f.hook(t, rc.URL, func(w *webhook.Webhook) {
			w.RetryCountdown = webhook.CountdownConfig{Choice: "boom", Kwargs: json.RawMessage(`{}`)}
		})
		f.start(t, delivery.Config{DefaultCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":7}`)}})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		poll.Until(t, 15*time.Second, "delivered on the retry", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		res := f.q.resultsFor(ev.ID)
		if len(res) != 2 {
			t.Fatalf("results %+v, want 2", res)
		}
		first := res[0]
		if first.State != webhook.StatePending || first.Attempt.Status != 500 ||
			first.NextAttemptAt.Sub(first.Attempt.AttemptedAt) != 7*time.Second ||
			!strings.Contains(first.Attempt.Error, `retry countdown "boom" failed (panic: countdown bug)`) {
			t.Fatalf("first result %+v, want a 500 retried after the default 7s with the panic in its error", first)
		}
		j := f.event(t, ev.ID)
		if a := j.Event.Attempts[1]; a.Error != first.Attempt.Error { // newest first
			t.Errorf("stored attempt error %q, want %q", a.Error, first.Attempt.Error)
		}
		if logs := f.logs.String(); strings.Count(logs, "countdown panicked") != 1 || !strings.Contains(logs, "stack=") {
			t.Errorf("the panic and its stack must be logged once:\n%s", logs)
		}
	})
}

// panickyObserver panics on every attempt: a bug on the delivery path
// outside the countdown.
type panickyObserver struct{ calls atomic.Int64 }

func (o *panickyObserver) ObserveAttempt(webhook.State, int, time.Duration) {
	o.calls.Add(1)
	panic("observer bug")
}

// A panic anywhere in an attempt becomes a failed attempt with the error
// recorded, retried on the default countdown and given up after
// max_retries like any failure: a poison event cannot crash-loop a node,
// and the node keeps delivering the others.
func TestAttemptPanicBecomesFailedAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL)
		obs := &panickyObserver{}
		d := f.start(t, delivery.Config{MaxRetries: 3, Observer: obs,
			DefaultCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":7}`)}})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		poll.Until(t, 15*time.Second, "given up", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateGivenUp })
		res := f.q.resultsFor(ev.ID)
		if len(res) != 3 {
			t.Fatalf("%d results, want 3: %+v", len(res), res)
		}
		for i, r := range res {
			wantState, wantWait := webhook.StatePending, 7*time.Second
			if i == 2 {
				wantState, wantWait = webhook.StateGivenUp, 0
			}
			if r.State != wantState || r.RetryCount != i+1 || r.WebhookID != 0 ||
				r.NextAttemptAt.Sub(r.Attempt.AttemptedAt) != wantWait || r.Attempt.Error != "internal error: panic: observer bug" {
				t.Errorf("result %d: %+v, want %s after %s with the panic recorded", i, r, wantState, wantWait)
			}
		}
		// (Attempts and Delivered also count what attemptOnce counted before
		// it panicked.)
		if st := d.Stats(); st.Failed != 2 || st.GivenUp != 1 {
			t.Errorf("stats %+v", st)
		}
		if n := strings.Count(f.logs.String(), "attempt panicked"); n != 3 {
			t.Errorf("%d panics logged, want 3", n)
		}
	})
}

// panickyQueue is the real store, whose Claim, Complete and Postpone
// panic (a bug in the queue on some row) while their counters are
// positive. Complete panics only on batches that hold poison.
type panickyQueue struct {
	*recordingQueue
	claims, completes, postpones atomic.Int64
	poison                       atomic.Int64 // event id
}

func (q *panickyQueue) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error) {
	if q.claims.Add(-1) >= 0 {
		panic("claim bug")
	}
	return q.recordingQueue.Claim(ctx, owner, limit, lease)
}

func (q *panickyQueue) Complete(ctx context.Context, results []webhook.Result) error {
	for _, r := range results {
		if r.EventID == q.poison.Load() && q.completes.Add(-1) >= 0 {
			panic("complete bug")
		}
	}
	return q.recordingQueue.Complete(ctx, results)
}

func (q *panickyQueue) Postpone(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error {
	if q.postpones.Add(-1) >= 0 {
		panic("postpone bug")
	}
	return q.recordingQueue.Postpone(ctx, leases, until)
}

// shortLease makes a dropped job come back quickly.
var shortLease = delivery.Config{ConnectTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
	Lease: 800 * time.Millisecond, Now: time.Now}

// A panic in the queue ends neither the claim loop, nor the result
// writer, nor a worker: the claim is retried, a poison result is dropped
// (its lease expires and it is attempted again) and the writer goes on
// with the others, and a worker is replaced.
//
// (TestResultWritePanicBecomesFailedAttempt has the stand-in written.)
func TestQueuePanicsDoNotCrash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		q := &panickyQueue{recordingQueue: f.q}
		q.claims.Store(2)
		q.completes.Store(3) // the batch, the poison result alone, then its failed stand-in
		q.postpones.Store(1)
		f.queue = q
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL, func(w *webhook.Webhook) { w.Config = map[string]any{"rate_limit_per_second": 2} })
		var evs []webhook.Event
		for range 4 {
			evs = append(evs, storetest.Publish(t, s, "package-created", `{}`)...)
		}
		q.poison.Store(evs[0].ID)
		cfg := shortLease
		cfg.Workers, cfg.BatchSize = 1, 4
		f.start(t, cfg)
		for _, ev := range evs {
			poll.Until(t, 15*time.Second, "every event delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		}
		logs := f.logs.String()
		for _, want := range []string{"claim panicked", "write results panicked", "result dropped", "delivery worker panicked"} {
			if !strings.Contains(logs, want) {
				t.Errorf("log has no %q:\n%s", want, logs)
			}
		}
		if n := len(f.event(t, evs[0].ID).Event.Attempts); n != 1 {
			t.Errorf("the dropped result's event has %d attempts recorded, want 1 (the retry's)", n)
		}
	})
}

// A panic in an inline ("async": false) delivery, in the queue's Complete
// or Postpone (a rate-limited event), does not take the process down: the
// event's outcome is the attempt's answer or an internal error, and
// DeliverNow returns. Before Start (no result writer) the write is guarded
// too.
func TestInlinePanicsDoNotCrash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL, func(w *webhook.Webhook) { w.Config = map[string]any{"rate_limit_per_second": 1} })
		for _, started := range []bool{true, false} {
			q := &panickyQueue{recordingQueue: f.q}
			q.postpones.Store(1)
			q.completes.Store(1 << 30)
			f.queue = q
			var ids []int64
			for range 2 {
				pub, err := s.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created",
					Payload: json.RawMessage(`{}`), Hold: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, pub.Events[0].ID)
			}
			q.poison.Store(ids[0])
			var d *delivery.Dispatcher
			if started {
				d = f.start(t, delivery.Config{Workers: 1})
			} else {
				var err error
				d, err = delivery.New(delivery.Config{AllowNetworks: loopback, Workers: 1, Now: func() time.Time { return epoch }},
					q, countdown.NewRegistry(), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			out, err := d.DeliverNow(context.Background(), ids)
			if err != nil || len(out) != 2 {
				t.Fatalf("started %v: DeliverNow = %+v, %v", started, out, err)
			}
			if !out[0].Delivered || out[1].ErrorClass != webhook.ClassInternal || !strings.Contains(out[1].Error, "postpone bug") {
				t.Fatalf("started %v: outcomes %+v: want the first delivered, the second an internal error", started, out)
			}
			if !started {
				d.Stop(context.Background())
			}
			if _, err := s.DB().ExecContext(context.Background(), "DELETE FROM webhook_events"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A result whose write keeps panicking is replaced by a minimal failed
// attempt (class internal, the panic in its error text, same lease), so
// the event's retry count advances: retried on the default countdown, or
// given up at max_retries, instead of coming back every lease period.
func TestResultWritePanicBecomesFailedAttempt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRetries int
		want       []webhook.State
	}{
		{"retried", 3, []webhook.State{webhook.StatePending, webhook.StateDelivered}},
		{"given up", 1, []webhook.State{webhook.StateGivenUp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f := newFixture(t, s)
				q := &panickyQueue{recordingQueue: f.q}
				q.completes.Store(2) // the batch, then the result alone
				f.queue = q
				rc := newReceiver(t, nil)
				f.hook(t, rc.URL)
				ev := storetest.Publish(t, s, "package-created", `{}`)[0]
				q.poison.Store(ev.ID)
				cfg := shortLease
				cfg.MaxRetries = tc.maxRetries
				cfg.DefaultCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":0}`)}
				f.start(t, cfg)
				final := tc.want[len(tc.want)-1]
				poll.Until(t, 15*time.Second, string(final), func() bool { return f.event(t, ev.ID).Event.State == final })
				res := f.q.resultsFor(ev.ID)
				if len(res) != len(tc.want) {
					t.Fatalf("results %+v, want %v", res, tc.want)
				}
				first := res[0]
				if first.State != tc.want[0] || first.RetryCount != 1 || first.WebhookID != 0 ||
					first.Attempt.Class != webhook.ClassInternal || first.Attempt.Status != 0 ||
					first.Attempt.Error != "internal error: writing the result failed: panic: complete bug" {
					t.Errorf("the stand-in result: %+v", first)
				}
				j := f.event(t, ev.ID)
				if j.Event.RetryCount != len(tc.want) {
					t.Errorf("retry count %d, want %d", j.Event.RetryCount, len(tc.want))
				}
				if logs := f.logs.String(); !strings.Contains(logs, "result replaced") || strings.Contains(logs, "result dropped") {
					t.Errorf("logs:\n%s", logs)
				}
			})
		})
	}
}
