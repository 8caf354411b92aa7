package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/whisperer/whisperer/core/publish"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
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
		b.Start()
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
		var verr *webhook.ValidationError
		if !errors.As(err, &verr) {
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
