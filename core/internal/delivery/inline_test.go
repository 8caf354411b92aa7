package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// An inline fan-out wider than the workers never holds claimed events that
// wait behind others (which the claim loop takes back once their lease
// ends, and sends again), and writes each result as soon as it is known:
// whenever a request arrives, at most Workers events are leased, and all
// but the Workers latest are already written. Then the fan-out's length
// does not matter against the lease, and each event gets exactly one
// request.
func TestDeliverNowFanOutStaysInItsLeases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		const hooks, workers = 12, 2
		count := func(where string) int {
			var n int
			if err := s.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM webhook_events WHERE "+where).Scan(&n); err != nil {
				t.Error(err)
			}
			return n
		}
		var requests atomic.Int64
		var mu sync.Mutex
		var violations []string
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			n := int(requests.Add(1))
			leased := count("state = 'pending' AND lease_owner IS NOT NULL")
			written := count("state = 'delivered'")
			if leased > workers || written < n-workers {
				mu.Lock()
				violations = append(violations, fmt.Sprintf("request %d: %d events leased, %d written", n, leased, written))
				mu.Unlock()
			}
			w.WriteHeader(http.StatusNoContent)
		})
		for i := range hooks {
			f.hook(t, fmt.Sprintf("%s/%d", rc.URL, i))
		}
		d := f.start(t, delivery.Config{Workers: workers})
		// As the API publishes with "async": false: out of the claim loop's
		// reach until DeliverNow claims them.
		pub, err := s.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created",
			Payload: json.RawMessage(`{}`), Hold: time.Hour})
		if err != nil || len(pub.Events) != hooks {
			t.Fatalf("publish: %d events, %v", len(pub.Events), err)
		}
		ids := make([]int64, len(pub.Events))
		for i, ev := range pub.Events {
			ids[i] = ev.ID
		}
		out, err := d.DeliverNow(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != hooks {
			t.Fatalf("%d outcomes, want %d", len(out), hooks)
		}
		for i, o := range out {
			if o.EventID != ids[i] || !o.Delivered || o.Status != http.StatusNoContent {
				t.Errorf("outcome %d: %+v", i, o)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			t.Error(v)
		}
		if n := requests.Load(); n != hooks {
			t.Errorf("%d requests for %d events", n, hooks)
		}
		if n := count("state = 'delivered' AND retry_count = 1"); n != hooks {
			t.Errorf("%d events delivered with one attempt, want %d", n, hooks)
		}
	})
}

// An event whose hook moved to another event type after it was queued is
// not sent: the claim reads the hook as it is now, and the event is given
// up with the reason, as for an inactive hook.
func TestDispatcherSkipsHookOfAnotherType(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var hits atomic.Int64
		rc := newReceiver(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
		h := f.hook(t, rc.URL)
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		if err := s.AddEventTypes(context.Background(), "package-deleted"); err != nil {
			t.Fatal(err)
		}
		h.EventType = "package-deleted"
		if _, err := s.UpdateWebhook(context.Background(), webhook.Scope{All: true}, h, false); err != nil {
			t.Fatal(err)
		}
		f.start(t, delivery.Config{})
		poll.Until(t, 15*time.Second, "given up", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateGivenUp })
		j := f.event(t, ev.ID)
		if hits.Load() != 0 || len(j.Event.Attempts) != 1 || !strings.Contains(j.Event.Attempts[0].Error, "no longer subscribes") {
			t.Errorf("%d requests; attempts %+v", hits.Load(), j.Event.Attempts)
		}
	})
}

// A fan-out that outlasts its hold leaves the rest to the claim loop; an
// event the claim loop attempted and that failed waits for its retry's
// countdown, and DeliverNow, reaching it later, does not send it again at
// once: each event is sent once per due time.
func TestDeliverNowSkipsEventTheClaimLoopAttempted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var requests atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		})
		f.hook(t, rc.URL, func(w *webhook.Webhook) {
			w.RetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":3600}`)}
		})
		d := f.start(t, delivery.Config{Now: time.Now})
		pub, err := s.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created",
			Payload: json.RawMessage(`{}`), Hold: time.Hour})
		if err != nil || len(pub.Events) != 1 {
			t.Fatalf("publish: %d events, %v", len(pub.Events), err)
		}
		id := pub.Events[0].ID
		// The hold runs out before DeliverNow reaches the event.
		if _, err := s.DB().ExecContext(context.Background(), "UPDATE webhook_events SET next_attempt_at = next_attempt_at - ?",
			(2 * time.Hour).Microseconds()); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		poll.Until(t, 15*time.Second, "the claim loop's attempt written", func() bool { return len(f.q.resultsFor(id)) == 1 })
		out, err := d.DeliverNow(context.Background(), []int64{id})
		if err != nil {
			t.Fatal(err)
		}
		if n := requests.Load(); n != 1 || len(out) != 0 {
			t.Fatalf("%d requests, outcomes %+v: want 1 request and the event left to its retry", n, out)
		}
		if ev := f.event(t, id).Event; ev.State != webhook.StatePending || ev.RetryCount != 1 || !ev.NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
			t.Fatalf("event %+v: want its retry due in an hour", ev)
		}
	})
}

// deadlineQueue is the real store, recording every inline call made
// without a deadline, or with one further than a lease away.
type deadlineQueue struct {
	*recordingQueue
	lease  time.Duration
	mu     sync.Mutex
	missed []string
}

func (q *deadlineQueue) check(ctx context.Context, call string) {
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > q.lease {
		q.mu.Lock()
		q.missed = append(q.missed, call)
		q.mu.Unlock()
	}
}

func (q *deadlineQueue) ClaimEvents(ctx context.Context, owner string, ids []int64, lease time.Duration) ([]webhook.Job, error) {
	q.check(ctx, "ClaimEvents")
	return q.recordingQueue.ClaimEvents(ctx, owner, ids, lease)
}

func (q *deadlineQueue) Complete(ctx context.Context, results []webhook.Result) error {
	q.check(ctx, "Complete")
	return q.recordingQueue.Complete(ctx, results)
}

// Every database call of an inline delivery has a deadline of one lease:
// a hung connection must not block the request, or Stop, forever. The
// request's own context has none.
func TestDeliverNowDatabaseCallsHaveADeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		const lease = time.Minute
		q := &deadlineQueue{recordingQueue: f.q, lease: lease}
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL)
		// Not started: DeliverNow writes its results itself.
		d, err := delivery.New(delivery.Config{AllowNetworks: loopback, Lease: lease}, q, countdown.NewRegistry(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Stop(context.Background())
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		out, err := d.DeliverNow(context.Background(), []int64{ev.ID})
		if err != nil || len(out) != 1 || !out[0].Delivered {
			t.Fatalf("DeliverNow = %+v, %v", out, err)
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(q.missed) > 0 {
			t.Fatalf("calls without a deadline of a lease: %v", q.missed)
		}
	})
}
