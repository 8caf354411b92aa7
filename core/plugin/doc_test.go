package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/webhook"
)

// callbackDoc returns a webhook.CallbackDoc of about size bytes.
func callbackDoc(t testing.TB, size int) []byte {
	t.Helper()
	doc := webhook.CallbackDoc{
		EventType: "package-created", EventUUID: "0123456789abcdef0123456789abcdef", RetryCount: 1, Delivered: true,
		Webhook: webhook.CallbackWebhook{ID: 7, TargetURL: "https://example.com/", EventType: "package-created",
			Callback: "foo.bar.app.callback"},
		Response: webhook.CallbackResp{Status: 200, Headers: map[string]string{"content-type": "text/plain"},
			Body: "ok", DurationMS: 12.5},
		Instance: json.RawMessage(`{"id":1}`),
		Payload:  json.RawMessage(`{"event":{"type":"package-created"}}`),
	}
	b, _ := json.Marshal(doc)
	if pad := size - len(b); pad > 0 {
		doc.Response.Body = strings.Repeat("x", pad)
		b, _ = json.Marshal(doc)
	}
	return b
}
