package filter

import "github.com/whisperer/whisperer/core/internal/webhook"

// Verdict is what a dry run says of an event for a hook.
type Verdict struct {
	// Deliver says whether a publish of the event would reach the hook.
	Deliver bool
	// Reason says why not (or why the filter was not applied); "" when
	// delivered as usual.
	Reason string
	// FilteredBy is the filter condition that refuses the event, as JSON;
	// "" when none does.
	FilteredBy string
}

// Check judges an event (payload is valid JSON) for h as fan-out would:
// its type, whether h is active, and h's filter.
func Check(h *webhook.Webhook, eventType string, payload []byte) Verdict {
	v := Verdict{Deliver: true}
	switch {
	case eventType != h.EventType:
		v.Deliver, v.Reason = false, "The hook subscribes to "+h.EventType+", not "+eventType+"."
	case !h.IsActive:
		v.Deliver, v.Reason = false, "The hook is inactive."
	}
	if len(h.Filter) == 0 {
		return v
	}
	f, err := Parse(h.Filter)
	if err != nil { // stored by a later version, say: fan-out delivers
		if v.Deliver {
			v.Reason = "The stored filter does not compile here (" + err.Error() + "): fan-out delivers."
		}
		return v
	}
	ev := TrustedEvent(eventType, payload)
	if ok, why := f.Explain(&ev); !ok {
		v.FilteredBy = why
		if v.Deliver {
			v.Deliver, v.Reason = false, "The filter refuses the event: "+why
		}
	}
	return v
}
