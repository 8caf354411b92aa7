package plugin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Observer is told about every call into a plugin (metrics). Its method
// must be fast and safe for concurrent use: it runs on the delivery path.
type Observer interface {
	// ObservePluginCall reports one call: the plugin's file name, the call
	// ("countdown", "validate", "callback", "filter" or "transform"), its
	// duration, and the
	// plugin's failure (trap, timeout, bad output, unloaded) or nil. A
	// validator's field errors are an answer, not a failure.
	ObservePluginCall(file, call string, d time.Duration, err error)
}

// LoadObserver, when the Observer implements it too, is told of each
// file that fails to load or to register (stage "load" or "register"):
// the server publishes whisperer.plugin.failed from it.
type LoadObserver interface {
	ObservePluginLoadFailure(file, stage string, err error)
}

// observeLoadFailure tells the Observer, if it listens, that file failed.
func (h *Host) observeLoadFailure(file, stage string, err error) {
	if o, ok := h.cfg.Observer.(LoadObserver); ok {
		o.ObservePluginLoadFailure(file, stage, err)
	}
}

// observed wraps a file's registrations so that each call is reported to
// the configured Observer; without one they are returned as they are.
func (h *Host) observed(file string, r webhook.Registrations) webhook.Registrations {
	obs := h.cfg.Observer
	if obs == nil {
		return r
	}
	validate := func(call string, f webhook.KwargsValidator) webhook.KwargsValidator {
		if f == nil {
			return nil
		}
		return func(ctx context.Context, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
			start := time.Now()
			clean, fieldErrs, err := f(ctx, kwargs)
			obs.ObservePluginCall(file, call, time.Since(start), err)
			return clean, fieldErrs, err
		}
	}
	for k, c := range r.Countdowns {
		value := c.Value
		r.Countdowns[k] = webhook.Countdown{
			Value: func(ctx context.Context, retryCount int, kwargs json.RawMessage) (int64, error) {
				start := time.Now()
				n, err := value(ctx, retryCount, kwargs)
				obs.ObservePluginCall(file, "countdown", time.Since(start), err)
				return n, err
			},
			Validate: validate("validate", c.Validate),
		}
	}
	for k, f := range r.Callbacks {
		r.Callbacks[k] = func(ctx context.Context, doc *webhook.CallbackDoc) error {
			start := time.Now()
			err := f(ctx, doc)
			obs.ObservePluginCall(file, "callback", time.Since(start), err)
			return err
		}
	}
	for k, f := range r.Filters {
		match := f.Match
		r.Filters[k] = webhook.Filter{
			Match: func(ctx context.Context, kwargs json.RawMessage, eventType string, payload json.RawMessage) (bool, error) {
				start := time.Now()
				ok, err := match(ctx, kwargs, eventType, payload)
				obs.ObservePluginCall(file, "filter", time.Since(start), err)
				return ok, err
			},
			Validate: validate("validate", f.Validate),
		}
	}
	for k, t := range r.Transforms {
		apply := t.Apply
		r.Transforms[k] = webhook.Transform{
			Apply: func(ctx context.Context, kwargs json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
				start := time.Now()
				res, err := apply(ctx, kwargs, in)
				obs.ObservePluginCall(file, "transform", time.Since(start), err)
				return res, err
			},
			Validate: validate("validate", t.Validate),
		}
	}
	return r
}
