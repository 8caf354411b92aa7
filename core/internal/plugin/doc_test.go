package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
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
// in step with the document the server sends, both ways: every field the
// server sends reaches a plugin, and every field a plugin reads is sent
// (an omitempty field only the SDK has would otherwise go unnoticed).
func TestDeliveryMatchesCallbackDoc(t *testing.T) {
	var d sdk.Delivery
	sameJSON(t, "sdk.Delivery loses fields of webhook.CallbackDoc", callbackDoc(t, 0), &d)
	var doc webhook.CallbackDoc
	sameJSON(t, "webhook.CallbackDoc lacks fields of sdk.Delivery", filled(&sdk.Delivery{}), &doc)
}

// sameJSON fails t unless from, decoded into to, encodes to the same JSON.
func sameJSON(t *testing.T, msg string, from, to any) {
	t.Helper()
	b, _ := json.Marshal(from)
	var full map[string]any
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(to)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if !reflect.DeepEqual(full, back) {
		t.Fatalf("%s:\n%v\n%v", msg, full, back)
	}
}

// filled sets every exported field of the struct p points to (recursively)
// to a non-zero value, so no omitempty field is left out of its JSON.
func filled(p any) any {
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch {
		case v.Type() == reflect.TypeFor[json.RawMessage]():
			v.SetBytes([]byte(`{"k":1}`))
			return
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i))
				}
			}
		case v.Kind() == reflect.String:
			v.SetString("s")
		case v.CanInt():
			v.SetInt(7)
		case v.Kind() == reflect.Bool:
			v.SetBool(true)
		case v.CanFloat():
			v.SetFloat(1.5)
		case v.Kind() == reflect.Map:
			m := reflect.MakeMap(v.Type())
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k)
			fill(e)
			m.SetMapIndex(k, e)
			v.Set(m)
		case v.Kind() == reflect.Slice:
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e)
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
		}
	}
	fill(reflect.ValueOf(p).Elem())
	return p
}

// TestMemoryLimitDocumented keeps the documented bound of
// plugins.memory_limit_mb in step with Config.Validate.
func TestMemoryLimitDocumented(t *testing.T) {
	for file, want := range map[string]string{
		"../../../sdk/ABI.md":        fmt.Sprintf("`plugins.memory_limit_mb` (≤ %d)", MaxMemoryLimitMB),
		"../../../config.koanf.yaml": fmt.Sprintf("in MiB (at most %d)", MaxMemoryLimitMB),
		"../../../docs/PLUGINS.md":   fmt.Sprintf("`memory_limit_mb` ≤ %d", MaxMemoryLimitMB),
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
