// Package publish coalesces concurrent publishes into one database
// transaction (group commit). A publish is a few rows; committing each on
// its own makes the commit, not the work, the cost, and a burst of
// publishers queue behind each other's commits.
//
// There is no batching goroutine: the first publisher to find no batch
// being written writes one itself, on its own goroutine (the leader);
// publishers arriving meanwhile queue, and when the leader's batch is
// written the oldest of them leads the next batch, of everything queued
// up to the limit (LevelDB's writer queue). An isolated publish is written
// by its own request's goroutine, with no hand-off to another goroutine
// and back: each hand-off woke an idle thread, most of the server's CPU
// at a low rate.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
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
	// Log receives the panics a batch's write recovers; set it before
	// Start. Nil discards them.
	Log *slog.Logger
	// Leaser, when set (before Start), is offered the rows of every batch
	// (not those of a keyed or held publish, which go alone).
	Leaser Leaser

	store Store
	limit int
	// room holds a token for each queued publish: at most 4*limit wait
	// for a batch, later ones wait here.
	room chan struct{}

	mu      sync.Mutex
	queue   []*call // waiting for a batch, oldest first
	leading bool    // a batch is being written, or its leader was chosen
	started bool
	stopped bool
	// drained is the Lifecycle's done, called once Stop has begun and no
	// batch is queued or being written.
	drained func()
	life    service.Lifecycle

	// The leader's buffers: one leader at a time uses them.
	batch []*call
	reqs  []webhook.PublishRequest
}

type call struct {
	req webhook.PublishRequest
	res webhook.Published
	err error
	// lead is set when the call is chosen to write the next batch (under
	// Batcher.mu, before wake is closed).
	lead bool
	// wake is closed once: lead is set, or (for a call that does not
	// lead) the answer is in res and err.
	wake chan struct{}
}

// New returns a Batcher that writes at most limit requests per
// transaction. It publishes nothing until Start.
func New(s Store, limit int) *Batcher {
	limit = max(1, limit)
	return &Batcher{store: s, limit: limit, room: make(chan struct{}, 4*limit)}
}

// Start lets publishes be written and returns at once. Publishes go on
// until Stop, not until ctx ends: what is queued must be written.
func (b *Batcher) Start(ctx context.Context) error {
	_, done, err := b.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("publish: batcher %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started, b.drained = true, done
	switch {
	case len(b.queue) > 0: // published before Start
		b.handOverLocked()
	case b.stopped:
		done()
	}
	return nil
}

// Stop lets what is queued be written and waits for it, or for ctx.
// Later Publish calls fail with ErrStopped; before Start, the queued ones
// do. Stop is idempotent.
func (b *Batcher) Stop(ctx context.Context) error {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		switch {
		case !b.started:
			for _, c := range b.queue {
				c.err = ErrStopped
				<-b.room
				close(c.wake)
			}
			clear(b.queue)
			b.queue = b.queue[:0]
		case !b.leading:
			b.drained()
		}
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
	select {
	case b.room <- struct{}{}:
	case <-ctx.Done():
		return webhook.Published{}, ctx.Err()
	}
	c := &call{req: req, wake: make(chan struct{})}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		<-b.room
		return webhook.Published{}, ErrStopped
	}
	b.queue = append(b.queue, c)
	leads := b.started && !b.leading
	if leads {
		// Nothing is being written, so nothing else is queued: c leads.
		b.leading, c.lead = true, true
	}
	b.mu.Unlock()
	if !leads {
		select {
		case <-c.wake:
		case <-ctx.Done():
			if b.leave(c) {
				// A batch may still commit it; as with a lost connection
				// the caller cannot know, which is what idempotency keys
				// are for.
				return webhook.Published{}, ctx.Err()
			}
			<-c.wake // chosen to lead meanwhile: the queue waits for it
		}
		if !c.lead {
			return c.res, c.err
		}
	}
	b.lead()
	return c.res, c.err
}

// leave takes c out of the queue when its publisher gives up, unless it
// was chosen to lead (false: it must), or a batch took it already.
func (b *Batcher) leave(c *call) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.lead {
		return false
	}
	if i := slices.Index(b.queue, c); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
		<-b.room
	}
	return true
}

// lead writes one batch, the oldest queued publishes up to the limit (the
// leader's own first), answers them, and hands the lead to the oldest
// publish still queued.
func (b *Batcher) lead() {
	b.mu.Lock()
	n := min(len(b.queue), b.limit)
	batch := append(b.batch[:0], b.queue[:n]...)
	for range n { // the room of each call the batch takes
		<-b.room
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	b.mu.Unlock()

	answered := false
	defer func() {
		// write recovers the store's panics; this is for one of ours:
		// no publisher is left waiting, and the lead passes on.
		for _, c := range batch {
			if !answered {
				c.res, c.err = webhook.Published{}, errInternal
			}
			if !c.lead { // the leader's own wake was spent choosing it, or never needed
				close(c.wake)
			}
		}
		clear(batch) // drop references to payloads
		b.batch = batch[:0]
		b.mu.Lock()
		b.handOverLocked()
		b.mu.Unlock()
	}()
	reqs := b.reqs[:0]
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
	}
	answered = true
	clear(reqs)
	b.reqs = reqs[:0]
}

// handOverLocked chooses the oldest queued publish to lead the next batch
// and wakes it, or records that no batch is being written (under mu).
// The next leader runs when the scheduler gets to it; under load, the
// publishes queued meanwhile join its batch. (Yielding to it at once,
// runtime.Gosched, made batches smaller and SQLite at saturation no
// faster: docs/BENCHMARKS.md, "Fewer wake-ups per event".)
func (b *Batcher) handOverLocked() {
	if len(b.queue) > 0 {
		next := b.queue[0]
		b.leading, next.lead = true, true
		close(next.wake)
		return
	}
	b.leading = false
	if b.stopped {
		b.drained()
	}
}

// errInternal is what the publishers of a batch whose write panicked get:
// the API answers 500, and the batcher goes on serving the others.
var errInternal = errors.New("publish: internal error")

// write publishes reqs in one transaction (rolled back on a panic). A panic
// in the store, or an answer of the wrong length, fails this batch only,
// never the process: ok is false then, and every request has errInternal.
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
