package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzJSONBounds checks checkJSONBounds' scanner against encoding/json: for
// any valid JSON value it measures the compact size json.Compact produces
// and the nesting json.Decoder's tokens show.
//
//	go test -run='^$' -fuzz=FuzzJSONBounds -fuzztime=30s ./core/internal/api/
func FuzzJSONBounds(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `"x"`, `{"a": [1, {"b": "c\"]}"}], "d": "\\"}`, ` { "s" : "[[[{\\\"" , "n" : [ [ ] ] } `,
		`{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{}}}}}}}}}}`, `[[[[[[[[[1]]]]]]]]]`, `"\u005c\"{"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		depth, maxDepth := 0, 0
		dec := json.NewDecoder(bytes.NewReader(raw))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
				maxDepth = max(maxDepth, depth)
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
		var want string
		switch {
		case compact.Len() > 64:
			want = fmt.Sprintf("Ensure this value has no more than 64 bytes as compact JSON (it has %d).", compact.Len())
		case maxDepth > maxJSONDepth:
			want = "Ensure this value is nested no more than 8 levels deep."
		}
		if got := checkJSONBounds(raw, 64); got != want {
			t.Fatalf("checkJSONBounds(%s) = %q, want %q", strings.TrimSpace(string(raw)), got, want)
		}
	})
}
