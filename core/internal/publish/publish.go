// Package publish coalesces concurrent publishes into one database
// transaction (group commit). A publish is a few rows; committing each on
// its own makes the commit, not the work, the cost, and a burst of
// publishers queue behind each other's commits. The batcher's loop takes
// whatever is waiting, up to a limit, and writes it in one transaction.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Store is what the batcher needs: the single publish (for idempotent
// requests, which must look up their key first) and the batch, which may
// lease its rows to this node (webhook.PublishLease; the zero lease
// leases none).
type Store interface {
	Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error)
	PublishLeased(ctx context.Context, reqs []webhook.PublishRequest, lease webhook.PublishLease) ([]webhook.Published, []error)
}

// Leaser is the node's dispatcher, to which a batch leases the rows it
// writes when it has room: they go to its workers without a claim, a
// wake-up or a NOTIFY.
type Leaser interface {
	// ReservePublish reserves room for a batch's rows and returns the
	// lease to write them under; a zero Limit (no room) leases none.
	ReservePublish() webhook.PublishLease
	// TakePublished takes the jobs a batch leased under lease (got from
	// ReservePublish, called once for each) and gives back the room they
	// did not fill.
	TakePublished(lease webhook.PublishLease, jobs []webhook.Job)
}

// ErrStopped is returned by Publish after Stop.
var ErrStopped = errors.New("publish: batcher stopped")

// batchTimeout bounds one batch's transaction; a batch serves every
// publisher in it, so it does not end with any one request's context.
const batchTimeout = 30 * time.Second

// Batcher publishes through a Store, batching concurrent requests. Its
// methods are safe for concurrent use.
type Batcher struct {
	// Log receives the panics the loop recovers; set it before Start.
	// Nil discards them.
	Log *slog.Logger
	// Leaser, when set (before Start), is offered the rows of every batch
	// (not those of a keyed or held publish, which go alone).
	Leaser Leaser

	store Store
	limit int
	in    chan *call

	mu      sync.RWMutex // guards stopped against sends on a closed in
	stopped bool
	life    service.Lifecycle
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
	return &Batcher{store: s, limit: limit, in: make(chan *call, 4*limit)}
}

// Start runs the batching loop and returns at once. The loop runs until
// Stop, not until ctx ends: what is queued must be written.
func (b *Batcher) Start(ctx context.Context) error {
	_, done, err := b.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("publish: batcher %w", err)
	}
	go b.loop(done)
	return nil
}

// Stop lets the loop write what is queued and waits for it, or for ctx.
// Later Publish calls fail with ErrStopped. Stop is idempotent.
func (b *Batcher) Stop(ctx context.Context) error {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		close(b.in)
	}
	b.mu.Unlock()
	if err := b.life.End(ctx); err != nil {
		return fmt.Errorf("publish: stop: %w", err)
	}
	return nil
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

func (b *Batcher) loop(done func()) {
	defer done()
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
		res, errs, ok := b.write(reqs)
		if !ok && len(reqs) > 1 {
			// One request's data may be to blame: each is written alone,
			// and only that one's publisher gets the error. SQLite rolled
			// the batch back; PostgreSQL's one statement did too unless
			// the panic came while reading its answer, after the commit:
			// then the batch is published twice, the duplicate a client
			// retrying a 500 would also have made.
			for i := range reqs {
				r, e, _ := b.write(reqs[i : i+1])
				res[i], errs[i] = r[0], e[0]
			}
		}
		for i, c := range batch {
			c.res, c.err = res[i], errs[i]
			close(c.done)
		}
	}
}

// errInternal is what the publishers of a batch whose write panicked get:
// the API answers 500, and the loop goes on serving the others.
var errInternal = errors.New("publish: internal error")

// write publishes reqs in one transaction (rolled back on a panic). A panic
// in the store, or an answer of the wrong length, must not end the loop and
// with it the process, which would lose every queued publish: ok is false
// then, and every request has errInternal.
//
// The rows the batch leased go to the Leaser, and each answer counts
// them in Leased: the caller wakes no dispatcher for them.
func (b *Batcher) write(reqs []webhook.PublishRequest) (res []webhook.Published, errs []error, ok bool) {
	var lease webhook.PublishLease
	if b.Leaser != nil {
		lease = b.Leaser.ReservePublish()
	}
	defer func() {
		p := recover()
		if lease.Limit > 0 {
			// Even from a wrong answer: leased rows left unsent would wait
			// for their lease to end.
			n := 0
			for i := range res {
				n += len(res[i].Jobs)
			}
			jobs := make([]webhook.Job, 0, n)
			for i := range res {
				jobs = append(jobs, res[i].Jobs...)
				res[i].Leased, res[i].Jobs = len(res[i].Jobs), nil
			}
			b.Leaser.TakePublished(lease, jobs)
		}
		if p == nil && len(res) == len(reqs) && len(errs) == len(reqs) {
			ok = true
			return
		}
		err := fmt.Errorf("%w: store answered %d results and %d errors for %d requests", errInternal, len(res), len(errs), len(reqs))
		if p != nil {
			err = fmt.Errorf("%w: panic: %v", errInternal, p)
			if b.Log != nil {
				b.Log.Error("publish batch panicked", "requests", len(reqs), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}
		res, errs, ok = make([]webhook.Published, len(reqs)), make([]error, len(reqs)), false
		for i := range errs {
			errs[i] = err
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	res, errs = b.store.PublishLeased(ctx, reqs, lease)
	return res, errs, false // the deferred check sets ok
}
