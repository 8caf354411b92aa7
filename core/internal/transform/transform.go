// Package transform holds the payload transformations hooks may name
// ("transform": {"name": ..., "kwargs": ...}): plugin functions that reshape
// an attempt's request before it is signed. Plugins register them; the
// sender applies them through Apply, which holds their output to the
// bounds of docs/PLUGINS.md ("Transforms").
package transform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Registry maps transform names to functions. The zero value is empty and
// ready; it is safe for concurrent use.
type Registry struct {
	registry.Registry[webhook.Transform]
}

// ErrUnknown is Validate's error for a name nobody registers.
var ErrUnknown = errors.New("no plugin registers this transform")

// Validate runs name's kwargs validator (webhook.KwargsValidator.Run).
func (r *Registry) Validate(ctx context.Context, name string, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error) {
	t, ok := r.Lookup(name)
	if !ok {
		return nil, nil, ErrUnknown
	}
	return t.Validate.Run(ctx, kwargs)
}

// Apply runs cfg's transform on in. Every way it can leave nothing to
// send is a *webhook.TransformError: an unregistered name, an error (the
// plugin host's timeout included), a panic, a body past
// webhook.MaxTransformBody, a header that is protected, malformed or past
// the bounds (too many, too big), or a cancel. On success the result's
// Body is the body to send (in.Body when the transform kept it) and its
// Headers are checked.
func (r *Registry) Apply(ctx context.Context, cfg webhook.TransformConfig, in *webhook.TransformInput) (res webhook.TransformResult, err error) {
	fail := func(format string, args ...any) error {
		return &webhook.TransformError{Name: cfg.Name, Msg: fmt.Sprintf(format, args...)}
	}
	t, ok := r.Lookup(cfg.Name)
	if !ok || t.Apply == nil {
		return res, fail("no plugin registers it")
	}
	defer func() {
		if p := recover(); p != nil {
			res, err = webhook.TransformResult{}, fail("panic: %v", p)
		}
	}()
	res, err = t.Apply(ctx, cfg.Kwargs, in)
	if err != nil {
		return webhook.TransformResult{}, fail("%v", err)
	}
	if res.Cancel {
		return webhook.TransformResult{}, &webhook.TransformError{Name: cfg.Name, Cancelled: true}
	}
	if res.Body == nil {
		res.Body = in.Body
	}
	if len(res.Body) > webhook.MaxTransformBody {
		return webhook.TransformResult{}, fail("the body has %d bytes, more than %d", len(res.Body), webhook.MaxTransformBody)
	}
	if msg := checkHeaders(res.Headers); msg != "" {
		return webhook.TransformResult{}, fail("%s", msg)
	}
	return res, nil
}

// checkHeaders says what is wrong with a transform's headers: the rules
// of additional_headers (the same protected names, token names, values
// without line breaks or control characters, the same count and size).
func checkHeaders(h map[string]string) string {
	if len(h) > webhook.MaxHeaders {
		return fmt.Sprintf("it sets %d headers, more than %d", len(h), webhook.MaxHeaders)
	}
	size := 0
	for _, name := range slices.Sorted(maps.Keys(h)) {
		v := h[name]
		switch {
		case !webhook.ValidHeaderName(name):
			return fmt.Sprintf("%q is not a valid HTTP header name", name)
		case webhook.ProtectedHeader(name):
			return fmt.Sprintf("it sets %q, which is protected (set by Whisperer)", name)
		case len(v) > webhook.MaxHeaderValueLen:
			return fmt.Sprintf("the value of %q has more than %d bytes", name, webhook.MaxHeaderValueLen)
		case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			return fmt.Sprintf("the value of %q holds a line break or a control character", name)
		}
		size += len(name) + len(v)
	}
	if size > webhook.MaxHeadersBytes {
		return fmt.Sprintf("its header names and values total %d bytes, more than %d", size, webhook.MaxHeadersBytes)
	}
	return ""
}
