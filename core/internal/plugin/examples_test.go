package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

func TestGoExamples(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./examples/custom-countdown"), dir, "custom-countdown.wasm")
	copyFile(t, goWasm(t, "./examples/callback"), dir, "callback.wasm")
	sink := newSink()
	h, logs := startHost(t, testConfig(dir), sink)
	ctx := context.Background()

	for _, i := range h.Plugins() {
		if !i.Loaded || i.Error != "" {
			t.Fatalf("plugin not loaded: %+v", i)
		}
		// The API's time format: microseconds, UTC (docs/API.md).
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(i.LoadedAt) {
			t.Errorf("loaded_at %q is not RFC 3339 with microseconds in UTC", i.LoadedAt)
		}
	}
	cd := sink.countdown(t, "custom")
	for retry, want := range []int64{0, 5, 20, 15, 40} {
		got, err := cd.Value(ctx, retry, json.RawMessage(`{"factor": 5}`))
		if err != nil || got != want {
			t.Errorf("custom(%d) = %d, %v; want %d", retry, got, err, want)
		}
	}
	clean, fieldErrs, err := cd.Validate(ctx, json.RawMessage(`{"factor": "5", "x": 1}`))
	if err != nil || fieldErrs != nil || string(clean) != `{"factor":5}` {
		t.Errorf("validate = %s, %v, %v", clean, fieldErrs, err)
	}
	_, fieldErrs, err = cd.Validate(ctx, json.RawMessage(`{"factor": 0}`))
	if err != nil || !strings.Contains(toJSON(fieldErrs), `"factor":["Ensure this value is greater than or equal to 1."]`) {
		t.Errorf("validate factor 0 = %v, %v", fieldErrs, err)
	}
	_, fieldErrs, err = cd.Validate(ctx, json.RawMessage(`[1]`))
	if err != nil || !strings.Contains(toJSON(fieldErrs), `Expected a dictionary, but got list`) {
		t.Errorf("validate list = %v, %v", fieldErrs, err)
	}

	cb := sink.callback(t, "foo.bar.app.callback")
	if err := cb(ctx, callbackDoc(t, 1024)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "delivery of package-created event") {
		t.Errorf("callback did not log through the host:\n%s", logs)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFilterAndTransformExamples loads examples/filter (WAT) and
// examples/transform (Go) into a real host and calls them as the server
// does: the filter at fan-out, the transform before an attempt is signed.
func TestFilterAndTransformExamples(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("..", "..", "..", "examples", "filter", "field-equals.wasm"), dir, "field-equals.wasm")
	copyFile(t, goWasm(t, "./examples/transform"), dir, "transform.wasm")
	sink := newSink()
	h, _ := startHost(t, testConfig(dir), sink)
	ctx := context.Background()
	if i := infoOf(t, h, "field-equals.wasm"); !i.Loaded || !slices.Equal(i.Filters, []string{"field-equals"}) ||
		len(i.Transforms) != 0 || len(i.Countdowns) != 0 {
		t.Fatalf("field-equals.wasm: %+v", i)
	}
	if i := infoOf(t, h, "transform.wasm"); !i.Loaded || !slices.Equal(i.Transforms, []string{"chat"}) || len(i.Filters) != 0 {
		t.Fatalf("transform.wasm: %+v", i)
	}

	f := sink.filter(t, "field-equals")
	if f.Validate == nil {
		t.Fatal("field-equals declares a validator")
	}
	for kwargs, want := range map[string]string{
		`{"field": "status", "equals": "paid"}`: "",
		`{"field": "status", "equals": null}`:   "",
		`{}`:                                    `{"field":["This field is required."]}`,
		`{"field": 5, "equals": 1}`:             `{"field":["Not a valid string."]}`,
		`{"field": "status"}`:                   `{"equals":["This field is required."]}`,
		`[1]`:                                   `non_field_errors`,
	} {
		clean, fieldErrs, err := f.Validate(ctx, json.RawMessage(kwargs))
		switch {
		case err != nil:
			t.Errorf("validate %s: %v", kwargs, err)
		case want == "" && (fieldErrs != nil || string(clean) != kwargs):
			t.Errorf("validate %s = %s, %v; want valid as given", kwargs, clean, fieldErrs)
		case want != "" && !strings.Contains(toJSON(fieldErrs), want):
			t.Errorf("validate %s = %s, want %s", kwargs, toJSON(fieldErrs), want)
		}
	}
	payload := json.RawMessage(`{"id": 1, "tags": ["a", {"b": "}"}], "status": "paid", "amount": 5, "note": "x\"y"}`)
	for _, tc := range []struct {
		kwargs, payload string
		want            bool
	}{
		{`{"field": "status", "equals": "paid"}`, string(payload), true},
		{`{"field": "status", "equals": "open"}`, string(payload), false},
		{`{"field": "amount", "equals": 5}`, string(payload), true},
		{`{"field": "amount", "equals": 5.0}`, string(payload), false},
		{`{"field": "note", "equals": "x\"y"}`, string(payload), true},
		{`{"field": "missing", "equals": 1}`, string(payload), false},
		{`{"field": "status", "equals": "paid"}`, `[1, 2]`, false},
		{`{"field": "status", "equals": "paid"}`, `null`, false},
		{`{"field": "status", "equals": "paid"}`, ``, false},
		{`{"field": "status", "equals": "paid"}`, ` { "status" : "paid" } `, true},
	} {
		got, err := f.Match(ctx, json.RawMessage(tc.kwargs), "package-created", json.RawMessage(tc.payload))
		if err != nil || got != tc.want {
			t.Errorf("filter %s on %s = %v, %v; want %v", tc.kwargs, tc.payload, got, err, tc.want)
		}
	}
	if _, err := f.Match(ctx, json.RawMessage(`{"equals": 1}`), "x", payload); !errors.Is(err, ErrFailed) ||
		!strings.Contains(err.Error(), `kwargs need a string "field"`) {
		t.Errorf("filter with bad kwargs: %v, want the guest's reason", err)
	}

	tr := sink.transform(t, "chat")
	clean, fieldErrs, err := tr.Validate(ctx, json.RawMessage(`{"template": "{event_type}: {payload.status}"}`))
	if err != nil || fieldErrs != nil {
		t.Fatalf("validate: %v %v", fieldErrs, err)
	}
	in := &webhook.TransformInput{EventType: "invoice-paid", UUID: "6f1c", HookID: 3, URL: "https://chat.example/hook",
		Headers: map[string]string{"content-type": "application/json", "x-a": "é"}, Payload: payload,
		Body: []byte(`{"event":{"type":"invoice-paid"},"payload":{}}`)}
	res, err := tr.Apply(ctx, clean, in)
	if err != nil || string(res.Body) != `{"text":"invoice-paid: paid"}` || res.Cancel || res.Headers != nil {
		t.Fatalf("transform = %q %v %v, %v", res.Body, res.Headers, res.Cancel, err)
	}
	_, fieldErrs, err = tr.Validate(ctx, json.RawMessage(`{"template": "{nope}"}`))
	if err != nil || toJSON(fieldErrs) != `{"template":["Unknown placeholder {nope}."]}` {
		t.Errorf("validate unknown placeholder = %v, %v", fieldErrs, err)
	}
}
