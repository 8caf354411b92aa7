package delivery

import (
	"context"
	"net/http"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Transforms applies a hook's transform; *transform.Registry implements
// it. Apply's errors are *webhook.TransformError, its result's Body the
// body to send and its Headers checked (docs/PLUGINS.md, "Transforms").
type Transforms interface {
	Apply(ctx context.Context, cfg webhook.TransformConfig, in *webhook.TransformInput) (webhook.TransformResult, error)
}

// transform runs hook's transform on an attempt's body and headers (h,
// changed in place) and returns the body to sign and send. The transform
// sees every header but Authorization (config.auth's credentials are the
// hook owner's, not the plugin's), with lower-case names as sdk/ABI.md
// documents them; the URL is shown, never taken back.
// A panic is a failed transform, as any error.
func transform(ctx context.Context, tr Transforms, hook *webhook.Webhook, ev *webhook.Event, h http.Header, body []byte) (_ []byte, terr *webhook.TransformError) {
	name := hook.Transform.Name
	if tr == nil {
		return body, &webhook.TransformError{Name: name, Msg: "transforms are not available on this server"}
	}
	defer func() {
		if p := recover(); p != nil {
			terr = &webhook.TransformError{Name: name, Msg: "panic"}
		}
	}()
	seen := make(map[string]string, len(h))
	for k, v := range h {
		if k != "Authorization" && len(v) > 0 {
			seen[strings.ToLower(k)] = v[0]
		}
	}
	in := &webhook.TransformInput{
		EventType: ev.EventType, UUID: ev.UUID, HookID: hook.ID, RetryCount: ev.RetryCount,
		Payload: ev.Payload, URL: hook.TargetURL, Headers: seen, Body: body,
	}
	res, err := tr.Apply(ctx, *hook.Transform, in)
	if err != nil {
		te, ok := err.(*webhook.TransformError)
		if !ok {
			te = &webhook.TransformError{Name: name, Msg: err.Error()}
		}
		return body, te
	}
	for k, v := range res.Headers {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if res.Body == nil {
		return body, nil
	}
	return res.Body, nil
}
