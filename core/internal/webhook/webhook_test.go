package webhook

import (
	"encoding/json"
	"testing"
)

// RequestBody quotes the event type itself when nothing needs escaping;
// the bytes must be json.Marshal's in every case, since receivers verify
// signatures over them.
func TestRequestBodyQuotesAsJSONMarshal(t *testing.T) {
	types := []string{"", "order.created", "a b", `q"uote`, `back\slash`, "<tag>&", "tab\there", "nul\x00", "del\x7f",
		"é", "line\u2028sep", "bad\xffutf8", "~!#$%^*()_+-=[]{}|;':,./?"}
	for c := range 256 {
		types = append(types, "x"+string(rune(c))+"y", "x"+string([]byte{byte(c)})+"y")
	}
	for _, et := range types {
		q, err := json.Marshal(et)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"event":{"type":` + string(q) + `,"uuid":"u-1"},"payload":{"a":1}}`
		if got := string(RequestBody(et, "u-1", json.RawMessage(`{"a":1}`))); got != want {
			t.Errorf("RequestBody(%q) = %s, want %s", et, got, want)
		}
	}
	if got, want := string(RequestBody("t", "u", nil)), `{"event":{"type":"t","uuid":"u"},"payload":null}`; got != want {
		t.Errorf("empty payload: %s, want %s", got, want)
	}
}
