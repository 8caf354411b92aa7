package countdown_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// boundValues are kwarg values at and around the validator's bounds, and
// the extremes a row stored by an older release may hold.
var boundValues = []int64{
	math.MinInt64, -1, 0, 1, 2, 3,
	countdown.MaxKwarg - 1, countdown.MaxKwarg, countdown.MaxKwarg + 1,
	math.MaxInt32, math.MaxInt64 - 1, math.MaxInt64,
}

// retryCounts are 0..max_retries for max_retries up to 64 (the default
// is 18; exponential base 2 saturates after 22), then counts a
// misconfigured server could reach.
func retryCounts() []int {
	var out []int
	for n := range 65 {
		out = append(out, n)
	}
	return append(out, 1000, math.MaxInt32, math.MaxInt, -1, math.MinInt)
}

func inBounds(n int64) bool { return n >= 0 && n <= countdown.MaxKwarg }

// Every built-in countdown, for kwargs at and around the validator's
// bounds and every retry count, returns 0 <= wait <= MaxWait without
// panicking, whether the kwargs passed today's validator or were stored
// by an older release that accepted any integer.
func TestBuiltinWaitIsBounded(t *testing.T) {
	r := countdown.NewRegistry()
	var kwargs []string
	for _, a := range boundValues {
		kwargs = append(kwargs,
			fmt.Sprintf(`{"seconds": %d}`, a),
			fmt.Sprintf(`{"base": %d}`, a),
			fmt.Sprintf(`{"min_value": 0, "max_value": %d}`, a),
			fmt.Sprintf(`{"min_value": %d, "max_value": %d}`, a, int64(math.MaxInt64)),
		)
		for _, b := range boundValues {
			kwargs = append(kwargs,
				fmt.Sprintf(`{"base": %d, "limit": %d}`, a, b),
				fmt.Sprintf(`{"min_value": %d, "max_value": %d}`, a, b))
		}
	}
	counts := retryCounts()
	checked := 0
	for _, choice := range []string{"fixed", "linear", "exponential", "random"} {
		e, _ := r.Lookup(choice)
		for _, kw := range kwargs {
			c := cfg(choice, kw)
			valid, err := r.Validate(ctx, c)
			var verr *webhook.ValidationError
			if err != nil && !errors.As(err, &verr) {
				t.Fatalf("%s %s: %v", choice, kw, err)
			}
			for _, n := range counts {
				// What a stored row, valid or not, computes.
				secs, err := e.Value(ctx, n, c.Kwargs)
				if err == nil && !inBounds(secs) {
					t.Fatalf("%s %s retry %d: %d seconds", choice, kw, n, secs)
				}
				w, werr := r.Wait(ctx, c, n)
				if werr == nil && (w < 0 || w > countdown.MaxWait) {
					t.Fatalf("%s %s retry %d: Wait = %s", choice, kw, n, w)
				}
				if err == nil {
					// Kwargs the validator accepted never fail.
					if w, err := r.Wait(ctx, valid, n); err != nil || w < 0 || w > countdown.MaxWait {
						t.Fatalf("%s %s (valid) retry %d: Wait = %s, %v", choice, valid.Kwargs, n, w, err)
					}
				}
				checked++
			}
		}
	}
	t.Logf("%d (countdown, kwargs, retry count) combinations", checked)
}

// The validator bounds every built-in kwarg to [0, MaxKwarg], with DRF's
// messages.
func TestValidateBounds(t *testing.T) {
	r := countdown.NewRegistry()
	tooBig := fmt.Sprintf(`["Ensure this value is less than or equal to %d."]`, countdown.MaxKwarg)
	tests := []struct{ choice, kwargs, want string }{
		{"fixed", `{"seconds": 2592000}`, ""},
		{"fixed", `{"seconds": 2592001}`, `{"kwargs":{"seconds":` + tooBig + `}}`},
		{"fixed", `{"seconds": "9223372036854775807"}`, `{"kwargs":{"seconds":` + tooBig + `}}`},
		{"linear", `{"base": 2592000, "limit": 2592000}`, ""},
		{"linear", `{"base": 1, "limit": 2592001}`, `{"kwargs":{"limit":` + tooBig + `}}`},
		{"exponential", `{"base": 9223372036854775807}`, `{"kwargs":{"base":` + tooBig + `}}`},
		{"random", `{"min_value": 0, "max_value": 2592000}`, ""},
		// The crash report: accepted with 201, then panicked in rand.Int64N.
		{"random", `{"min_value": 0, "max_value": 9223372036854775807}`, `{"kwargs":{"max_value":` + tooBig + `}}`},
		{"random", `{"min_value": -1, "max_value": 9223372036854775807}`,
			`{"kwargs":{"max_value":` + tooBig + `,"min_value":["Ensure this value is greater than or equal to 0."]}}`},
		{"fixed", `{"seconds": 99999999999999999999}`, `{"kwargs":{"seconds":["A valid integer is required."]}}`},
	}
	for _, tc := range tests {
		_, err := r.Validate(ctx, cfg(tc.choice, tc.kwargs))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.choice, tc.kwargs, err)
			}
			continue
		}
		var verr *webhook.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("%s %s: error %v, want a ValidationError", tc.choice, tc.kwargs, err)
			continue
		}
		if b, _ := json.Marshal(verr.Fields); string(b) != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.choice, tc.kwargs, b, tc.want)
		}
	}
}

// Rows an older release stored with out-of-range kwargs still compute a
// wait: the kwargs are clamped to [0, MaxKwarg].
func TestStoredOutOfRangeKwargs(t *testing.T) {
	r := countdown.NewRegistry()
	tests := []struct {
		choice, kwargs string
		retry          int
		want           time.Duration // -1: anything within [0, MaxWait]
	}{
		{"random", `{"min_value": 0, "max_value": 9223372036854775807}`, 0, -1},
		{"random", `{"min_value": 9223372036854775806, "max_value": 9223372036854775807}`, 0, countdown.MaxWait},
		{"fixed", `{"seconds": 9223372036854775807}`, 0, countdown.MaxWait},
		{"fixed", `{"seconds": -5}`, 0, 0},
		{"linear", `{"base": 9223372036854775807}`, 3, countdown.MaxWait},
		{"linear", `{"base": -9223372036854775808}`, 3, 0},
		{"linear", `{"base": 10, "limit": -1}`, 3, 0},
		{"exponential", `{"base": 9223372036854775807}`, 2, countdown.MaxWait},
		{"exponential", `{"base": 2}`, math.MaxInt, countdown.MaxWait},
		{"exponential", `{"base": 1}`, math.MaxInt, time.Second},
		{"exponential", `{"base": -2}`, 3, 0},
	}
	for _, tc := range tests {
		got, err := r.Wait(ctx, cfg(tc.choice, tc.kwargs), tc.retry)
		if err != nil || (tc.want >= 0 && got != tc.want) || got < 0 || got > countdown.MaxWait {
			t.Errorf("%s %s retry %d: %s, %v; want %s", tc.choice, tc.kwargs, tc.retry, got, err, tc.want)
		}
	}
}

// A plugin's countdown result is bounded too: above MaxWait it is clamped,
// negative it is an error (the dispatcher then uses the default countdown).
func TestPluginResultsAreBounded(t *testing.T) {
	r := countdown.NewRegistry()
	for _, secs := range []int64{math.MaxInt64, countdown.MaxKwarg + 1, countdown.MaxKwarg, 0, -1, math.MinInt64} {
		key := fmt.Sprintf("p%d", secs)
		_ = r.Register("p.wasm", key, webhook.Countdown{
			Value: func(context.Context, int, json.RawMessage) (int64, error) { return secs, nil },
			Validate: func(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
				return kw, nil, nil
			},
		})
		w, err := r.Wait(ctx, cfg(key, `{}`), 0)
		want := time.Duration(min(secs, countdown.MaxKwarg)) * time.Second
		if (secs < 0) != (err != nil) || (err == nil && w != want) {
			t.Errorf("plugin returned %d seconds: Wait = %s, %v; want %s or, if negative, an error", secs, w, err, want)
		}
	}
}
