package store

import (
	"encoding/json"
	"testing"
)

// appendJSONString writes every string as JSON that decodes to it;
// invalid UTF-8, which JSON cannot carry, becomes U+FFFD (one a byte).
func TestAppendJSONString(t *testing.T) {
	for _, c := range [][2]string{
		{"", ""},
		{"plain", "plain"},
		{"q\"b\\s/\n\r\t\x00\x1f", "q\"b\\s/\n\r\t\x00\x1f"},
		{"ü 😀 \u2028 </x> \x7f", "ü 😀 \u2028 </x> \x7f"},
		{"cut \xe2\x82", "cut \ufffd\ufffd"},
		{"\xff lone", "\ufffd lone"},
	} {
		in, want := c[0], c[1]
		raw := appendJSONString(nil, in)
		var got string
		if err := json.Unmarshal(raw, &got); err != nil || got != want {
			t.Errorf("%q: %s decodes to %q (%v), want %q", in, raw, got, err, want)
		}
	}
	var a jsonRows
	if a.String() != "[]" {
		t.Errorf("no rows: %s", a.String())
	}
	a.row()
	a.int(-1)
	a.null()
	a.bool(true)
	a.row()
	a.str("x")
	if got := a.String(); got != `[[-1,null,true],["x"]]` {
		t.Errorf("rows: %s", got)
	}
}
