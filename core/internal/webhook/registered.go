package webhook

import (
	"context"
	"encoding/json"
	"time"
)

// The function types below are what the countdown and callback registries
// hold and what the plugin host registers into them; they live here so
// that both sides name the same type and nothing copies one into another.

// CountdownFunc returns the number of seconds to wait before the next
// attempt, given the number of retries already made (0 after the first
// failure). kwargs are the validated kwargs.
type CountdownFunc func(ctx context.Context, retryCount int, kwargs json.RawMessage) (int64, error)

// CountdownValidator checks kwargs the way a DRF serializer would. It
// returns the cleaned kwargs to store and, when they are invalid, a
// DRF-shaped error document ({"field": ["message"]}). A non-nil error means
// the validator itself failed (a plugin trapped), not that the kwargs are
// bad.
type CountdownValidator func(ctx context.Context, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error)

// Countdown is one registered countdown: dj-whisperer's countdown class and
// its kwargs serializer, always registered together.
type Countdown struct {
	Value    CountdownFunc
	Validate CountdownValidator
}

// DefaultCallbackTimeout is plugins.callback_timeout's default: it bounds a
// callback both in the plugin host and in the dispatcher that awaits it,
// so the two packages take it from here.
const DefaultCallbackTimeout = 5 * time.Second

// CallbackFunc runs after a delivery attempt with the callback document
// (see sdk/ABI.md). Its error is logged; it never changes the delivery
// outcome. It must not modify doc; the plugin host encodes it for the
// guest.
type CallbackFunc func(ctx context.Context, doc *CallbackDoc) error
