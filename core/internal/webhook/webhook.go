// Package webhook holds Whisperer's domain types and errors. It is the leaf
// every other package shares and imports only the standard library.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Role is what a user's tokens may do.
type Role string

const (
	// RoleUser manages its own hooks and reads its own events.
	RoleUser Role = "user"
	// RolePublisher may also publish events.
	RolePublisher Role = "publisher"
	// RoleAdmin may do everything, including seeing every user's hooks.
	RoleAdmin Role = "admin"
)

// CanPublish reports whether the role may publish events.
func (r Role) CanPublish() bool { return r == RolePublisher || r == RoleAdmin }

// User is an API principal.
type User struct {
	ID        int64
	Username  string
	Role      Role
	CreatedAt time.Time
}

// CountdownConfig is dj-whisperer's retry_countdown_config: the countdown's
// registry key and its kwargs as a JSON object.
type CountdownConfig struct {
	Choice string          `json:"choice"`
	Kwargs json.RawMessage `json:"kwargs"`
}

// DefaultCountdown is delivery.default_retry_countdown's default: the
// countdown of hooks registered without one (the API) and of retries whose
// hook's countdown cannot run (the dispatcher), written once for both.
func DefaultCountdown() CountdownConfig {
	return CountdownConfig{Choice: "exponential", Kwargs: json.RawMessage(`{"base":2}`)}
}

// TransformConfig is a hook's transform: a registered transform's name and
// its validated kwargs (a JSON object).
type TransformConfig struct {
	Name   string          `json:"name"`
	Kwargs json.RawMessage `json:"kwargs"`
}

// BasicAuth is config.auth with auth_type "basic".
type BasicAuth struct {
	Username string
	Password string
}

// Webhook is a subscription of a URL to one event type.
type Webhook struct {
	ID                int64
	UserID            int64
	TargetURL         string
	EventType         string
	SecretKey         string
	IsActive          bool
	Callback          string
	RetryCountdown    CountdownConfig
	AdditionalHeaders map[string]string
	// Config is the hook's free-form config object (config.auth lives here).
	Config map[string]any
	// Filter is the hook's declarative event filter as compact JSON
	// (core/internal/filter, docs/API.md "Filters"); nil delivers every
	// event of the type.
	Filter json.RawMessage
	// Transform is the plugin transform run on each attempt's request
	// before it is signed (core/internal/transform); nil for none.
	Transform  *TransformConfig
	CreatedAt  time.Time
	ModifiedAt time.Time
	// DisabledReason says why the hook is inactive (it answered 410 Gone,
	// every delivery failed for delivery.disable_after, or its owner
	// deactivated it); empty while active. DisabledAt is when that
	// happened. Both are set by the store, never by clients, and cleared
	// when the hook is activated again.
	DisabledReason string
	DisabledAt     *time.Time
	// FailingSince is the time of the first failed attempt since the
	// hook's last successful one; nil while healthy. Read-only.
	FailingSince *time.Time
	// PreviousSecretKey is the secret_key a rotation replaced ("rotate":
	// true): deliveries are signed with it too until PreviousSecretUntil,
	// so receivers can switch secrets without downtime. Never shown to
	// clients.
	PreviousSecretKey   string
	PreviousSecretUntil *time.Time
	// SecretsError is set by the store when the hook's sealed secrets do
	// not open (altered ciphertext, or a key no longer configured): the
	// secret fields are then empty, never the ciphertext, and the hook must
	// not be delivered to (neither unsigned nor signed with anything else).
	// It names the column and the key id, never a value.
	SecretsError string
}

// PreviousSecret returns the rotated-out secret while it still signs at
// now.
func (w *Webhook) PreviousSecret(now time.Time) (string, bool) {
	if w.PreviousSecretKey == "" || w.PreviousSecretUntil == nil || !now.Before(*w.PreviousSecretUntil) {
		return "", false
	}
	return w.PreviousSecretKey, true
}

// RateLimit returns config.rate_limit_per_second, the most requests per
// second deliveries may make to the hook, and false when the hook has no
// limit (absent, or not a positive number).
func (w *Webhook) RateLimit() (float64, bool) {
	var r float64
	switch v := w.Config["rate_limit_per_second"].(type) {
	case float64:
		r = v
	case int:
		r = float64(v)
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return 0, false
		}
		r = f
	default:
		return 0, false
	}
	return r, r > 0
}

// BasicAuth returns the credentials of config.auth when its auth_type is
// "basic".
func (w *Webhook) BasicAuth() (BasicAuth, bool) {
	auth, _ := w.Config["auth"].(map[string]any)
	if auth == nil || auth["auth_type"] != "basic" {
		return BasicAuth{}, false
	}
	user, _ := auth["username"].(string)
	pass, _ := auth["password"].(string)
	return BasicAuth{Username: user, Password: pass}, true
}

// ShownConfig is a copy of w's config without config.auth.password, which
// is write-only: what any view of the hook shows.
func (w *Webhook) ShownConfig() map[string]any {
	cfg := make(map[string]any, len(w.Config))
	for k, v := range w.Config {
		cfg[k] = v
	}
	if auth, ok := cfg["auth"].(map[string]any); ok {
		clean := make(map[string]any, len(auth))
		for k, v := range auth {
			if k != "password" {
				clean[k] = v
			}
		}
		cfg["auth"] = clean
	}
	return cfg
}

// State is where a webhook event is in its life.
type State string

const (
	// StatePending events wait for their next attempt at NextAttemptAt.
	StatePending State = "pending"
	// StateDelivered events got a 2xx answer.
	StateDelivered State = "delivered"
	// StateGivenUp events used every attempt delivery.max_retries allows.
	StateGivenUp State = "given_up"
)

// MaxAttemptsShown is how many of an event's attempts, the newest, a read
// of the event carries (the API's attempts and request_datetimes): every
// redelivery adds up to max_retries more, so all of them would let one
// event's JSON, and the memory of a request that lists it, grow without
// bound. Older attempts stay in the database; retry_count counts them all.
const MaxAttemptsShown = 50

// Event is one webhook event: one published event for one webhook. Its row
// is also the delivery job.
type Event struct {
	ID        int64
	UUID      string // 32 lowercase hex digits
	WebhookID int64
	UserID    int64
	EventType string
	// Payload is the published instance. The request body is derived from
	// it: see RequestBody.
	Payload            json.RawMessage
	ResponseContent    string
	ResponseHTTPStatus *int
	Delivered          bool
	RetryCount         int
	// RetryBase is RetryCount when the event was last redelivered: the
	// current series of attempts is RetryCount-RetryBase long, and that is
	// what delivery.max_retries and the countdown see.
	RetryBase     int
	State         State
	NextAttemptAt time.Time
	LeaseUntil    *time.Time
	CreatedAt     time.Time
	ModifiedAt    time.Time
	// Attempts is filled only where asked for, newest first, at most
	// MaxAttemptsShown of them.
	Attempts []Attempt
}

// Attempt is one try at delivering an event.
type Attempt struct {
	ID          int64
	EventID     int64
	AttemptedAt time.Time
	Duration    time.Duration
	// Status is the response status; 0 when no response arrived.
	Status int
	// Body holds the first bytes of the response body.
	Body  string
	Error string
	// Class is what kind of failure Error describes, set by the sender
	// when it makes the attempt; empty on success. It is not stored.
	Class ErrorClass
}

// ErrorClass is the kind of a failed attempt: what a publisher may learn
// about another user's hook, whose error text (addresses, certificate
// names, response bodies) is for the hook's owner.
type ErrorClass string

const (
	// ClassTimeout: no answer within the connect and read timeouts.
	ClassTimeout ErrorClass = "timeout"
	// ClassRefused: the connection was refused, by the target or by the
	// delivery guard (delivery.allow_networks/deny_networks).
	ClassRefused ErrorClass = "refused"
	// ClassConnection: any other failure to reach or talk to the target
	// (name resolution, reset, closed connection).
	ClassConnection ErrorClass = "connection"
	// ClassTLS: the TLS handshake or the certificate failed.
	ClassTLS ErrorClass = "tls"
	// ClassHTTP: an answer arrived that is not a delivery (not 2xx, or a
	// redirect, which is never followed).
	ClassHTTP ErrorClass = "http"
	// ClassInvalidTarget: the hook's target_url cannot be requested.
	ClassInvalidTarget ErrorClass = "invalid_target"
	// ClassRateLimited: the hook's rate limit postponed the attempt.
	ClassRateLimited ErrorClass = "rate_limited"
	// ClassInactive: nothing was sent, the hook is inactive.
	ClassInactive ErrorClass = "inactive"
	// ClassInternal: the attempt failed inside Whisperer (a recovered
	// panic); the text is in the owner's attempt log and the server's log.
	ClassInternal ErrorClass = "internal"
	// ClassTransform: the hook's transform failed (an error, a timeout,
	// output out of bounds or setting a protected header); nothing was
	// sent and the attempt is retried like any other.
	ClassTransform ErrorClass = "transform"
	// ClassCancelled: the hook's transform cancelled the attempt; nothing
	// was sent and the event is given up.
	ClassCancelled ErrorClass = "cancelled"
)

// Fixed errors callers match with errors.Is.
var (
	ErrNotFound        = errors.New("webhook: not found")
	ErrAlreadyExists   = errors.New("webhook: already registered")
	ErrUnauthenticated = errors.New("webhook: invalid token")
	ErrForbidden       = errors.New("webhook: permission denied")
	ErrUnavailable     = errors.New("webhook: storage unavailable")
	// ErrInvalidPayload is a publish whose payload is not valid JSON.
	ErrInvalidPayload = errors.New("webhook: payload is not valid JSON")
	// ErrDelivered is a redelivery of an event already delivered, without
	// force; ErrDelivering one of an event being delivered right now. The
	// store wraps each in an *EventError naming the event.
	ErrDelivered  = errors.New("webhook: event already delivered")
	ErrDelivering = errors.New("webhook: event being delivered")
)

// UnknownEventTypeError is a publish of an event type nobody registered.
type UnknownEventTypeError struct{ EventType string }

func (e *UnknownEventTypeError) Error() string {
	return fmt.Sprintf("webhook: unknown event type %q", e.EventType)
}

// EventError is Err about the event UUID: what the caller's answer names.
type EventError struct {
	UUID string
	Err  error
}

func (e *EventError) Error() string { return "event " + e.UUID + ": " + e.Err.Error() }
func (e *EventError) Unwrap() error { return e.Err }

// ValidationError reports bad input per field, in DRF's shape: a field maps
// to a list of messages or, for nested objects, to a nested map.
type ValidationError struct {
	Fields map[string]any
}

// NewValidationError returns an error with one message for one field.
func NewValidationError(field, msg string) *ValidationError {
	return &ValidationError{Fields: map[string]any{field: []string{msg}}}
}

// Add appends msg to field's messages.
func (e *ValidationError) Add(field, msg string) {
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	msgs, _ := e.Fields[field].([]string)
	e.Fields[field] = append(msgs, msg)
}

// Set replaces field's entry with a nested error document.
func (e *ValidationError) Set(field string, nested map[string]any) {
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	e.Fields[field] = nested
}

// Empty reports whether no field has an error.
func (e *ValidationError) Empty() bool { return e == nil || len(e.Fields) == 0 }

// Err returns e, or nil when e holds no error.
func (e *ValidationError) Err() error {
	if e.Empty() {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	return "invalid input: " + strings.Join(e.Messages(), "; ")
}

// Messages returns e as "field: message" lines, nested fields joined with
// dots (kwargs.max_value), sorted by field.
func (e *ValidationError) Messages() []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case []string:
			for _, m := range v {
				out = append(out, path+": "+m)
			}
		case []any:
			for _, m := range v {
				walk(path, m)
			}
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(strings.TrimPrefix(path+"."+k, "."), v[k])
			}
		default:
			out = append(out, fmt.Sprintf("%s: %v", path, v))
		}
	}
	walk("", e.Fields)
	return out
}

// ConflictError is a request that the current state refuses (HTTP 409).
type ConflictError struct{ Detail string }

func (e *ConflictError) Error() string { return "conflict: " + e.Detail }

// RequestBody returns the exact bytes POSTed (and signed) for an event:
// {"event": {"type": ..., "uuid": ...}, "payload": ...}. It is a pure
// function of its inputs, so every attempt sends the same bytes.
func RequestBody(eventType, uuid string, payload json.RawMessage) []byte {
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	b := make([]byte, 0, len(eventType)+len(uuid)+len(payload)+50)
	b = append(b, `{"event":{"type":`...)
	b = appendJSONString(b, eventType)
	b = append(b, `,"uuid":"`...)
	b = append(b, uuid...)
	b = append(b, `"},"payload":`...)
	b = append(b, payload...)
	return append(b, '}')
}

// appendJSONString appends s as json.Marshal writes it: quoted as is when
// it is JSONPlain (event types are plain names), else through json.Marshal,
// whose escapes (HTML characters, U+2028, invalid UTF-8) are the bytes
// every attempt has always sent.
func appendJSONString(b []byte, s string) []byte {
	if !JSONPlain(s) {
		t, _ := json.Marshal(s) // marshaling a string cannot fail
		return append(b, t...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// JSONPlain reports whether JSON encoders write s as is between quotes,
// with or without HTML escaping: printable ASCII but for '"', '\\' and the
// HTML characters '<', '>', '&'.
func JSONPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
