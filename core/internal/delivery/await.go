package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Plugins tells whether a hook has to wait for the plugins still loading
// when the server starts: core/app implements it over the plugin host and
// the registries.
type Plugins interface {
	// Awaits reports whether the countdown or the callback (either may
	// be empty) is not registered yet while a plugin that may declare it
	// is still loading.
	Awaits(countdown, callback string) bool
	// AwaitsTransform is Awaits for a transform's name.
	AwaitsTransform(name string) bool
}

// awaitRetry is how soon a job waiting for plugins is due again.
const awaitRetry = 500 * time.Millisecond

// awaiting reports whether job's hook needs a plugin that is still
// loading. Such a job is not attempted: a failure would be retried on the
// default countdown instead of the hook's, and its callback would not run.
func (d *Dispatcher) awaiting(job *webhook.Job) bool {
	if d.cfg.Plugins == nil || !sendable(job) {
		return false
	}
	t := job.Webhook.Transform
	return d.cfg.Plugins.Awaits(job.Webhook.RetryCountdown.Choice, job.Webhook.Callback) ||
		t != nil && d.cfg.Plugins.AwaitsTransform(t.Name)
}

// await gives job back to the queue unattempted, due again after
// awaitRetry, and returns when. If that fails, the lease expires and the
// job comes back then.
func (d *Dispatcher) await(job *webhook.Job) time.Time {
	until := d.cfg.Now().Add(awaitRetry)
	ctx, cancel := context.WithTimeout(d.runCtx, 10*time.Second)
	defer cancel()
	if err := d.q.Postpone(ctx, []webhook.LeaseRef{job.LeaseRef()}, until); err != nil {
		d.log.Error("postpone an event waiting for plugins failed; it is retried when its lease expires",
			"event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID, "error", err)
		return until
	}
	if d.log.Enabled(ctx, slog.LevelDebug) {
		d.log.Debug("waiting for plugins to load; postponed", "event_uuid", job.Event.UUID, "webhook_id", job.Webhook.ID,
			"countdown", job.Webhook.RetryCountdown.Choice, "callback", job.Webhook.Callback)
	}
	return until
}
