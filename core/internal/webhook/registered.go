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

// KwargsValidator checks kwargs the way a DRF serializer would. It
// returns the cleaned kwargs to store and, when they are invalid, a
// DRF-shaped error document ({"field": ["message"]}). A non-nil error means
// the validator itself failed (a plugin trapped), not that the kwargs are
// bad.
type KwargsValidator func(ctx context.Context, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error)

// Countdown is one registered countdown: dj-whisperer's countdown class and
// its kwargs serializer, always registered together.
type Countdown struct {
	Value    CountdownFunc
	Validate KwargsValidator
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

// FilterFunc is a plugin filter (sdk/ABI.md): whether an event of
// eventType with payload (valid JSON) goes to a hook, decided at fan-out
// before any row is written. kwargs are the validated kwargs. An error
// means the filter failed; fan-out then delivers (docs/PLUGINS.md says
// why) and counts it.
type FilterFunc func(ctx context.Context, kwargs json.RawMessage, eventType string, payload json.RawMessage) (deliver bool, err error)

// Filter is one registered plugin filter and its kwargs validator (nil
// when the plugin declares none: any JSON object is accepted).
type Filter struct {
	Match    FilterFunc
	Validate KwargsValidator
}

// TransformInput is what a transform receives for one attempt: the event
// and the request as it would be sent, before signing.
type TransformInput struct {
	EventType  string
	UUID       string
	HookID     int64
	RetryCount int
	Payload    json.RawMessage
	// URL is the target; a transform cannot change it.
	URL string
	// Headers are the request's headers other than the signature ones.
	Headers map[string]string
	Body    []byte
}

// TransformResult is a transform's answer. A nil Body keeps the body;
// Headers are set over the request's (protected names are refused by the
// caller); Cancel means the attempt is not sent.
type TransformResult struct {
	Body    []byte
	Headers map[string]string
	Cancel  bool
}

// TransformFunc reshapes one attempt's request before it is signed.
type TransformFunc func(ctx context.Context, kwargs json.RawMessage, in *TransformInput) (TransformResult, error)

// Transform is one registered transform and its kwargs validator (nil
// when the plugin declares none).
type Transform struct {
	Apply    TransformFunc
	Validate KwargsValidator
}

// Registrations is what one plugin file registers, by kind and key; the
// plugin host hands it to its sink whole, so a file's kinds are replaced
// together.
type Registrations struct {
	Countdowns map[string]Countdown
	Callbacks  map[string]CallbackFunc
	Filters    map[string]Filter
	Transforms map[string]Transform
}
