package webhook

import (
	"encoding/json"
	"time"
)

// Job is a claimed event with the hook it goes to: what a dispatcher needs
// to make one attempt.
type Job struct {
	Event   Event
	Webhook Webhook
	// Lease is the claim's lease token: the queue sets it on every claim
	// (unique per claim, never reused), and writes a Result, Release or
	// Postpone only while the event still holds it. A late result of an
	// earlier claim of the same event, even from the same process, no
	// longer matches and is dropped.
	Lease string
}

// LeaseRef names one claim of one event: what Release and Postpone give
// back.
type LeaseRef struct {
	EventID int64
	Lease   string
}

// LeaseRef returns the claim j holds.
func (j *Job) LeaseRef() LeaseRef { return LeaseRef{EventID: j.Event.ID, Lease: j.Lease} }

// Result is the outcome of one attempt, written back by the queue.
type Result struct {
	EventID int64
	// Lease is the Job.Lease of the claim the attempt was made under.
	Lease string
	// WebhookID is the hook the attempt went to: the queue keeps the hook's
	// health (failing_since, automatic deactivation) from its results.
	// Zero when no request was sent (the hook was already inactive), so
	// the result says nothing about the endpoint.
	WebhookID int64
	Attempt   Attempt
	// RetryCount is the event's attempt count including this one.
	RetryCount int
	// State is StateDelivered, StatePending (retry at NextAttemptAt) or
	// StateGivenUp.
	State State
	// NextAttemptAt is when a pending event is due again, by the clock of
	// the dispatcher that made the attempt. The queue keeps only the wait
	// (NextAttemptAt minus its own clock's now) and adds it to the
	// database's clock, so a node whose clock is off never fires a retry
	// early or late.
	NextAttemptAt time.Time
}

// CallbackDoc is the JSON document a post-delivery callback receives (see
// sdk/ABI.md): dj-whisperer's (response, event_type, instance, payload) plus
// what identifies the attempt.
type CallbackDoc struct {
	EventType  string          `json:"event_type"`
	EventUUID  string          `json:"event_uuid"`
	RetryCount int             `json:"retry_count"`
	Delivered  bool            `json:"delivered"`
	Webhook    CallbackWebhook `json:"webhook"`
	Response   CallbackResp    `json:"response"`
	// Instance is the published payload; Payload the request body sent.
	Instance json.RawMessage `json:"instance"`
	Payload  json.RawMessage `json:"payload"`
}

// CallbackWebhook identifies the hook in a CallbackDoc.
type CallbackWebhook struct {
	ID        int64  `json:"id"`
	TargetURL string `json:"target_url"`
	EventType string `json:"event_type"`
	Callback  string `json:"callback"`
}

// CallbackResp is the receiver's answer in a CallbackDoc. Status is 0 and
// Error set when no response arrived. Header names are lower case; repeated
// headers are joined with ", ".
type CallbackResp struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	Error      string            `json:"error"`
	DurationMS float64           `json:"duration_ms"`
}

// Outcome is the result of an inline first attempt: the answer of publish
// with "async": false.
type Outcome struct {
	EventID   int64
	UUID      string
	WebhookID int64
	// Status is the response status; 0 when no response arrived.
	Status    int
	Delivered bool
	// Error is the attempt's error text; empty when a response arrived with
	// a 2xx status.
	Error string
	// ErrorClass is the kind of failure, all a publisher that does not own
	// the hook is told; empty when delivered.
	ErrorClass ErrorClass
	// RetryCount counts attempts, this one included.
	RetryCount int
	// State is StateDelivered, StatePending (retrying in the background at
	// NextAttemptAt) or StateGivenUp.
	State         State
	NextAttemptAt time.Time
}

// QueueDepth is a snapshot of the pending part of the queue, as the queue
// counts it and the metrics report it.
type QueueDepth struct {
	// Due events wait for a worker now: never claimed or whose lease
	// expired. Scheduled events wait for a retry time. Leased events are
	// being delivered.
	Due, Scheduled, Leased int64
	// OldestDue is when the longest-waiting due event became due; zero when
	// none is due. OldestDueAge is how long ago, by the queue's clock (the
	// database's on PostgreSQL, never a node's, so a skewed node clock does
	// not distort it).
	OldestDue    time.Time
	OldestDueAge time.Duration
}
