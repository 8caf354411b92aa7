package filter

import (
	"context"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Verdict is what a dry run says of an event for a hook.
type Verdict struct {
	// Deliver says whether a publish of the event would reach the hook.
	Deliver bool
	// Reason says why not (or why the filter was not applied); "" when
	// delivered as usual.
	Reason string
	// FilteredBy is the filter condition that refuses the event, as JSON
	// (for a plugin filter, the filter document); "" when none does.
	FilteredBy string
	// PluginError is why the hook's plugin filter failed (fan-out then
	// delivers); "" when it ran or there is none.
	PluginError string
}

// Check judges an event (payload is valid JSON) for h as fan-out would:
// its type, whether h is active, and h's filter, a plugin filter run
// through plugins (nil: none is available).
func Check(ctx context.Context, h *webhook.Webhook, eventType string, payload []byte, plugins Plugins) Verdict {
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
	if name, kwargs := f.Plugin(); name != "" {
		ok, err := true, ErrUnknownPlugin
		if plugins != nil {
			ok, err = plugins.Match(ctx, name, kwargs, eventType, payload)
		}
		switch {
		case err != nil:
			v.PluginError = err.Error()
			if v.Deliver {
				v.Reason = "The plugin filter " + name + " failed (" + err.Error() + "): fan-out delivers."
			}
		case !ok:
			v.FilteredBy = string(f.JSON())
			if v.Deliver {
				v.Deliver, v.Reason = false, "The plugin filter "+name+" refuses the event."
			}
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
