package plugin

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
)

// TestParseTransform covers the hand-written result decoder, hostile
// documents included: each must fail with ErrFailed, never panic.
func TestParseTransform(t *testing.T) {
	ok := []struct {
		doc, body string
		headers   map[string]string
		cancel    bool
	}{
		{`{}`, "", nil, false},
		{` {"cancel":true} `, "", nil, true},
		{`{"cancel":null,"body":null,"headers":null}`, "", nil, false},
		{`{"body":"a\"b\u00e9"}`, `a"bé`, nil, false},
		{`{"body":"` + "\xff" + `"}`, "\uFFFD", nil, false},
		{`{"body": {"text": "x"} , "x": [1,{"y":"}"}]}`, `{"text": "x"}`, nil, false},
		{`{"body":12.5e3}`, `12.5e3`, nil, false},
		{`{"body":"a","body":"b"}`, "b", nil, false},
		{`{"b\u006fdy":"esc"}`, "esc", nil, false},
		{`{"Body":"case"}`, "", nil, false},
		{`{"headers":{"X-A":"1","x-b":"v\u00e9"},"headers":{"X-C":""}}`, "", map[string]string{"X-A": "1", "x-b": "vé", "X-C": ""}, false},
	}
	for _, c := range ok {
		doc := []byte(c.doc)
		res, err := parseTransform(doc)
		if err != nil {
			t.Errorf("%s: %v", c.doc, err)
			continue
		}
		// The document is the guest's memory, which its next call
		// overwrites: the result must hold none of it.
		for i := range doc {
			doc[i] = '#'
		}
		if string(res.Body) != c.body || res.Cancel != c.cancel || !maps.Equal(res.Headers, c.headers) {
			t.Errorf("%s: got body %q headers %v cancel %v", c.doc, res.Body, res.Headers, res.Cancel)
		}
	}
	// An empty body replaces the body; none (or null) keeps it.
	for doc, keep := range map[string]bool{`{"body":""}`: false, `{"body":[]}`: false, `{}`: true, `{"body":null}`: true} {
		if res, err := parseTransform([]byte(doc)); err != nil || (res.Body == nil) != keep {
			t.Errorf("%s: body %#v, %v; want it nil: %v", doc, res.Body, err, keep)
		}
	}
	bad := []struct{ doc, msg string }{
		{``, "not a valid JSON object"},
		{`[]`, "not a valid JSON object"},
		{`"x"`, "not a valid JSON object"},
		{`{"body":}`, "not a valid JSON object"},
		{`{"body":"x"} trailing`, "not a valid JSON object"},
		{`{"body":"x"`, "not a valid JSON object"},
		{`{"body":"` + "\x01" + `"}`, "not a valid JSON object"},
		{`{"cancel":1}`, "cancel is not a boolean"},
		{`{"cancel":"true"}`, "cancel is not a boolean"},
		{`{"headers":[]}`, "headers is not an object"},
		{`{"headers":"x"}`, "headers is not an object"},
		{`{"headers":{"x":1}}`, "is not a string"},
		{`{"headers":{"x":null}}`, "is not a string"},
		{`{"headers":{"a b":"1"}}`, "not an HTTP token"},
		{`{"headers":{"":"1"}}`, "not an HTTP token"},
		{`{"headers":{"a\u00e9":"1"}}`, "not an HTTP token"},
		{`{"headers":{"` + strings.Repeat("a", 257) + `":"1"}}`, "not an HTTP token"},
		{`{"headers":{"x":"a\r\nb: c"}}`, "control character"},
		{`{"headers":{"x":"a\u007fb"}}`, "control character"},
	}
	for _, c := range bad {
		_, err := parseTransform([]byte(c.doc))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err %v, want ErrFailed with %q", c.doc, err, c.msg)
		}
	}
}

// FuzzParseTransform: no document panics the decoder, and what it accepts
// encoding/json accepts as an object.
func FuzzParseTransform(f *testing.F) {
	for _, s := range []string{`{}`, `{"body":"x","headers":{"a":"b"},"cancel":true}`, `{"body":[1,"]"]}`, `{"b\u006fdy":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := parseTransform(doc)
		if err != nil {
			return
		}
		// Raw values: encoding/json refuses numbers past float64 (1E700)
		// that json.Valid, and so a receiver's parser, may accept.
		var m map[string]json.RawMessage
		if e := json.Unmarshal(doc, &m); e != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v (%+v)", doc, e, res)
		}
	})
}
