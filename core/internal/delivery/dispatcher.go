package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Queue is the durable queue of webhook events: the store implements it.
//
// Every claim gets a lease token of its own (Job.Lease, named after
// owner); a result, release or postponement names the lease it was made
// under and is applied only while the event still holds that lease, so a
// late answer of an earlier claim never overwrites a later one's, even in
// the same process.
type Queue interface {
	// Claim leases up to limit due events (state pending, next_attempt_at <=
	// now, lease free or expired) for lease, oldest due first, under a new
	// lease token of owner set on every job.
	Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error)
	// ClaimEvents leases the given pending events as Claim does (for
	// inline "async": false publishing); events already leased, or already
	// attempted in their current series (waiting for a retry), are skipped.
	ClaimEvents(ctx context.Context, owner string, ids []int64, lease time.Duration) ([]webhook.Job, error)
	// Complete writes results in one transaction: inserts each Attempt, sets
	// retry_count, state, next_attempt_at, response_http_status/content
	// (from the attempt), clears the lease. A result whose Lease the event
	// no longer holds is skipped (stale), not an error.
	Complete(ctx context.Context, results []webhook.Result) error
	// Release clears leases without recording an attempt, making the
	// events due at once (graceful shutdown of unstarted jobs).
	Release(ctx context.Context, leases []webhook.LeaseRef) error
	// Postpone clears leases and makes the events due at until, recording
	// no attempt (a hook over its rate limit).
	Postpone(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error
	// NextDue is how long until the earliest pending event not due yet
	// falls due (false: none is).
	NextDue(ctx context.Context) (time.Duration, bool, error)
}

// Countdowns computes retry waits: the countdown registry implements it.
type Countdowns interface {
	Wait(ctx context.Context, cfg webhook.CountdownConfig, retryCount int) (time.Duration, error)
}

// Callbacks runs post-delivery callbacks: the callback registry implements
// it.
type Callbacks interface {
	Call(ctx context.Context, name string, doc *webhook.CallbackDoc) error
	// Source names who registered name (a plugin file): each source has
	// its own callback queue.
	Source(name string) string
}

// ErrStopped is returned by DeliverNow once Stop has begun.
var ErrStopped = errors.New("delivery: dispatcher stopped")

// Stats are counters since New. Read them with Dispatcher.Stats.
type Stats struct {
	Attempts, Delivered, Failed, GivenUp int64
	// Postponed counts jobs given back to the queue because their hook was
	// over config.rate_limit_per_second.
	Postponed int64
	// CallbacksDropped counts callbacks skipped because the queue was full;
	// CallbackErrors those that failed or panicked.
	CallbacksDropped, CallbackErrors int64
}

// Dispatcher claims due events, delivers them and records the outcome. Its
// methods are safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	q      Queue
	cd     Countdowns
	cb     Callbacks
	log    *slog.Logger
	sender *Sender
	limits *limiter

	wake      chan struct{} // Notify; cap 1 so wake-ups coalesce
	dues      dueTimes      // when known pending events fall due (due.go)
	freed     chan struct{} // a worker finished; cap 1
	jobs      chan webhook.Job
	results   chan webhook.Result
	callbacks *callbackQueues
	inflight  atomic.Int64 // claimed and not yet finished
	// backlog is true while the last claim was full (or none has run
	// yet): due events may be waiting, and publishes lease nothing, so
	// the claim loop takes the oldest first (ReservePublish).
	backlog atomic.Bool

	// runCtx bounds deliveries, countdowns and callbacks; cancelled when a
	// shutdown runs out of time. claimCtx is cancelled when Stop begins.
	runCtx, claimCtx       context.Context
	cancelRun, cancelClaim context.CancelFunc
	// abandon is closed when Stop's ctx ends: the collector gives up
	// retrying a failed write.
	abandon chan struct{}

	mu       sync.Mutex
	started  bool
	stopping bool
	inline   sync.WaitGroup     // DeliverNow calls in flight
	taking   sync.WaitGroup     // publishes holding a ReservePublish
	release  []webhook.LeaseRef // claimed but never attempted
	stopOnce sync.Once
	stopped  chan struct{}

	// waiters are inline results sent to the collector and not yet
	// written (guarded by mu).
	waiters map[webhook.LeaseRef]*inlineWaiter

	collectorDone                chan struct{}
	claimers, workers, cbWorkers sync.WaitGroup

	stats struct{ attempts, delivered, failed, givenUp, postponed, cbDropped, cbErrors atomic.Int64 }
}

// New returns a Dispatcher. It does nothing until Start.
func New(cfg Config, q Queue, cd Countdowns, cb Callbacks, logger *slog.Logger) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if q == nil || cd == nil {
		return nil, errors.New("delivery: New needs a Queue and Countdowns")
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sender, err := NewSender(cfg)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg: cfg, q: q, cd: cd, cb: cb, log: logger, sender: sender, limits: newLimiter(cfg.Lease),
		wake:          make(chan struct{}, 1),
		dues:          dueTimes{rearm: make(chan struct{}, 1)},
		freed:         make(chan struct{}, 1),
		jobs:          make(chan webhook.Job, cfg.Workers+min(cfg.BatchSize, cfg.Workers)),
		results:       make(chan webhook.Result, cfg.Workers+cfg.BatchSize),
		callbacks:     newCallbackQueues(cfg.CallbackQueue, cfg.CallbackWorkers),
		abandon:       make(chan struct{}),
		stopped:       make(chan struct{}),
		collectorDone: make(chan struct{}),
		waiters:       map[webhook.LeaseRef]*inlineWaiter{},
	}
	d.runCtx, d.cancelRun = context.WithCancel(context.Background())
	d.claimCtx, d.cancelClaim = context.WithCancel(d.runCtx)
	d.backlog.Store(true)
	return d, nil
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner is the lease owner name of this dispatcher.
func (d *Dispatcher) Owner() string { return d.cfg.Owner }

// Stats returns the counters so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Attempts: d.stats.attempts.Load(), Delivered: d.stats.delivered.Load(),
		Failed: d.stats.failed.Load(), GivenUp: d.stats.givenUp.Load(), Postponed: d.stats.postponed.Load(),
		CallbacksDropped: d.stats.cbDropped.Load(), CallbackErrors: d.stats.cbErrors.Load(),
	}
}

// Start launches the claim loop, the workers, the result writer and the
// callback runners, and returns at once. Cancelling ctx aborts in-flight
// deliveries as a Stop whose time ran out would; call Stop to wait for the
// shutdown. Start after Start or Stop is an error.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.stopping {
		return fmt.Errorf("delivery: dispatcher %w", service.ErrStarted)
	}
	d.started = true
	for range d.cfg.Workers {
		d.workers.Add(1)
		go d.worker()
	}
	for range d.cfg.CallbackWorkers {
		d.cbWorkers.Add(1)
		go d.callbackWorker()
	}
	go d.collect()
	for range d.cfg.Claimers {
		d.claimers.Add(1)
		go d.claimLoop()
	}
	go func() {
		// The workers end when the last claim loop, and the last publish
		// that reserved room, have handed over their jobs.
		d.claimers.Wait()
		d.taking.Wait()
		close(d.jobs)
	}()
	go func() {
		select {
		case <-ctx.Done():
			expired, cancel := context.WithCancel(context.Background())
			cancel()
			_ = d.Stop(expired) // Stop's own caller gets its answer
		case <-d.stopped:
		}
	}()
	return nil
}

// Notify wakes the claim loop at once: new events were published. It never
// blocks, and wake-ups that arrive while one is pending coalesce.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// claimLoop keeps the workers fed. It claims ahead up to one batch more
// than the workers hold (at most Workers more, so a claimed event waits for
// at most one attempt before its own, well inside its lease), and claims
// again when half a batch of room is free: claims stay large under load, and
// a worker never waits for a claim's round trip.
func (d *Dispatcher) claimLoop() {
	defer d.claimers.Done()
	poll := time.NewTimer(d.cfg.PollInterval)
	defer poll.Stop()
	backoff := time.Duration(0)
	for d.claimCtx.Err() == nil {
		n := d.reserve()
		if n == 0 {
			select {
			case <-d.freed:
			case <-d.claimCtx.Done():
				return
			}
			continue
		}
		d.dues.consume(d.cfg.Now())
		// A wake-up that came before the claim is answered by it: the
		// events it announces were committed before the claim's statement
		// began. Left pending, it would make another claim that finds
		// nothing (a batch of publishes wakes once per request).
		select {
		case <-d.wake:
		default:
		}
		jobs, err := safely(d, "claim", func() ([]webhook.Job, error) {
			// Stop does not cut a claim short: cancelled mid-statement, it
			// may still have leased rows (PostgreSQL commits what it ran)
			// that nobody would give back until the lease ends. A claim
			// that returns after Stop hands its jobs to the workers, which
			// release them unstarted.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.claimCtx), claimTimeout)
			defer cancel()
			return d.q.Claim(ctx, d.cfg.Owner, n, d.cfg.Lease)
		})
		d.inflight.Add(int64(len(jobs) - n)) // give back what the claim did not fill
		if err != nil {
			if d.claimCtx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff)
			d.log.Error("claim due events failed; retrying", "error", err, "retry_in", backoff)
			poll.Reset(backoff)
			select {
			case <-poll.C:
			case <-d.claimCtx.Done():
				return
			}
			continue
		}
		if backoff > 0 {
			d.log.Info("claiming due events again")
			backoff = 0
		}
		d.backlog.Store(len(jobs) == n)
		for i := range jobs {
			d.jobs <- jobs[i] // never blocks: the channel holds capacity jobs
		}
		if len(jobs) == n {
			continue // a full batch: more may be due
		}
		if len(jobs) == 0 {
			d.learnNextDue()
		}
		if !d.idle(poll) {
			return
		}
	}
}

// idle waits for a wake-up, the poll or the earliest known due time
// (dueTimes), whichever comes first; false when the
// claim loop is to stop. A retry written while it waits re-arms the timer
// without a claim.
func (d *Dispatcher) idle(poll *time.Timer) bool {
	for {
		wait := d.cfg.PollInterval
		if at, ok := d.dues.earliest(); ok {
			// dueSlack: the row is due by the database's clock a moment
			// after the node computed the time (the write's round trip).
			wait = min(wait, max(at.Add(dueSlack).Sub(d.cfg.Now()), 0))
		}
		poll.Reset(wait)
		select {
		case <-d.wake:
			return true
		case <-poll.C:
			return true
		case <-d.dues.rearm:
			if !poll.Stop() {
				select {
				case <-poll.C:
				default:
				}
			}
		case <-d.claimCtx.Done():
			return false
		}
	}
}

// reserve takes room for up to one batch of jobs, or returns 0 when less
// than half a batch is free. Reserving before claiming keeps concurrent
// claim loops, and publishes leasing their rows, within capacity.
func (d *Dispatcher) reserve() int {
	prefetch := int64(min(d.cfg.BatchSize, d.cfg.Workers))
	return d.reserveAtLeast(max(1, prefetch/2))
}

// reserveAtLeast takes room for up to one batch of jobs if at least least
// is free, or returns 0.
func (d *Dispatcher) reserveAtLeast(least int64) int {
	prefetch := int64(min(d.cfg.BatchSize, d.cfg.Workers))
	capacity := int64(d.cfg.Workers) + prefetch
	for {
		cur := d.inflight.Load()
		free := capacity - cur
		if free < least {
			return 0
		}
		n := min(free, int64(d.cfg.BatchSize))
		if d.inflight.CompareAndSwap(cur, cur+n) {
			return int(n)
		}
	}
}

// ReservePublish offers a publish batch the room the workers have free
// (up to one batch of jobs): the publish leases that many of its new
// rows to this node in its own statement and hands them over with
// TakePublished, so they are sent without a claim, a wake-up or a
// NOTIFY. Nothing is offered before Start, once Stop has begun, or while
// the last claim was full: events already due go first, oldest first,
// and new ones wait their turn in the queue as before.
func (d *Dispatcher) ReservePublish() webhook.PublishLease {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopping || d.backlog.Load() {
		return webhook.PublishLease{}
	}
	n := d.reserveAtLeast(1)
	if n == 0 {
		return webhook.PublishLease{}
	}
	d.taking.Add(1) // the workers' queue stays open until TakePublished
	return webhook.PublishLease{Owner: d.cfg.Owner, Lease: d.cfg.Lease, Limit: n}
}

// TakePublished hands the jobs a publish leased under lease (from
// ReservePublish, at most its Limit) to the workers, as a claim's, and
// gives back the room they did not fill. Jobs taken once Stop has begun
// are released unstarted, as a claim's are.
func (d *Dispatcher) TakePublished(lease webhook.PublishLease, jobs []webhook.Job) {
	if lease.Limit <= 0 {
		return
	}
	defer d.taking.Done()
	if len(jobs) > lease.Limit {
		// Never: the store leases at most Limit rows. The rest wait for
		// their lease to end rather than overfill the workers' queue.
		d.log.Error("a publish leased more events than reserved; the rest are sent when their lease ends",
			"reserved", lease.Limit, "leased", len(jobs))
		jobs = jobs[:lease.Limit]
	}
	for i := range jobs {
		d.jobs <- jobs[i] // never blocks: the room was reserved
	}
	if len(jobs) == lease.Limit {
		// As after a full claim: rows past the room may be waiting
		// unleased, and the claim loop takes them before later publishes
		// lease theirs.
		d.backlog.Store(true)
	}
	if unused := lease.Limit - len(jobs); unused > 0 {
		d.inflight.Add(-int64(unused))
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}
}

// claimTimeout bounds one claim statement, which Stop lets finish.
const claimTimeout = 10 * time.Second

func nextBackoff(b time.Duration) time.Duration {
	return min(max(2*b, 100*time.Millisecond), 5*time.Second)
}

func (d *Dispatcher) worker() {
	defer d.workers.Done()
	defer d.respawn()
	for job := range d.jobs {
		if d.claimCtx.Err() != nil {
			// Stop began before this job started: give it back.
			d.addRelease(job.LeaseRef())
		} else if d.awaiting(&job) {
			d.await(&job)
		} else if until, ok := d.admit(&job); !ok {
			d.postpone(&job, until)
		} else if res, ok := d.attempt(&job); ok {
			select {
			case d.results <- res:
			case <-d.runCtx.Done():
				d.log.Warn("shutdown out of time; attempt not recorded, the lease will expire and it will be retried",
					"event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID, "attempt", res.RetryCount)
			}
		} else {
			d.addRelease(job.LeaseRef())
		}
		d.inflight.Add(-1)
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}
}

func (d *Dispatcher) addRelease(l webhook.LeaseRef) {
	d.mu.Lock()
	d.release = append(d.release, l)
	d.mu.Unlock()
}

// admit applies the hook's rate limit: ok, or the time to postpone job to.
// Jobs that are not sent (see sendable) are admitted.
func (d *Dispatcher) admit(job *webhook.Job) (until time.Time, ok bool) {
	if !sendable(job) {
		return time.Time{}, true
	}
	return d.limits.admit(job, d.cfg.Now())
}

// postpone gives job back to the queue, due at until. If that fails, the
// lease expires and the job comes back then.
func (d *Dispatcher) postpone(job *webhook.Job, until time.Time) {
	d.stats.postponed.Add(1)
	ctx, cancel := context.WithTimeout(d.runCtx, 10*time.Second)
	defer cancel()
	if err := d.q.Postpone(ctx, []webhook.LeaseRef{job.LeaseRef()}, until); err != nil {
		d.log.Error("postpone a rate-limited event failed; it is retried when its lease expires",
			"event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID, "error", err)
		return
	}
	d.dues.add(until)
	if d.log.Enabled(ctx, slog.LevelDebug) {
		d.log.Debug("rate limited; postponed", "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID, "until", until)
	}
}

// attemptOnce delivers job once and returns the result to record. ok is
// false when a shutdown aborted the attempt: it is released, not recorded.
// Callers use attempt, which recovers a panic.
func (d *Dispatcher) attemptOnce(job *webhook.Job) (webhook.Result, bool) {
	ctx := d.runCtx
	ev, hook := &job.Event, &job.Webhook
	if !sendable(job) {
		return d.inactive(job), true
	}
	if hook.SecretsError != "" {
		// Never sent unsigned or signed with anything but its secret: a
		// failed attempt, retried in case the row or the keyring is fixed.
		d.log.Error("not sent: the hook's secrets cannot be decrypted", "event_uuid", ev.UUID, "webhook_id", hook.ID,
			"error", hook.SecretsError)
		return d.unsent(job, "not sent: "+hook.SecretsError), true
	}
	sent := d.sender.Send(ctx, job)
	if !sent.Delivered && ctx.Err() != nil {
		return webhook.Result{}, false
	}
	res := webhook.Result{EventID: ev.ID, Lease: job.Lease, WebhookID: hook.ID, Attempt: sent.Attempt, RetryCount: ev.RetryCount + 1}
	if sent.Transform != nil {
		// Nothing was sent: the result says nothing about the endpoint's
		// health (WebhookID zero, as for unsent attempts).
		res.WebhookID = 0
	}
	series := res.RetryCount - ev.RetryBase
	d.stats.attempts.Add(1)
	switch {
	case sent.Transform != nil && sent.Transform.Cancelled:
		// The transform decided this event is not for the receiver:
		// retrying would decide the same (docs/PLUGINS.md, "Transforms").
		res.State, res.NextAttemptAt = webhook.StateGivenUp, sent.Attempt.AttemptedAt
		d.stats.givenUp.Add(1)
		if d.log.Enabled(ctx, slog.LevelInfo) {
			d.log.Info("cancelled by the hook's transform; given up", "event_uuid", ev.UUID, "webhook_id", hook.ID,
				"transform", sent.Transform.Name)
		}
	case sent.Delivered:
		res.State, res.NextAttemptAt = webhook.StateDelivered, sent.Attempt.AttemptedAt
		d.stats.delivered.Add(1)
		if d.log.Enabled(ctx, slog.LevelDebug) {
			d.log.Debug("delivered", "event_uuid", ev.UUID, "webhook_id", hook.ID, "attempt", res.RetryCount, "status", sent.Attempt.Status)
		}
	case sent.Attempt.Status == http.StatusGone:
		// The receiver says the endpoint is gone for good: retrying cannot
		// help, and the queue deactivates the hook on this result.
		res.State, res.NextAttemptAt = webhook.StateGivenUp, sent.Attempt.AttemptedAt
		d.stats.givenUp.Add(1)
		d.log.Warn("target answered 410 Gone; given up, the hook is deactivated", "event_uuid", ev.UUID,
			"webhook_id", hook.ID, "attempt", res.RetryCount)
	case series >= d.cfg.MaxRetries:
		res.State, res.NextAttemptAt = webhook.StateGivenUp, sent.Attempt.AttemptedAt
		d.stats.givenUp.Add(1)
		d.log.Warn("given up after max_retries attempts", "event_uuid", ev.UUID, "webhook_id", hook.ID,
			"attempt", res.RetryCount, "status", sent.Attempt.Status, "error", sent.Attempt.Error)
	default:
		wait, cdErr := d.wait(ctx, job, series-1)
		if cdErr != nil { // the tenant sees why the schedule changed in the attempt log
			res.Attempt.Error = storable(strings.TrimPrefix(res.Attempt.Error+"; ", "; ") + cdErr.Error())
		}
		res.State, res.NextAttemptAt = webhook.StatePending, d.cfg.Now().Add(wait)
		d.stats.failed.Add(1)
		if d.log.Enabled(ctx, slog.LevelInfo) {
			d.log.Info("attempt failed; retry scheduled", "event_uuid", ev.UUID, "webhook_id", hook.ID,
				"attempt", res.RetryCount, "status", sent.Attempt.Status, "error", sent.Attempt.Error, "retry_in", wait)
		}
	}
	if d.cfg.Observer != nil {
		d.cfg.Observer.ObserveAttempt(res.State, sent.Attempt.Status, sent.Attempt.Duration)
	}
	if hook.Callback != "" && d.cb != nil {
		d.enqueueCallback(callbackTask{job: *job, sent: sent, res: res})
	}
	return res, true
}

// sendable reports whether job's hook, as the claim read it, still wants
// the event: it is active and still subscribes to the event's type (its
// owner may have changed event_type after the event was queued).
func sendable(job *webhook.Job) bool {
	return job.Webhook.IsActive && job.Webhook.EventType == job.Event.EventType
}

// inactive is the result of a job that is not sendable: its hook was
// deactivated, or moved to another event type, after the event was queued.
// Nothing is sent (a dead or unwanted endpoint is not hammered), the event
// is given up with the reason in its attempt log, and its owner can
// redeliver it after activating the hook again. WebhookID stays zero: the
// result says nothing about the endpoint's health.
func (d *Dispatcher) inactive(job *webhook.Job) webhook.Result {
	msg, reason := "webhook is inactive", job.Webhook.DisabledReason
	if job.Webhook.IsActive {
		reason = fmt.Sprintf("it subscribes to %q now, not %q", job.Webhook.EventType, job.Event.EventType)
		msg = "webhook no longer subscribes to this event type"
	}
	if reason != "" {
		msg += ": " + reason
	}
	now := d.cfg.Now()
	d.stats.givenUp.Add(1)
	if d.log.Enabled(d.runCtx, slog.LevelInfo) {
		d.log.Info("not sent: "+msg+"; given up", "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID)
	}
	return webhook.Result{
		EventID: job.Event.ID, Lease: job.Lease, RetryCount: job.Event.RetryCount + 1,
		State: webhook.StateGivenUp, NextAttemptAt: now,
		Attempt: webhook.Attempt{AttemptedAt: now, Error: msg, Class: webhook.ClassInactive},
	}
}

// wait is the hook's countdown after retries failed retries, falling back
// to the configured default when the hook's countdown fails (or panics);
// cdErr then says so, for the attempt log.
func (d *Dispatcher) wait(ctx context.Context, job *webhook.Job, retries int) (w time.Duration, cdErr error) {
	w, err := d.countdown(ctx, job.Webhook.RetryCountdown, retries)
	if err == nil {
		return w, nil
	}
	d.log.Warn("countdown failed; using delivery.default_retry_countdown", "event_uuid", job.Event.UUID,
		"webhook_id", job.Webhook.ID, "attempt", job.Event.RetryCount+1, "countdown", job.Webhook.RetryCountdown.Choice, "error", err)
	cdErr = fmt.Errorf("retry countdown %q failed (%w); retried on the server's default countdown", job.Webhook.RetryCountdown.Choice, err)
	w, err = d.countdown(ctx, d.cfg.DefaultCountdown, retries)
	if err == nil {
		return w, cdErr
	}
	d.log.Error("default countdown failed", "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID, "error", err)
	return fallbackWait(retries), cdErr
}

// resultLinger is how long the collector waits to fill a batch of results
// before writing a partial one when a result in it is awaited (DeliverNow
// answers once it is written); resultLingerIdle when none is. Nothing but
// the attempt log waits for the others (a retry's due time is the
// attempt's time plus its countdown, whenever it is written), and at a
// low rate the longer wait puts several results in one transaction and one
// commit: at 150 events/s, one write per ~4 events instead of one per event.
const (
	resultLinger     = 5 * time.Millisecond
	resultLingerIdle = 25 * time.Millisecond
)

// collect writes results back in batches: one transaction per BatchSize
// results or per linger (resultLinger, resultLingerIdle), whichever comes
// first.
func (d *Dispatcher) collect() {
	defer close(d.collectorDone)
	batch := make([]webhook.Result, 0, d.cfg.BatchSize)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var deadline time.Time
	// arm makes the batch's deadline r's linger from now, if earlier.
	arm := func(r *webhook.Result) {
		wait := resultLingerIdle
		if d.awaited(r) {
			wait = resultLinger
		}
		if at := time.Now().Add(wait); len(batch) == 1 || at.Before(deadline) {
			deadline = at
			linger.Reset(wait)
		}
	}
	for {
		if len(batch) == 0 {
			r, ok := <-d.results
			if !ok {
				return
			}
			batch = append(batch, r)
			arm(&batch[0])
			continue
		}
		select {
		case r, ok := <-d.results:
			if !ok {
				d.flush(batch)
				d.written(batch)
				return
			}
			batch = append(batch, r)
			if len(batch) < d.cfg.BatchSize {
				arm(&batch[len(batch)-1])
				continue
			}
			linger.Stop()
		case <-linger.C:
		}
		d.flush(batch)
		d.written(batch)
		d.noteRetries(batch)
		clear(batch) // drop references to bodies
		batch = batch[:0]
	}
}

// flush writes results, retrying with backoff while the database fails:
// results are never dropped unless a shutdown runs out of time, and then
// their leases expire and the events are delivered again.
func (d *Dispatcher) flush(results []webhook.Result) {
	var backoff time.Duration
	for {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Lease)
		err := d.complete(ctx, results)
		cancel()
		if err == nil {
			if backoff > 0 {
				d.log.Info("results written again", "results", len(results))
			}
			return
		}
		backoff = nextBackoff(backoff)
		select {
		case <-d.abandon:
			d.log.Error("shutdown out of time; results not written, their leases will expire and the events will be retried",
				"results", len(results), "error", err)
			return
		default:
		}
		d.log.Error("write results failed; retrying", "results", len(results), "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-d.abandon:
			t.Stop()
		}
	}
}

// DeliverNow makes the first attempt of the given pending events inline
// (publish with "async": false) and returns their outcomes, in the order of
// ids. Events another dispatcher holds, or already attempted (a fan-out
// that outlasted its hold left them to the claim loop), are skipped. A
// failed attempt is retried in the background on the hook's schedule. The
// attempts do not end when ctx does (a client hanging up must not turn
// into a failed attempt); they are bounded by the request timeout, and each
// database call by a lease.
//
// At most Workers attempts run at once, and events are claimed only when
// workers are free to send them at once (all the free ones in one claim):
// a wide fan-out never holds claimed events that wait behind others past
// their lease (for the claim loop to take back and send again). Each result
// is written in the result writer's next batch, and its worker is free only
// once it is written. Events not claimed yet stay out of the claim loop's
// reach for the publish's hold (delivery.lease); a fan-out that outlasts it
// leaves the rest to the claim loop, each still sent once.
func (d *Dispatcher) DeliverNow(ctx context.Context, ids []int64) ([]webhook.Outcome, error) {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return nil, ErrStopped
	}
	d.inline.Add(1)
	d.mu.Unlock()
	defer d.inline.Done()

	outs := make([]webhook.Outcome, len(ids))
	done := make([]bool, len(ids))
	var wg sync.WaitGroup
	slots := newInlineSlots(d.cfg.Workers)
	var claimErr error
	claimed := 0
	for next := 0; next < len(ids) && d.claimCtx.Err() == nil; {
		n := slots.take(len(ids) - next)
		idx := make(map[int64]int, n)
		for i := next; i < next+n; i++ {
			idx[ids[i]] = i
		}
		jobs, err := d.claimInline(ctx, ids[next:next+n])
		next += n
		slots.put(n - len(jobs))
		if err != nil {
			claimErr = err
			break // the rest are delivered in the background
		}
		claimed += len(jobs)
		for k := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				i := idx[jobs[k].Event.ID]
				outs[i], done[i] = d.deliverInline(ctx, &jobs[k], slots)
			}()
		}
	}
	wg.Wait()
	if claimErr != nil {
		if claimed == 0 {
			return nil, fmt.Errorf("claim events for inline delivery: %w", claimErr)
		}
		d.log.Error("claim events for inline delivery failed; the rest are delivered in the background", "error", claimErr)
	}
	out := make([]webhook.Outcome, 0, claimed)
	for i := range outs {
		if done[i] {
			out = append(out, outs[i])
		}
	}
	return out, nil
}

// deliverInline makes job's attempt for DeliverNow, has its result written
// and frees its slot. ok is false when a shutdown aborted the attempt (its
// lease is given back). A panic (a bug in the rate limiter, the queue or
// here) is that event's outcome, an internal error; its lease expires.
func (d *Dispatcher) deliverInline(ctx context.Context, job *webhook.Job, slots *inlineSlots) (out webhook.Outcome, ok bool) {
	freed := false // the slot is put back, or writeInline will
	defer func() {
		if p := recover(); p != nil {
			err := d.recovered("inline delivery", p, "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID)
			if !freed {
				slots.put(1)
			}
			out, ok = webhook.Outcome{
				EventID: job.Event.ID, UUID: job.Event.UUID, WebhookID: job.Webhook.ID,
				Error: storable("internal error: " + err.Error()), ErrorClass: webhook.ClassInternal,
				RetryCount: job.Event.RetryCount, State: webhook.StatePending,
			}, true
		}
	}()
	if d.awaiting(job) {
		// Its plugin is still loading: delivered in the background.
		until := d.await(job)
		freed = true
		slots.put(1)
		return webhook.Outcome{
			EventID: job.Event.ID, UUID: job.Event.UUID, WebhookID: job.Webhook.ID,
			Error: "waiting for the plugins to load: sent at next_attempt_at", RetryCount: job.Event.RetryCount,
			State: webhook.StatePending, NextAttemptAt: until,
		}, true
	}
	if until, ok := d.admit(job); !ok {
		// Over the hook's rate limit: delivered in the background.
		d.postpone(job, until)
		freed = true
		slots.put(1)
		return webhook.Outcome{
			EventID: job.Event.ID, UUID: job.Event.UUID, WebhookID: job.Webhook.ID,
			Error: "rate limited (config.rate_limit_per_second): sent at next_attempt_at", RetryCount: job.Event.RetryCount,
			State: webhook.StatePending, NextAttemptAt: until, ErrorClass: webhook.ClassRateLimited,
		}, true
	}
	r, ok := d.attempt(job)
	if !ok {
		rctx, cancel := d.inlineCtx(ctx)
		defer cancel()
		if err := d.q.Release(rctx, []webhook.LeaseRef{job.LeaseRef()}); err != nil {
			d.log.Error("release an aborted inline delivery", "event_uuid", job.Event.UUID, "error", err)
		}
		freed = true
		slots.put(1)
		return webhook.Outcome{}, false
	}
	freed = true
	d.writeInline(ctx, r, slots)
	return webhook.Outcome{
		EventID: job.Event.ID, UUID: job.Event.UUID, WebhookID: job.Webhook.ID,
		Status: r.Attempt.Status, Delivered: r.State == webhook.StateDelivered, Error: r.Attempt.Error,
		ErrorClass: r.Attempt.Class, RetryCount: r.RetryCount, State: r.State, NextAttemptAt: r.NextAttemptAt,
	}, true
}

// Stop stops claiming, lets in-flight deliveries finish until ctx ends
// (then aborts them), gives back the leases of claimed events it never
// attempted, writes the pending results and drains the callbacks. Writes to
// the database use context.WithoutCancel(ctx), so they happen even when ctx
// is already done. Stop is idempotent; later calls wait for the first.
// After Stop, DeliverNow returns ErrStopped.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { d.shutdown(ctx) })
	if err := service.Wait(ctx, d.stopped); err != nil {
		return fmt.Errorf("delivery: stop: %w", err)
	}
	return nil
}

func (d *Dispatcher) shutdown(ctx context.Context) {
	defer close(d.stopped)
	d.mu.Lock()
	d.stopping = true
	started := d.started
	d.mu.Unlock()
	d.cancelClaim()
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-ctx.Done():
			d.cancelRun()
			close(d.abandon)
		case <-watchDone:
		}
	}()
	if !started {
		d.inline.Wait()
		d.cancelRun()
		d.sender.Close()
		return
	}
	d.workers.Wait() // bounded: ctx's end cancels runCtx, which aborts attempts
	d.inline.Wait()

	d.mu.Lock()
	ids := d.release
	d.release = nil
	d.mu.Unlock()
	if len(ids) > 0 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := d.q.Release(rctx, ids); err != nil {
			d.log.Error("release unstarted events failed; their leases will expire", "events", len(ids), "error", err)
		}
		cancel()
	}
	close(d.results)
	<-d.collectorDone // bounded: flush gives up when ctx ends

	d.callbacks.close()
	d.cbWorkers.Wait() // bounded: ctx's end cancels runCtx, which callbacks get
	d.cancelRun()
	d.sender.Close()
}
