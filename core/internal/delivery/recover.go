package delivery

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A panic on one tenant's data (a countdown on odd kwargs, a bug in the
// sender or the store on some row) must not take the process down: the
// event would still be leased when it restarts, be claimed again and crash
// the node again. The functions here turn such a panic into a failed
// attempt or an error, and log its stack once.

// panicError is a recovered panic.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// recovered logs a recovered panic p with its stack (once, here) and
// returns it as an error. Call it from the deferred function that
// recovered, so the stack shows where it happened.
func (d *Dispatcher) recovered(what string, p any, attrs ...any) error {
	d.log.Error(what+" panicked", append(attrs, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
	return &panicError{value: p}
}

// safely calls f, turning a panic into an error.
func safely[T any](d *Dispatcher, what string, f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = d.recovered(what, p)
		}
	}()
	return f()
}

// attempt is attemptOnce with a panic turned into a failed attempt: the
// error is recorded in the attempt log, the event is retried on
// delivery.default_retry_countdown and given up after max_retries like any
// other failure, so a poison event cannot crash-loop a node.
func (d *Dispatcher) attempt(job *webhook.Job) (res webhook.Result, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			err := d.recovered("attempt", p, "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID)
			res, ok = d.panicked(job, err), true
		}
	}()
	return d.attemptOnce(job)
}

// panicked is the result of an attempt that panicked. WebhookID stays zero:
// the panic says nothing about the endpoint's health. The counters may
// count the attempt twice when it panicked after counting itself: a panic
// is a bug, logged, and its counts are not worth a second code path.
func (d *Dispatcher) panicked(job *webhook.Job, err error) webhook.Result {
	return d.unsent(job, "internal error: "+err.Error())
}

// unsent is the result of an attempt that sent nothing because of a fault
// on the server's side (a panic, a hook whose secrets do not open): a
// failed attempt with msg in its log, retried on delivery.default_retry_countdown
// (the hook's own countdown is tenant data that may be the fault) and given
// up after max_retries. WebhookID stays zero: it says nothing about the
// endpoint's health.
func (d *Dispatcher) unsent(job *webhook.Job, msg string) webhook.Result {
	ev := &job.Event
	now := d.cfg.Now()
	res := webhook.Result{
		EventID: ev.ID, Lease: job.Lease, RetryCount: ev.RetryCount + 1, State: webhook.StateGivenUp, NextAttemptAt: now,
		Attempt: webhook.Attempt{AttemptedAt: now, Error: storable(msg), Class: webhook.ClassInternal},
	}
	d.stats.attempts.Add(1)
	if series := res.RetryCount - ev.RetryBase; series >= d.cfg.MaxRetries {
		d.stats.givenUp.Add(1)
		return res
	}
	wait, werr := d.countdown(d.runCtx, d.cfg.DefaultCountdown, res.RetryCount-ev.RetryBase-1)
	if werr != nil {
		wait = fallbackWait(res.RetryCount - ev.RetryBase - 1)
	}
	d.stats.failed.Add(1)
	res.State, res.NextAttemptAt = webhook.StatePending, now.Add(wait)
	return res
}

// countdown is Countdowns.Wait with a panic turned into an error: a
// countdown that panics on a hook's kwargs is a countdown that failed.
func (d *Dispatcher) countdown(ctx context.Context, cfg webhook.CountdownConfig, retries int) (w time.Duration, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = d.recovered("countdown", p, "countdown", cfg.Choice)
		}
	}()
	return d.cd.Wait(ctx, cfg, retries)
}

// fallbackWait is the wait when even the default countdown failed:
// 2^retries seconds, capped near an hour.
func fallbackWait(retries int) time.Duration {
	return time.Second << min(max(retries, 0), 12)
}

// complete writes results. If the write panics (a bug on some result), the
// results are written one by one, and for one whose write panics alone a
// minimal failed result is written instead (failedWrite), so the event's
// retry count advances and max_retries ends it. If that panics too, the
// result is dropped: its lease expires and the event is attempted again.
// Neither the collector nor the results behind it are stopped by it: a
// panic anywhere here is logged and the batch counts as written.
func (d *Dispatcher) complete(ctx context.Context, results []webhook.Result) (err error) {
	defer func() {
		if p := recover(); p != nil {
			_ = d.recovered("result writer", p, "results", len(results))
			err = nil // a retry would panic again; the leases expire
		}
	}()
	err = d.completeGuarded(ctx, results)
	var pe *panicError
	if !errors.As(err, &pe) {
		return err
	}
	for i := range results {
		err := d.completeGuarded(ctx, results[i:i+1])
		switch {
		case errors.As(err, &pe):
			fallback := d.failedWrite(ctx, results[i], pe)
			werr := d.completeGuarded(ctx, []webhook.Result{fallback})
			if werr == nil {
				d.log.Error("result replaced: writing it panicked; a failed attempt was written instead",
					"event_id", results[i].EventID, "attempt", results[i].RetryCount, "state", fallback.State)
				continue
			}
			d.log.Error("result dropped: writing it panicked; its lease will expire and the event will be attempted again",
				"event_id", results[i].EventID, "attempt", results[i].RetryCount, "error", werr)
		case err != nil:
			return err // the caller retries the batch; the rows written are skipped as stale
		}
	}
	return nil
}

// failedWrite is the minimal result written for res when writing res
// panicked: the same lease and attempt count, the error text only, class
// internal, no hook (the endpoint's health is not in question). It is
// retried on delivery.default_retry_countdown, or given up if res was, or if
// res.RetryCount reached max_retries (the Result has no redelivery base,
// so after a redelivery it may give up earlier than a failure would).
func (d *Dispatcher) failedWrite(ctx context.Context, res webhook.Result, pe *panicError) webhook.Result {
	now := d.cfg.Now()
	out := webhook.Result{
		EventID: res.EventID, Lease: res.Lease, RetryCount: res.RetryCount, State: webhook.StateGivenUp, NextAttemptAt: now,
		Attempt: webhook.Attempt{AttemptedAt: now, Class: webhook.ClassInternal,
			Error: storable("internal error: writing the result failed: " + pe.Error())},
	}
	if res.State == webhook.StateGivenUp || res.RetryCount >= d.cfg.MaxRetries {
		return out
	}
	wait, err := d.countdown(ctx, d.cfg.DefaultCountdown, res.RetryCount-1)
	if err != nil {
		wait = fallbackWait(res.RetryCount - 1)
	}
	out.State, out.NextAttemptAt = webhook.StatePending, now.Add(wait)
	return out
}

func (d *Dispatcher) completeGuarded(ctx context.Context, results []webhook.Result) error {
	_, err := safely(d, "write results", func() (struct{}, error) {
		return struct{}{}, d.q.Complete(ctx, results)
	})
	return err
}

// respawn is deferred by a worker: a panic outside an attempt (a bug in
// the rate limiter, or the queue) ends only that worker's job, whose lease
// expires, and a new worker takes its place.
func (d *Dispatcher) respawn() {
	p := recover()
	if p == nil {
		return
	}
	_ = d.recovered("delivery worker", p)
	d.inflight.Add(-1) // the job it held
	select {
	case d.freed <- struct{}{}:
	default:
	}
	d.workers.Add(1) // before the dying worker's Done, so Stop never sees zero early
	go d.worker()
}
