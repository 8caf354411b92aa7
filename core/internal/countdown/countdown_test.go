package countdown_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

var ctx = context.Background()

func cfg(choice, kwargs string) webhook.CountdownConfig {
	return webhook.CountdownConfig{Choice: choice, Kwargs: json.RawMessage(kwargs)}
}

// The values dj-whisperer's countdown classes compute.
func TestBuiltinValues(t *testing.T) {
	r := countdown.NewRegistry()
	tests := []struct {
		choice, kwargs string
		want           []int64 // for retry counts 0, 1, 2, ...
	}{
		{"fixed", `{"seconds": 60}`, []int64{60, 60, 60}},
		{"linear", `{"base": 60}`, []int64{0, 60, 120, 180}},
		{"linear", `{"base": 60, "limit": 100}`, []int64{0, 60, 100, 100}},
		{"linear", `{"base": 60, "limit": null}`, []int64{0, 60, 120}},
		{"exponential", `{"base": 2}`, []int64{1, 2, 4, 8, 16}},
		{"exponential", `{"base": 3, "limit": 10}`, []int64{1, 3, 9, 10}},
		{"exponential", `{"base": 0}`, []int64{1, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.choice+tc.kwargs, func(t *testing.T) {
			c, err := r.Validate(ctx, cfg(tc.choice, tc.kwargs))
			if err != nil {
				t.Fatal(err)
			}
			for n, want := range tc.want {
				got, err := r.Wait(ctx, c, n)
				if err != nil || got != time.Duration(want)*time.Second {
					t.Errorf("Wait(%d) = %v, %v; want %ds", n, got, err, want)
				}
			}
		})
	}
}

func TestRandomStaysInBounds(t *testing.T) {
	r := countdown.NewRegistry()
	c := cfg("random", `{"min_value": 3, "max_value": 5}`)
	seen := map[time.Duration]bool{}
	for range 300 {
		got, err := r.Wait(ctx, c, 0)
		if err != nil || got < 3*time.Second || got > 5*time.Second {
			t.Fatalf("Wait = %v, %v", got, err)
		}
		seen[got] = true
	}
	if len(seen) != 3 { // randint is inclusive at both ends
		t.Fatalf("values seen: %v", seen)
	}
}

func TestHugeValuesAreClamped(t *testing.T) {
	r := countdown.NewRegistry()
	got, err := r.Wait(ctx, cfg("exponential", `{"base": 1000}`), 40)
	if err != nil || got != countdown.MaxWait {
		t.Fatalf("Wait = %v, %v; want MaxWait", got, err)
	}
}

// The messages dj-whisperer's kwargs serializers produce.
func TestValidateLikeDRF(t *testing.T) {
	r := countdown.NewRegistry()
	tests := []struct {
		name           string
		choice, kwargs string
		want           string // JSON of the nested error, "" when valid
		clean          string
	}{
		{"fixed ok", "fixed", `{"seconds": 5, "extra": 1}`, "", `{"seconds":5}`},
		{"int as string", "fixed", `{"seconds": "5"}`, "", `{"seconds":5}`},
		{"int as float", "fixed", `{"seconds": 5.0}`, "", `{"seconds":5}`},
		{"fraction", "fixed", `{"seconds": 5.5}`, `{"kwargs":{"seconds":["A valid integer is required."]}}`, ""},
		{"bool", "fixed", `{"seconds": true}`, `{"kwargs":{"seconds":["A valid integer is required."]}}`, ""},
		{"missing", "fixed", `{}`, `{"kwargs":{"seconds":["This field is required."]}}`, ""},
		{"null required", "fixed", `{"seconds": null}`, `{"kwargs":{"seconds":["This field may not be null."]}}`, ""},
		{"negative", "linear", `{"base": -1}`, `{"kwargs":{"base":["Ensure this value is greater than or equal to 0."]}}`, ""},
		{"limit null", "exponential", `{"base": 2, "limit": null}`, "", `{"base":2,"limit":null}`},
		{"limit negative", "exponential", `{"base": 2, "limit": -3}`, `{"kwargs":{"limit":["Ensure this value is greater than or equal to 0."]}}`, ""},
		{"random order", "random", `{"min_value": 5, "max_value": 5}`, `{"kwargs":{"non_field_errors":["'max_value' must be greater than 'min_value'."]}}`, ""},
		{"random ok", "random", `{"min_value": 1, "max_value": 5}`, "", `{"max_value":5,"min_value":1}`},
		{"not an object", "fixed", `[1]`, `{"kwargs":{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}}`, ""},
		{"unknown choice", "custom", `{}`, `{"choice":["\"custom\" is not a valid choice."]}`, ""},
		{"no choice", "", `{}`, `{"choice":["This field is required."]}`, ""},
		{"no kwargs", "fixed", ``, `{"kwargs":["This field is required."]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Validate(ctx, cfg(tc.choice, tc.kwargs))
			if tc.want == "" {
				if err != nil || string(got.Kwargs) != tc.clean {
					t.Fatalf("Validate = %s, %v; want %s", got.Kwargs, err, tc.clean)
				}
				return
			}
			var verr *webhook.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate error = %v, want a ValidationError", err)
			}
			b, _ := json.Marshal(verr.Fields)
			if string(b) != tc.want {
				t.Fatalf("errors = %s\nwant     %s", b, tc.want)
			}
		})
	}
}

func TestRegistryReplaceAndConflicts(t *testing.T) {
	r := countdown.NewRegistry()
	e := webhook.Countdown{
		Value: func(context.Context, int, json.RawMessage) (int64, error) { return 7, nil },
		Validate: func(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
			return kw, nil, nil
		},
	}
	err := r.Replace("a.wasm", map[string]webhook.Countdown{"fixed": e})
	if err == nil || !strings.Contains(err.Error(), `"fixed"`) || !strings.Contains(err.Error(), "builtin") {
		t.Fatalf("taking a built-in key: %v", err)
	}
	if err := r.Replace("a.wasm", map[string]webhook.Countdown{"custom": e}); err != nil {
		t.Fatal(err)
	}
	if err := r.Replace("b.wasm", map[string]webhook.Countdown{"custom": e}); err == nil || !strings.Contains(err.Error(), "a.wasm") {
		t.Fatalf("duplicate across plugins: %v", err)
	}
	if got, _ := r.Wait(ctx, cfg("custom", `{}`), 0); got != 7*time.Second {
		t.Fatalf("plugin countdown: %v", got)
	}
	if err := r.Replace("a.wasm", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("custom"); ok {
		t.Fatal("removed plugin's key still registered")
	}
	if fmt.Sprint(r.Keys()) != "[exponential fixed linear random]" {
		t.Fatalf("keys: %v", r.Keys())
	}
}

func TestWaitErrors(t *testing.T) {
	r := countdown.NewRegistry()
	neg := webhook.Countdown{
		Value: func(context.Context, int, json.RawMessage) (int64, error) { return -1, nil },
		Validate: func(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
			return kw, nil, nil
		},
	}
	_ = r.Register("p.wasm", "neg", neg)
	if _, err := r.Wait(ctx, cfg("neg", `{}`), 0); err == nil {
		t.Fatal("negative countdown accepted")
	}
	if _, err := r.Wait(ctx, cfg("gone", `{}`), 0); err == nil {
		t.Fatal("unregistered countdown accepted")
	}
}
