// Package countdown holds the retry countdowns: the built-in fixed, linear,
// exponential and random schedules of dj-whisperer, their kwargs validators,
// and the registry that plugins add their own to.
package countdown

import (
	"context"
	"fmt"
	"time"

	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// MaxWait bounds any countdown's value so an absurd plugin or kwargs value
// cannot push a retry beyond any useful horizon. 30 days.
const MaxWait = 30 * 24 * time.Hour

// Registry maps choice keys to countdowns; plugins add theirs with Register
// or Replace. It is safe for concurrent use.
type Registry struct {
	registry.Registry[webhook.Countdown]
}

// NewRegistry returns a registry holding the built-in countdowns.
func NewRegistry() *Registry {
	r := &Registry{}
	for key, e := range builtins() {
		if err := r.Register(Builtin, key, e); err != nil {
			panic(err) // built-in keys are distinct
		}
	}
	return r
}

// Wait returns how long to wait before the next attempt of an event whose
// hook uses cfg, after retryCount retries. Negative values are errors;
// values above MaxWait are clamped to it.
func (r *Registry) Wait(ctx context.Context, cfg webhook.CountdownConfig, retryCount int) (time.Duration, error) {
	e, ok := r.Lookup(cfg.Choice)
	if !ok {
		return 0, fmt.Errorf("countdown %q is not registered", cfg.Choice)
	}
	secs, err := e.Value(ctx, retryCount, cfg.Kwargs)
	if err != nil {
		return 0, fmt.Errorf("countdown %q: %w", cfg.Choice, err)
	}
	if secs < 0 {
		return 0, fmt.Errorf("countdown %q returned %d seconds", cfg.Choice, secs)
	}
	if secs > int64(MaxWait/time.Second) {
		return MaxWait, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// Validate checks cfg as dj-whisperer's RetryCountdownConfigSerializer does
// and returns the config with cleaned kwargs. A *webhook.ValidationError
// carries the nested error document for retry_countdown_config.
func (r *Registry) Validate(ctx context.Context, cfg webhook.CountdownConfig) (webhook.CountdownConfig, error) {
	errs := map[string]any{}
	if cfg.Choice == "" {
		errs["choice"] = []string{"This field is required."}
	}
	if len(cfg.Kwargs) == 0 || string(cfg.Kwargs) == "null" {
		errs["kwargs"] = []string{"This field is required."}
	}
	if len(errs) > 0 {
		return cfg, &webhook.ValidationError{Fields: errs}
	}
	e, ok := r.Lookup(cfg.Choice)
	if !ok {
		return cfg, &webhook.ValidationError{Fields: map[string]any{
			"choice": []string{fmt.Sprintf("%q is not a valid choice.", cfg.Choice)},
		}}
	}
	clean, fieldErrs, err := e.Validate(ctx, cfg.Kwargs)
	if err != nil {
		return cfg, fmt.Errorf("validate kwargs of countdown %q: %w", cfg.Choice, err)
	}
	if len(fieldErrs) > 0 {
		return cfg, &webhook.ValidationError{Fields: map[string]any{"kwargs": fieldErrs}}
	}
	return webhook.CountdownConfig{Choice: cfg.Choice, Kwargs: clean}, nil
}
