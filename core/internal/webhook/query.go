package webhook

import (
	"encoding/json"
	"slices"
	"time"
)

// Scope is whose rows a query may see: one user's, or everyone's (admin).
type Scope struct {
	UserID int64
	All    bool
	// Published also lets UserID see the events of the messages it
	// published (redelivery by uuid through publish). Only Event and
	// Redeliver honour it; lists stay the hook owner's.
	Published bool
}

// Page asks for one page of a list ordered newest first by id. Before
// pages forward (ids below it); After pages backward (ids above it).
// Limit defaults to 100 and is capped at 1000.
type Page struct {
	Limit  int
	Before int64
	After  int64
}

// PageInfo says whether pages exist beyond the one returned.
type PageInfo struct {
	HasNext, HasPrev bool
}

// HookFilter narrows a hook list. Empty fields do not filter.
type HookFilter struct {
	TargetURL string // case-insensitive exact match
	EventType string // case-insensitive exact match
	IsActive  *bool
}

// EventFilter narrows an event list. Zero fields do not filter.
type EventFilter struct {
	UUID               string
	EventType          string
	ResponseHTTPStatus *int
	Delivered          *bool
	CreatedDate        time.Time // a UTC day: events created on it
	WebhookID          int64
	State              State
	CreatedSince       time.Time
	// CreatedBefore keeps events created before it (the console's time
	// range; the API does not set it).
	CreatedBefore time.Time
	// Failed keeps the events that failed: given up, or waiting for a
	// retry after a failed attempt of their current series (what
	// RedeliverFailed selects). The console's "undelivered" view; the API
	// does not set it.
	Failed bool
}

// Session is a web console session: who signed in, the synchronizer token
// its state-changing forms carry, and when it ends.
type Session struct {
	User      User
	CSRF      string
	ExpiresAt time.Time
	// Portal marks a tenant portal's session (docs/CONSOLE.md): it may do
	// only what Capabilities name, and only as a user, whatever its user's
	// role.
	Portal       bool
	Capabilities []string
}

// The tenant portal's capabilities.
const (
	CapRead        = "read"
	CapManageHooks = "manage_hooks"
	CapRedeliver   = "redeliver"
)

// Capabilities are every capability a portal may be given.
var Capabilities = []string{CapRead, CapManageHooks, CapRedeliver}

// Can reports whether the session may use capability c: a signed-in
// session may do what its role allows, a portal what it was given.
func (s Session) Can(c string) bool {
	return !s.Portal || slices.Contains(s.Capabilities, c)
}

// PublishRequest is one published event.
type PublishRequest struct {
	EventType string
	Payload   json.RawMessage
	// PublisherID and IdempotencyKey make a repeated publish return the
	// first one's events instead of fanning out again.
	PublisherID    int64
	IdempotencyKey string
	// Hold keeps the new rows from being due for this long and sends no
	// wake-up: a publish with "async": false claims them itself for the
	// inline first attempt, and a crash before it only delays them.
	Hold time.Duration
}

// Published is what a publish created (or found, when Replayed).
type Published struct {
	Events   []Event
	Replayed bool
	// Filtered counts the active hooks of the type whose filter refused
	// the event: no row was written for them.
	Filtered int
	// Jobs are the events of Events the publish leased to the publishing
	// node (a PublishLease), with their hooks, as a claim returns them:
	// the publish batcher hands them to the node's dispatcher and moves
	// their count to Leased.
	Jobs []Job
	// Leased counts the events of Events handed to the publishing node's
	// dispatcher at publish: nothing needs to wake a claim for them.
	Leased int
}

// PublishLease asks a publish to lease the rows it writes to the
// publishing node's dispatcher, as a claim would: a new lease token of
// Owner, ending Lease after the database's now, on at most Limit rows (in
// request, then hook order; zero leases none). The rest are written
// unleased, as always. The dispatcher reserves Limit jobs of room first,
// so it is never handed more than its workers can take.
type PublishLease struct {
	Owner string
	Lease time.Duration
	Limit int
}

// RedeliverFilter selects failed events to deliver again.
type RedeliverFilter struct {
	Since, Until time.Time // created_at range; a zero Until means now
	WebhookID    int64
}
