package webhook

import (
	"context"
	"encoding/json"
	"fmt"
)

// Bounds of what a transform may return (docs/PLUGINS.md, "Transforms").
// The header bounds are additional_headers' own: the API holds a hook's
// headers to them, the sender a transform's.
const (
	// MaxTransformBody bounds a transformed body: server.max_body_bytes'
	// default, the largest publish a server takes out of the box.
	MaxTransformBody = 1 << 20
	// MaxHeaders bounds the number of headers a hook or a transform adds.
	MaxHeaders = 50
	// MaxHeaderValueLen bounds one added header's value.
	MaxHeaderValueLen = 8192
	// MaxHeadersBytes bounds added header names and values together: many
	// servers refuse a request whose headers pass 8 to 16 KiB.
	MaxHeadersBytes = 16 << 10
)

// TransformError is why a transform left nothing to send: it failed
// (Cancelled false: a failed attempt, retried) or it cancelled the
// attempt (the event is given up).
type TransformError struct {
	Name      string
	Cancelled bool
	Msg       string
}

func (e *TransformError) Error() string {
	if e.Cancelled {
		return fmt.Sprintf("cancelled by transform %q", e.Name)
	}
	return fmt.Sprintf("transform %q failed: %s", e.Name, e.Msg)
}

// Run calls v on kwargs, a panic being an error like a trap; a nil v
// (a plugin that declares no validator) takes kwargs as they are.
func (v KwargsValidator) Run(ctx context.Context, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error) {
	if v == nil {
		return kwargs, nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			clean, fieldErrs, err = nil, nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return v(ctx, kwargs)
}
