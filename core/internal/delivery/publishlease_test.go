package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// Publishes leasing their rows to their own node (docs/RELIABILITY.md,
// "Leased at publish").

// hasRoom waits until d offers publishes room: its first claim has found
// the queue drained.
func hasRoom(t *testing.T, d *delivery.Dispatcher) {
	t.Helper()
	poll.Until(t, 10*time.Second, "the dispatcher offers room", func() bool {
		l := d.ReservePublish()
		d.TakePublished(l, nil)
		return l.Limit > 0
	})
}

// batcher is a publish batcher that leases to d.
func batcher(t *testing.T, s *store.Store, d *delivery.Dispatcher) *publish.Batcher {
	t.Helper()
	b := publish.New(s, 16)
	b.Leaser = d
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

// uuidCounter is a receiver's count of requests per event.
type uuidCounter struct{ m sync.Map }

func (c *uuidCounter) add(r *http.Request) {
	n, _ := c.m.LoadOrStore(r.Header.Get("Webhook-Id"), new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

// countingHook gives f's user a hook to a receiver that counts the
// requests of each event.
func countingHook(t *testing.T, f *fixture, paths ...string) (*uuidCounter, *receiver) {
	t.Helper()
	got := &uuidCounter{}
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { got.add(r) })
	if len(paths) == 0 {
		paths = []string{""}
	}
	for _, p := range paths {
		f.hook(t, rc.URL+p)
	}
	return got, rc
}

func (c *uuidCounter) get(uuid string) int64 {
	n, ok := c.m.Load(uuid)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// Rows leased at publish are delivered once each, with no claim.
func TestPublishLeasedDeliveredOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		got, _ := countingHook(t, f, "/a", "/b")
		d := f.start(t, delivery.Config{Workers: 8, BatchSize: 10, PollInterval: time.Hour})
		hasRoom(t, d)
		claims := f.q.claims.Load()
		b := batcher(t, s, d)
		var events []webhook.Event
		for i := range 5 {
			p, err := b.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created", Payload: json.RawMessage(fmt.Sprint(i))})
			if err != nil || len(p.Events) != 2 || p.Leased != 2 || p.Jobs != nil {
				t.Fatalf("publish %d: %+v, %v", i, p, err)
			}
			events = append(events, p.Events...)
		}
		for _, ev := range events {
			poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
			if n := got.get(ev.UUID); n != 1 {
				t.Errorf("event %s received %d times", ev.UUID, n)
			}
		}
		if n := f.q.claims.Load() - claims; n != 0 {
			t.Errorf("%d claims for events leased at publish, want none", n)
		}
	})
}

// With no room, a publish leases nothing: its rows are written and
// claimed as before.
func TestPublishWithoutRoomIsClaimed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		got, _ := countingHook(t, f)
		d := f.start(t, delivery.Config{Workers: 1, BatchSize: 1, PollInterval: time.Hour})
		hasRoom(t, d)
		// Room for two jobs (one at work, one queued), both held here.
		held := []webhook.PublishLease{d.ReservePublish(), d.ReservePublish()}
		if held[0].Limit != 1 || held[1].Limit != 1 {
			t.Fatalf("reserved %+v", held)
		}
		if l := d.ReservePublish(); l.Limit != 0 {
			t.Fatalf("reserved %+v beyond the workers' room", l)
		}
		claims := f.q.claims.Load()
		p, err := batcher(t, s, d).Publish(context.Background(), webhook.PublishRequest{EventType: "package-created", Payload: json.RawMessage(`1`)})
		if err != nil || len(p.Events) != 1 || p.Leased != 0 {
			t.Fatalf("publish: %+v, %v", p, err)
		}
		for _, l := range held {
			d.TakePublished(l, nil)
		}
		d.Notify() // as the API does for rows not leased
		ev := p.Events[0]
		poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		if n := got.get(ev.UUID); n != 1 {
			t.Errorf("received %d times", n)
		}
		if f.q.claims.Load() == claims {
			t.Error("delivered without a claim")
		}
	})
}

// A node that dies after publishing leaves its leased rows to the others
// once the lease has ended.
func TestPublishLeasedRowsOfADeadNode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		got, rc := countingHook(t, f)
		res, errs := s.PublishLeased(context.Background(), []webhook.PublishRequest{
			{EventType: "package-created", Payload: json.RawMessage(`1`)},
			{EventType: "package-created", Payload: json.RawMessage(`2`)},
		}, webhook.PublishLease{Owner: "dead-node", Lease: time.Minute, Limit: 10})
		if errs[0] != nil || errs[1] != nil || len(res[0].Jobs) != 1 || len(res[1].Jobs) != 1 {
			t.Fatalf("publish: %+v, %v", res, errs)
		}
		d := f.start(t, delivery.Config{PollInterval: time.Hour})
		poll.Until(t, 10*time.Second, "a claim", func() bool { return f.q.claims.Load() > 0 })
		d.Notify()
		if hits := rc.hits.Load(); hits != 0 {
			t.Fatalf("%d requests for events leased by another node", hits)
		}
		// The lease ends.
		if _, err := s.DB().ExecContext(context.Background(), "UPDATE webhook_events SET lease_until = lease_until - ?",
			(2 * time.Minute).Microseconds()); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		for _, p := range res {
			ev := p.Events[0]
			poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
			if n := got.get(ev.UUID); n != 1 {
				t.Errorf("event %s received %d times", ev.UUID, n)
			}
		}
	})
}

// Stop gives back a job leased at publish that no worker started.
func TestStopReleasesJobsLeasedAtPublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		unblock := make(chan struct{})
		var once sync.Once
		open := func() { once.Do(func() { close(unblock) }) }
		defer open()
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { <-unblock })
		f.hook(t, rc.URL)
		// One worker and one job queued ahead.
		d := f.start(t, delivery.Config{Workers: 1, BatchSize: 2, PollInterval: time.Hour})
		hasRoom(t, d)
		b := batcher(t, s, d)
		var evs []webhook.Event
		for i := range 2 {
			p, err := b.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created", Payload: json.RawMessage(fmt.Sprint(i))})
			if err != nil || p.Leased != 1 {
				t.Fatalf("publish %d: %+v, %v", i, p, err)
			}
			evs = append(evs, p.Events[0])
		}
		poll.Until(t, 10*time.Second, "the first attempt under way", func() bool { return rc.hits.Load() == 1 })
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopped <- d.Stop(ctx)
		}()
		poll.Until(t, 10*time.Second, "Stop begun", func() bool {
			_, err := d.DeliverNow(context.Background(), nil)
			return errors.Is(err, delivery.ErrStopped)
		})
		open() // the attempt under way finishes; the queued job is not started
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if j := f.event(t, evs[0].ID); j.Event.State != webhook.StateDelivered {
			t.Errorf("the attempt under way was not recorded: %+v", j.Event)
		}
		if n := rc.hits.Load(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
		// Released: another node claims it at once, not after the lease.
		jobs, err := s.Claim(context.Background(), "other", 10, time.Hour)
		if err != nil || len(jobs) != 1 || jobs[0].Event.ID != evs[1].ID {
			t.Fatalf("claim after Stop: %+v, %v", jobs, err)
		}
	})
}

// panickyStore is the real store, except that a publish of the payload
// "poison" panics before writing anything.
type panickyStore struct{ *store.Store }

func (p panickyStore) PublishLeased(ctx context.Context, reqs []webhook.PublishRequest, lease webhook.PublishLease) ([]webhook.Published, []error) {
	for _, r := range reqs {
		if string(r.Payload) == `"poison"` {
			panic("publish bug")
		}
	}
	return p.Store.PublishLeased(ctx, reqs, lease)
}

// A batch whose write panics gives back the room it reserved.
func TestPublishPanicGivesRoomBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		countingHook(t, f)
		d := f.start(t, delivery.Config{Workers: 1, BatchSize: 2, PollInterval: time.Hour})
		hasRoom(t, d)
		b := publish.New(panickyStore{s}, 16)
		b.Leaser = d
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer b.Stop(context.Background())
		if _, err := b.Publish(context.Background(), webhook.PublishRequest{EventType: "package-created", Payload: json.RawMessage(`"poison"`)}); err == nil {
			t.Fatal("the poisoned publish succeeded")
		}
		// One worker and one job ahead: all of it free again.
		l := d.ReservePublish()
		d.TakePublished(l, nil)
		if l.Limit != 2 {
			t.Fatalf("room after a panicked publish: %d, want 2", l.Limit)
		}
	})
}
