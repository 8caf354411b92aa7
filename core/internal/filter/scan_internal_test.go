package filter

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// walk is the reference lookup: decode everything, then follow the path.
func walk(payload []byte, segs []seg) (any, bool) {
	var v any
	if json.Unmarshal(payload, &v) != nil {
		return nil, false
	}
	for _, s := range segs {
		switch cur := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = cur[s.key]; !ok {
				return nil, false
			}
		case []any:
			if s.idx < 0 || s.idx >= len(cur) {
				return nil, false
			}
			v = cur[s.idx]
		default:
			return nil, false
		}
	}
	return v, true
}

// FuzzLookup checks the scanner against encoding/json on valid payloads
// (duplicate keys aside: encoding/json keeps the last, the scanner the
// first) and that it never panics on invalid ones.
func FuzzLookup(f *testing.F) {
	f.Add(`{"a": {"b": [1, "x", {"c": true}]}, "d": "\u0041\"", "e\\u0066": null}`, "a.b.2.c")
	f.Add(`{"a": [[1, 2], [3]]}`, "a.1.0")
	f.Add(`[1, 2, {"a": 1e400}]`, "2.a")
	f.Fuzz(func(t *testing.T, payload, p string) {
		segs := compilePath(append([]string{"payload"}, strings.Split(p, ".")...)).segs
		raw, ok := lookup([]byte(payload), segs) // on any bytes: must not panic
		var all any
		if json.Unmarshal([]byte(payload), &all) != nil || strings.Contains(payload, `"`) && hasDuplicateKeys(payload) {
			return
		}
		want, wantOK := walk([]byte(payload), segs)
		var got any
		if ok {
			got, ok = decode(raw)
		}
		if ok != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("lookup(%s, %s) = %v %v, want %v %v", payload, p, got, ok, want, wantOK)
		}
	})
}

// hasDuplicateKeys reports an object with a repeated key anywhere.
func hasDuplicateKeys(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	var stack []map[string]bool
	expectKey := []bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, map[string]bool{})
				expectKey = append(expectKey, true)
				continue
			case '[':
				stack = append(stack, nil)
				expectKey = append(expectKey, false)
				continue
			default:
				stack, expectKey = stack[:len(stack)-1], expectKey[:len(expectKey)-1]
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1] != nil && expectKey[n-1] {
				if stack[n-1][tok] {
					return true
				}
				stack[n-1][tok] = true
				expectKey[n-1] = false
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1] != nil {
			expectKey[n-1] = true
		}
	}
}
