package plugin

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
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
