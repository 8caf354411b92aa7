// Package publish coalesces concurrent publishes into one database
// transaction (group commit). A publish is a few rows; committing each on
// its own makes the commit, not the work, the cost, and a burst of
// publishers queue behind each other's commits. The batcher's loop takes
// whatever is waiting, up to a limit, and writes it in one transaction.
package publish

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/webhook"
)

// Store is what the batcher needs: the single publish (for idempotent
// requests, which must look up their key first) and the batch.
type Store interface {
	Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error)
	PublishBatch(ctx context.Context, reqs []webhook.PublishRequest) ([]webhook.Published, []error)
}

// ErrStopped is returned by Publish after Stop.
var ErrStopped = errors.New("publish: batcher stopped")

// batchTimeout bounds one batch's transaction; a batch serves every
// publisher in it, so it does not end with any one request's context.
const batchTimeout = 30 * time.Second

// Batcher publishes through a Store, batching concurrent requests. Its
// methods are safe for concurrent use.
type Batcher struct {
	store Store
	limit int
	in    chan *call

	mu      sync.RWMutex // guards stopped against sends on a closed in
	stopped bool
	done    chan struct{}
}

type call struct {
	req  webhook.PublishRequest
	res  webhook.Published
	err  error
	done chan struct{}
}

// New returns a Batcher that writes at most limit requests per
// transaction. It publishes nothing until Start.
func New(s Store, limit int) *Batcher {
	limit = max(1, limit)
	return &Batcher{store: s, limit: limit, in: make(chan *call, 4*limit), done: make(chan struct{})}
}

// Start runs the batching loop and returns at once.
func (b *Batcher) Start() {
	go b.loop()
}

// Stop lets the loop write what is queued and waits for it, or for ctx.
// Later Publish calls fail with ErrStopped. Stop is idempotent.
func (b *Batcher) Stop(ctx context.Context) {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		close(b.in)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
	}
}

// Publish publishes req in a batch with whatever else is waiting. Requests
// with an idempotency key (looked up first) or a hold (rare: inline
// publishes) go alone.
func (b *Batcher) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	if req.IdempotencyKey != "" || req.Hold != 0 {
		return b.store.Publish(ctx, req)
	}
	c := &call{req: req, done: make(chan struct{})}
	b.mu.RLock()
	if b.stopped {
		b.mu.RUnlock()
		return webhook.Published{}, ErrStopped
	}
	select {
	case b.in <- c:
	case <-ctx.Done():
		b.mu.RUnlock()
		return webhook.Published{}, ctx.Err()
	}
	b.mu.RUnlock()
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		// The batch may still commit it; as with a lost connection the
		// caller cannot know, which is what idempotency keys are for.
		return webhook.Published{}, ctx.Err()
	}
}

func (b *Batcher) loop() {
	defer close(b.done)
	batch := make([]*call, 0, b.limit)
	reqs := make([]webhook.PublishRequest, 0, b.limit)
	for c := range b.in {
		batch = append(batch[:0], c)
	fill: // take what is already waiting, never wait for more
		for len(batch) < b.limit {
			select {
			case c, ok := <-b.in:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		reqs = reqs[:0]
		for _, c := range batch {
			reqs = append(reqs, c.req)
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		res, errs := b.store.PublishBatch(ctx, reqs)
		cancel()
		for i, c := range batch {
			c.res, c.err = res[i], errs[i]
			close(c.done)
		}
	}
}
