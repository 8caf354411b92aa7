package webhook

import (
	"strings"
	"time"
)

// Operational events: Whisperer's own events, published by the server (no
// publisher) to the hooks subscribed to them, so an application learns
// what broke without polling (docs/API.md, "Operational events"). Their
// types are reserved: clients may not publish them, and only admins and
// publishers may subscribe to them.
const (
	// OpsPrefix starts every reserved event type.
	OpsPrefix = "whisperer."
	// EventHookDisabled: the endpoint-health check deactivated a hook.
	EventHookDisabled = "whisperer.hook.disabled"
	// EventGivenUp: an event was given up.
	EventGivenUp = "whisperer.event.given_up"
	// EventPluginFailed: a plugin file failed to load or register, or
	// calls into it failed.
	EventPluginFailed = "whisperer.plugin.failed"
)

// OpsEventTypes are the operational event types, registered in every
// database at start.
var OpsEventTypes = []string{EventGivenUp, EventHookDisabled, EventPluginFailed}

// Reserved reports whether eventType is in the operational namespace.
func Reserved(eventType string) bool { return strings.HasPrefix(eventType, OpsPrefix) }

// Changes is what one write of results changed that operational events
// report; only the node whose write made the change gets it.
type Changes struct {
	// GivenUp are the written results that gave their event up.
	GivenUp []Result
	// Disabled are the hooks the write deactivated.
	Disabled []HookDisabled
}

// HookDisabled is a hook the endpoint-health check deactivated.
type HookDisabled struct {
	ID         int64
	Reason     string
	DisabledAt time.Time
	// FailingSince is the first failed attempt since the last success;
	// nil when the hook was deactivated by a 410 after a success.
	FailingSince *time.Time
	// Last is the batch's latest result for the hook: the attempt that
	// triggered the deactivation.
	Last Attempt
}

// OpsSubject is what operational events tell of a hook, or of an event
// and its hook, read from the database when a hook subscribes.
type OpsSubject struct {
	// ID is the hook's, or the event's (GivenUpSubjects).
	ID     int64
	HookID int64
	// Owner is the hook's owner's username.
	Owner string
	// EventType is the hook's, or the event's.
	EventType string
	// TargetURL is the origin of the hook's (URLOrigin): the events go to
	// any admin's or publisher's hook, and a path may hold a token.
	TargetURL string
	EventUUID string
}
