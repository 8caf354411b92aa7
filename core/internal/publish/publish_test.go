package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
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
