package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/webhook"
	"github.com/whisperer/whisperer/sdk"
)

// callbackDoc returns a webhook.CallbackDoc of about size bytes in JSON.
func callbackDoc(t testing.TB, size int) *webhook.CallbackDoc {
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
	}
	return &doc
}

// TestDeliveryMatchesCallbackDoc keeps the Go SDK's Delivery field for field
// in step with the document the server sends.
func TestDeliveryMatchesCallbackDoc(t *testing.T) {
	doc, _ := json.Marshal(callbackDoc(t, 0))
	var full map[string]any
	if err := json.Unmarshal(doc, &full); err != nil {
		t.Fatal(err)
	}
	var d sdk.Delivery
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if !reflect.DeepEqual(full, back) {
		t.Fatalf("sdk.Delivery loses fields of webhook.CallbackDoc:\n%v\n%v", full, back)
	}
}

// TestMemoryLimitDocumented keeps the documented bound of
// plugins.memory_limit_mb in step with Config.Validate.
func TestMemoryLimitDocumented(t *testing.T) {
	for file, want := range map[string]string{
		"../../sdk/ABI.md":        fmt.Sprintf("`plugins.memory_limit_mb` (≤ %d)", MaxMemoryLimitMB),
		"../../config.koanf.yaml": fmt.Sprintf("in MiB (at most %d)", MaxMemoryLimitMB),
		"../../docs/PLUGINS.md":   fmt.Sprintf("`memory_limit_mb` ≤ %d", MaxMemoryLimitMB),
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not say %q", file, want)
		}
	}
	for mb, ok := range map[int]bool{MaxMemoryLimitMB: true, MaxMemoryLimitMB + 1: false} {
		if err := (Config{MemoryLimitMB: mb}).WithDefaults().Validate(); (err == nil) != ok {
			t.Errorf("memory_limit_mb %d: %v", mb, err)
		}
	}
}
