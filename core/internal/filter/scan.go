package filter

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The payload is read where the filter looks, not decoded whole: decoding
// 1 KiB into maps costs tens of µs and hundreds of allocations, finding
// five values in it a few hundred ns. lookup walks the raw JSON along the
// path, skipping the values it passes over; only the value found is
// decoded. The payload is valid JSON (the store compacts it before
// fan-out, NewEvent checks it), so the scanner never has to report syntax
// errors; on bytes that are not JSON it answers "not there", never panics.

// lookup returns the raw value at segs in b.
func lookup(b []byte, segs []seg) ([]byte, bool) {
	i := ws(b, 0)
	for _, s := range segs {
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case '{':
			i = ws(b, i+1)
			found := false
			for i < len(b) && b[i] == '"' {
				end := skipString(b, i)
				key := b[i+1 : max(i+1, end-1)]
				i = ws(b, end)
				if i >= len(b) || b[i] != ':' {
					return nil, false
				}
				i = ws(b, i+1)
				if keyIs(key, s.key) {
					found = true
					break
				}
				i = ws(b, skipValue(b, i))
				if i < len(b) && b[i] == ',' {
					i = ws(b, i+1)
				}
			}
			if !found {
				return nil, false
			}
		case '[':
			if s.idx < 0 {
				return nil, false
			}
			i = ws(b, i+1)
			for n := 0; n < s.idx; n++ {
				if i >= len(b) || b[i] == ']' {
					return nil, false
				}
				i = ws(b, skipValue(b, i))
				if i >= len(b) || b[i] != ',' {
					return nil, false
				}
				i = ws(b, i+1)
			}
			if i >= len(b) || b[i] == ']' {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if i >= len(b) {
		return nil, false
	}
	return b[i:skipValue(b, i)], true
}

// keyIs compares a raw key (between its quotes) with k, unescaping only
// keys that hold escapes.
func keyIs(raw []byte, k string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == k
	}
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
		return false
	}
	return s == k
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		d := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				d++
			case '}', ']':
				d--
				if d == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// decode turns a raw value into what the tests compare: string, float64,
// bool, nil, []any or map[string]any. Scalars skip encoding/json.
func decode(raw []byte) (any, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	switch c := raw[0]; {
	case c == '"' && len(raw) >= 2 && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0:
		return string(raw[1 : len(raw)-1]), true
	case c == '-' || (c >= '0' && c <= '9'):
		f, err := strconv.ParseFloat(string(raw), 64)
		return f, err == nil || isRange(err)
	case string(raw) == "true":
		return true, true
	case string(raw) == "false":
		return false, true
	case string(raw) == "null":
		return nil, true
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	return v, true
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
