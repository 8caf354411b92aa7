package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Concurrent publishers each get their own events, exactly once, whatever
// batches they shared.
func TestConcurrentPublishes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		storetest.Hook(t, s, u.ID, "e", "https://b.example/")
		b := publish.New(s, 16)
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		const n = 200
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := b.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(fmt.Sprint(i))})
				if err != nil || len(p.Events) != 2 {
					t.Errorf("publish %d: %+v, %v", i, p, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, ev := range p.Events {
					if string(ev.Payload) != fmt.Sprint(i) {
						t.Errorf("publish %d got event of payload %s", i, ev.Payload)
					}
					seen[ev.UUID]++
				}
			}()
		}
		wg.Wait()
		// An unknown type fails alone; an idempotent publish goes straight
		// through and replays.
		_, err := b.Publish(ctx, webhook.PublishRequest{EventType: "nope"})
		var unknown *webhook.UnknownEventTypeError
		if !errors.As(err, &unknown) {
			t.Fatalf("unknown type: %v", err)
		}
		idem := webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`1`), PublisherID: u.ID, IdempotencyKey: "k"}
		first, err1 := b.Publish(ctx, idem)
		again, err2 := b.Publish(ctx, idem)
		if err1 != nil || err2 != nil || !again.Replayed || again.Events[0].UUID != first.Events[0].UUID {
			t.Fatalf("idempotent publish: %v %v %+v", err1, err2, again)
		}
		b.Stop(ctx)
		if _, err := b.Publish(ctx, webhook.PublishRequest{EventType: "e"}); !errors.Is(err, publish.ErrStopped) {
			t.Fatalf("after Stop: %v", err)
		}
		if len(seen) != 2*n {
			t.Fatalf("%d distinct events, want %d", len(seen), 2*n)
		}
		c, _ := s.Counts(ctx)
		if c[webhook.StatePending] != 2*n+2 {
			t.Fatalf("rows: %v, want %d", c, 2*n+2)
		}
	})
}

// hostileStore is the real store, except that a batch holding the payload
// "poison" panics and one holding "short" is answered with too few results:
// bugs on one request's data.
type hostileStore struct {
	*store.Store
	mu      sync.Mutex
	batches [][]string // the payloads of each batch, for the log
}

func (h *hostileStore) PublishLeased(ctx context.Context, reqs []webhook.PublishRequest, lease webhook.PublishLease) ([]webhook.Published, []error) {
	var payloads []string
	for _, r := range reqs {
		payloads = append(payloads, string(r.Payload))
	}
	h.mu.Lock()
	h.batches = append(h.batches, payloads)
	h.mu.Unlock()
	for _, p := range payloads {
		switch p {
		case `"poison"`:
			panic("publish bug")
		case `"short"`:
			return nil, nil
		}
	}
	return h.Store.PublishLeased(ctx, reqs, lease)
}

// A panic (or a wrong answer) in a batch's write fails only the publish
// whose data caused it, never the batcher or the process; the publishers
// batched with it get their events, and later publishes work.
func TestBatchPanicFailsOnlyItsPublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		h := &hostileStore{Store: s}
		var logs strings.Builder
		b := publish.New(h, 16)
		b.Log = slog.New(slog.NewTextHandler(&logs, nil))
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer b.Stop(ctx)
		payloads := []string{`1`, `"poison"`, `2`, `"short"`, `3`, `4`}
		errs := make([]error, len(payloads))
		var wg sync.WaitGroup
		for i, p := range payloads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var res webhook.Published
				res, errs[i] = b.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(p)})
				if errs[i] == nil && (len(res.Events) != 1 || string(res.Events[0].Payload) != p) {
					t.Errorf("publish %s: %+v", p, res)
				}
			}()
		}
		wg.Wait()
		for i, p := range payloads {
			bad := strings.Contains(p, `"`)
			if bad != (errs[i] != nil) {
				t.Errorf("publish %s: error %v", p, errs[i])
			}
		}
		if _, err := b.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`5`)}); err != nil {
			t.Fatalf("publish after the panics: %v", err)
		}
		if c, _ := s.Counts(ctx); c[webhook.StatePending] != 5 {
			t.Errorf("rows %v, want 5 events", c)
		}
		if n := strings.Count(logs.String(), "publish batch panicked"); n < 1 || !strings.Contains(logs.String(), "stack=") {
			t.Errorf("panic not logged with its stack:\n%s", logs.String())
		}
		t.Logf("batches: %q", h.batches)
	})
}

// The batcher keeps the service rules: one Start, Stop before Start or
// twice is fine, and a stopped batcher refuses publishes and restarts.
func TestBatcherLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		idle := publish.New(s, 4)
		for range 2 {
			if err := idle.Stop(ctx); err != nil {
				t.Fatalf("Stop without Start: %v", err)
			}
		}
		if err := idle.Start(ctx); err == nil {
			t.Fatal("a stopped batcher started")
		}
		if _, err := idle.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: []byte(`1`)}); !errors.Is(err, publish.ErrStopped) {
			t.Fatalf("Publish after Stop: %v", err)
		}

		b := publish.New(s, 4)
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err == nil || !strings.Contains(err.Error(), "already started") {
			t.Fatalf("second Start: %v", err)
		}
		for range 2 {
			if err := b.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
		}
	})
}

// gateStore is the real store whose first batch's write waits for
// release (entered is closed when it begins), so that a test can queue
// publishes behind a leader; a batch holding "poison" panics after the
// gate.
type gateStore struct {
	*store.Store
	entered, release chan struct{}
	first            sync.Once
	mu               sync.Mutex
	batches          [][]string
}

func newGateStore(s *store.Store) *gateStore {
	return &gateStore{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateStore) PublishLeased(ctx context.Context, reqs []webhook.PublishRequest, lease webhook.PublishLease) ([]webhook.Published, []error) {
	var payloads []string
	for _, r := range reqs {
		payloads = append(payloads, string(r.Payload))
	}
	g.mu.Lock()
	g.batches = append(g.batches, payloads)
	g.mu.Unlock()
	g.first.Do(func() {
		close(g.entered)
		<-g.release
	})
	if slices.Contains(payloads, `"poison"`) {
		panic("publish bug")
	}
	return g.Store.PublishLeased(ctx, reqs, lease)
}

func (g *gateStore) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, b := range g.batches {
		out = append(out, len(b))
	}
	return out
}

// publishAsync publishes payload on its own goroutine; the answer comes on
// the channel.
func publishAsync(ctx context.Context, b *publish.Batcher, payload string) <-chan error {
	out := make(chan error, 1)
	go func() {
		p, err := b.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(payload)})
		if err == nil && (len(p.Events) != 1 || string(p.Events[0].Payload) != payload) {
			err = fmt.Errorf("publish %s answered %+v", payload, p)
		}
		out <- err
	}()
	return out
}

// startGated starts a batcher (limit 4) on a gateStore and a first publish
// that leads and waits in its write.
func startGated(t *testing.T, s *store.Store) (*publish.Batcher, *gateStore, <-chan error) {
	t.Helper()
	u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
	storetest.Hook(t, s, u.ID, "e", "https://a.example/")
	g := newGateStore(s)
	b := publish.New(g, 4)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := publishAsync(t.Context(), b, `0`)
	<-g.entered
	return b, g, first
}

// While a leader writes, publishes queue; when it is done the oldest of
// them leads the next batch of up to the limit, and so on: each publisher
// gets its own event, exactly once.
func TestLeaderHandsOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		b, g, first := startGated(t, s)
		defer b.Stop(t.Context())
		var queued []<-chan error
		for i := range 10 {
			queued = append(queued, publishAsync(t.Context(), b, fmt.Sprint(i+1)))
		}
		poll.Until(t, 10*time.Second, "10 queued publishes", func() bool { return publish.Queued(b) == 10 })
		close(g.release)
		for i, ch := range append(queued, first) {
			if err := <-ch; err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
		}
		if got := g.sizes(); !slices.Equal(got, []int{1, 4, 4, 2}) {
			t.Errorf("batches of %v, want the leader's alone, then 4, 4, 2", got)
		}
		if c, _ := s.Counts(t.Context()); c[webhook.StatePending] != 11 {
			t.Errorf("rows %v, want 11", c)
		}
	})
}

// A panic in the leader's write fails the leader's publish (written alone
// again, it panics again), not the process: the publishes queued behind
// it are led by the next, and written.
func TestLeaderPanicHandsOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		g := newGateStore(s)
		b := publish.New(g, 4)
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer b.Stop(t.Context())
		poisoned := publishAsync(t.Context(), b, `"poison"`)
		<-g.entered
		var queued []<-chan error
		for i := range 3 {
			queued = append(queued, publishAsync(t.Context(), b, fmt.Sprint(i)))
		}
		poll.Until(t, 10*time.Second, "3 queued publishes", func() bool { return publish.Queued(b) == 3 })
		close(g.release)
		if err := <-poisoned; err == nil || !strings.Contains(err.Error(), "internal error") {
			t.Errorf("the leader's poisoned publish: %v", err)
		}
		for i, ch := range queued {
			if err := <-ch; err != nil {
				t.Errorf("publish %d behind the panicking leader: %v", i, err)
			}
		}
		if err := <-publishAsync(t.Context(), b, `9`); err != nil {
			t.Errorf("a later publish: %v", err)
		}
		if c, _ := s.Counts(t.Context()); c[webhook.StatePending] != 4 {
			t.Errorf("rows %v, want 4", c)
		}
	})
}

// Stop while a leader writes refuses new publishes at once and returns
// once the batch being written and those queued are written; a Stop whose
// context ends first returns its error, and the writes still finish.
func TestStopWhileLeaderWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		b, g, first := startGated(t, s)
		behind := publishAsync(t.Context(), b, `1`)
		poll.Until(t, 10*time.Second, "a queued publish", func() bool { return publish.Queued(b) == 1 })

		ended, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.Stop(ended); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop with an ended context while a batch is written: %v", err)
		}
		if _, err := b.Publish(t.Context(), webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`2`)}); !errors.Is(err, publish.ErrStopped) {
			t.Fatalf("publish after Stop: %v", err)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- b.Stop(t.Context()) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned while a batch was still being written: %v", err)
		default:
		}
		close(g.release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		for _, ch := range []<-chan error{first, behind} {
			if err := <-ch; err != nil {
				t.Errorf("publish written during Stop: %v", err)
			}
		}
		if c, _ := s.Counts(t.Context()); c[webhook.StatePending] != 2 {
			t.Errorf("rows %v, want 2", c)
		}
	})
}

// A queued publisher that gives up leaves the queue: its request is not
// written.
func TestQueuedPublisherGivesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		b, g, first := startGated(t, s)
		defer b.Stop(t.Context())
		ctx, cancel := context.WithCancel(t.Context())
		gaveUp := publishAsync(ctx, b, `1`)
		poll.Until(t, 10*time.Second, "a queued publish", func() bool { return publish.Queued(b) == 1 })
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled queued publish: %v", err)
		}
		if n := publish.Queued(b); n != 0 {
			t.Fatalf("%d still queued", n)
		}
		close(g.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-publishAsync(t.Context(), b, `2`); err != nil {
			t.Fatal(err)
		}
		if got := g.sizes(); !slices.Equal(got, []int{1, 1}) {
			t.Errorf("batches of %v, want two of one", got)
		}
		if c, _ := s.Counts(t.Context()); c[webhook.StatePending] != 2 {
			t.Errorf("rows %v, want 2", c)
		}
	})
}

// A publish made before Start waits for it and is written then; one
// waiting when Stop comes first fails with ErrStopped.
func TestPublishBeforeStart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "p", webhook.RolePublisher)
		storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		b := publish.New(s, 4)
		early := publishAsync(t.Context(), b, `1`)
		poll.Until(t, 10*time.Second, "a queued publish", func() bool { return publish.Queued(b) == 1 })
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-early; err != nil {
			t.Fatalf("publish before Start: %v", err)
		}
		if err := b.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}

		never := publish.New(s, 4)
		waiting := publishAsync(t.Context(), never, `2`)
		poll.Until(t, 10*time.Second, "a queued publish", func() bool { return publish.Queued(never) == 1 })
		if err := never.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-waiting; !errors.Is(err, publish.ErrStopped) {
			t.Fatalf("publish waiting for a Start that Stop preempted: %v", err)
		}
		if c, _ := s.Counts(t.Context()); c[webhook.StatePending] != 1 {
			t.Errorf("rows %v, want 1", c)
		}
	})
}
