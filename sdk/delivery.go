package sdk

import "encoding/json"

// Delivery is the document a callback receives after each delivery attempt
// (sdk/ABI.md, "The callback document"): dj-whisperer's response, event
// type, instance and payload, plus what identifies the attempt.
//
// A callback may keep a Delivery, or anything in it, after it returns: it
// is decoded from the callback's own copy of the document. Raw, Instance and
// Payload share that copy (Instance and Payload are slices of Raw, capped at
// their end); the strings and the Headers map are copies.
type Delivery struct {
	EventType string `json:"event_type"`
	// EventUUID is the event's uuid (32 hex digits), stable across retries.
	EventUUID string `json:"event_uuid"`
	// RetryCount counts attempts, this one included.
	RetryCount int  `json:"retry_count"`
	Delivered  bool `json:"delivered"`
	// Webhook identifies the hook the event went to.
	Webhook Webhook `json:"webhook"`
	// Response is the receiver's answer.
	Response Response `json:"response"`
	// Instance is the published payload; Payload the request body sent.
	Instance json.RawMessage `json:"instance"`
	Payload  json.RawMessage `json:"payload"`
	// Raw is the whole document, for fields newer than this SDK.
	Raw []byte `json:"-"`
}

// Webhook identifies a hook in a Delivery.
type Webhook struct {
	ID        int64  `json:"id"`
	TargetURL string `json:"target_url"`
	EventType string `json:"event_type"`
	Callback  string `json:"callback"`
}

// Response is the receiver's answer in a Delivery. Status is 0 and Error set
// when no response arrived. Header names are lower case.
type Response struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	Error      string            `json:"error"`
	DurationMS float64           `json:"duration_ms"`
}
