package main

import (
	"slices"
	"testing"

	"github.com/whisperer/whisperer/sdk"
)

// These run natively (go test ./examples/...): no wasm needed to test a plugin.

func TestCustom(t *testing.T) {
	for _, tc := range []struct{ retry, factor, want int }{
		{0, 5, 0}, {1, 5, 5}, {2, 5, 20}, {3, 5, 15}, {4, 1, 8},
	} {
		kw := sdk.Kwargs{"factor": []byte{byte('0' + tc.factor)}}
		if got := Custom(tc.retry, kw); got != tc.want {
			t.Errorf("Custom(%d, factor=%d) = %d, want %d", tc.retry, tc.factor, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ kwargs, clean, err string }{
		{`{"factor": 5}`, `{"factor":5}`, ""},
		{`{"factor": "5", "other": 1}`, `{"factor":5}`, ""},
		{`{"factor": 0}`, "", "Ensure this value is greater than or equal to 1."},
		{`{}`, "", "This field is required."},
		{`{"factor": "x"}`, "", "A valid integer is required."},
	} {
		clean, errs, err := sdk.RunValidate("custom", tc.kwargs)
		if err != nil {
			t.Fatal(err)
		}
		// Valid kwargs must come back without errors, invalid ones with
		// exactly the one message on "factor".
		want := map[string][]string{}
		if tc.err != "" {
			want["factor"] = []string{tc.err}
		}
		if clean != tc.clean || len(errs) != len(want) || (tc.err != "" && !slices.Equal(errs["factor"], want["factor"])) {
			t.Errorf("validate %s = %s %v, want %s %v", tc.kwargs, clean, errs, tc.clean, want)
		}
	}
	if v, err := sdk.RunCountdown("custom", 3, `{"factor": 5}`); v != 15 || err != nil {
		t.Errorf("RunCountdown = %d, %v", v, err)
	}
}
