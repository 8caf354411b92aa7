package sdk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
)

// A small JSON object scanner: encoding/json's reflection costs tens of
// microseconds per call inside wasm, which would dominate a countdown call.
// It checks structure and leaves values raw; strings with escapes fall back
// to encoding/json.

var errSyntax = errors.New("invalid JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// In wasm under the host's deadline checks (ABI.md §8) every loop iteration
// and every call that is not inlined pays a check (a few instructions; tens
// of nanoseconds when the check was wazero's), so the scanner below takes
// few steps: strings are searched eight bytes at
// a time, common tokens take inlined fast paths, keys are compared without
// allocating, and nested objects the Delivery decodes are read in the same
// pass that checks them.

// wholeObject reads the JSON object that is all of b with object.
func wholeObject(b []byte, fn func(key []byte, i int) (int, error)) error {
	end, err := object(b, skipSpace(b, 0), fn)
	if err != nil {
		return err
	}
	if skipSpace(b, end) != len(b) {
		return errSyntax
	}
	return nil
}

// eachField calls fn with every member of the JSON object b, in order.
func eachField(b []byte, fn func(key string, val []byte) error) error {
	return wholeObject(b, func(key []byte, i int) (int, error) {
		vend, err := skipValue(b, i)
		if err != nil {
			return 0, err
		}
		return vend, fn(string(key), b[i:vend])
	})
}

// object reads the JSON object at b[i]. For each member it calls fn with the
// key (decoded; it may alias b, so copy it to keep it) and the index of the
// value, and fn returns the index after the value. object returns the index
// after the closing brace.
func object(b []byte, i int, fn func(key []byte, i int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		end, esc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : end-1]
		if esc {
			var s string
			if json.Unmarshal(b[i:end], &s) != nil {
				return 0, errSyntax
			}
			key = []byte(s)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		if i, err = fn(key, skipSpace(b, i+1)); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, errSyntax
		}
		i = skipSpace(b, i+1)
	}
}

// skipSpace returns the index of the first non-space byte at or after i. The
// test before the loop is inlined: compact JSON never enters the loop.
func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpaceLoop(b, i)
}

func skipSpaceLoop(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = '"' * ones
	slashs = '\\' * ones
)

// scanString returns the index after the string starting at b[i] == '"',
// and whether it holds escapes. It reads eight bytes per step and finds the
// first quote or backslash in a word with one instruction (ctz).
func scanString(b []byte, i int) (end int, esc bool, err error) {
	j := i + 1
	for {
		if j+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[j:])
			q, s := w^quotes, w^slashs
			// The lowest set bit marks the first quote or backslash.
			m := ((q-ones)&^q | (s-ones)&^s) & highs
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		} else {
			for j < len(b) && b[j] != '"' && b[j] != '\\' {
				j++
			}
			if j >= len(b) {
				return 0, false, errSyntax
			}
		}
		if b[j] == '"' {
			return j + 1, esc, nil
		}
		esc = true
		j += 2
	}
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	end, _, err := scanString(b, i)
	return end, err
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) { return skipNested(b, i, 0) }

func skipNested(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		if depth >= maxDepth {
			return 0, errSyntax
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errSyntax
				}
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipSpace(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, errSyntax
				}
				i = skipSpace(b, i+1)
			}
			end, err := skipNested(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, end)
			switch {
			case i >= len(b):
				return 0, errSyntax
			case b[i] == closing:
				return i + 1, nil
			case b[i] != ',':
				return 0, errSyntax
			}
			i = skipSpace(b, i+1)
		}
	case 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			return i + 4, nil
		}
		return 0, errSyntax
	case 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			return i + 5, nil
		}
		return 0, errSyntax
	case 'n':
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			return i + 4, nil
		}
		return 0, errSyntax
	default:
		return skipNumber(b, i)
	}
}

// skipNumber returns the index after the number at b[i]: the bytes a number
// may hold, which strconv.ParseFloat must accept. A plain integer of up to
// 18 digits needs no ParseFloat.
func skipNumber(b []byte, i int) (int, error) {
	j, digits := i, true
	if j < len(b) && b[j] == '-' {
		j++
	}
	for ; j < len(b); j++ {
		c := b[j]
		if c >= '0' && c <= '9' {
			continue
		}
		if c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		digits = false
	}
	n := j - i
	if b[i] == '-' {
		n--
	}
	if n == 0 {
		if j == i {
			return 0, errSyntax
		}
		digits = false // a lone "-": let ParseFloat refuse it
	}
	if digits && n <= 18 {
		return j, nil
	}
	if _, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil {
		return 0, errSyntax
	}
	return j, nil
}

// field decoders for Delivery: null leaves the zero value. Each takes the
// value at b[i] and returns the index after it.

// decString decodes the string or null at b[i] into dst.
func decString(b []byte, i int, dst *string, name string) (int, error) {
	if i < len(b) && b[i] == '"' {
		end, esc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		if !esc {
			*dst = string(b[i+1 : end-1])
			return end, nil
		}
		var s string
		if json.Unmarshal(b[i:end], &s) != nil {
			return 0, fmt.Errorf("field %s: want a string", name)
		}
		*dst = s
		return end, nil
	}
	end, err := skipValue(b, i)
	if err != nil {
		return 0, err
	}
	if string(b[i:end]) != "null" {
		return 0, fmt.Errorf("field %s: want a string", name)
	}
	return end, nil
}

// decInt decodes the integer or null at b[i].
func decInt(b []byte, i int, name string) (int64, int, error) {
	end, err := skipValue(b, i)
	if err != nil {
		return 0, 0, err
	}
	v := b[i:end]
	if string(v) == "null" {
		return 0, end, nil
	}
	// Up to 18 digits cannot overflow: no strconv call.
	if d := v[0] == '-'; len(v) <= 18 && (!d || len(v) > 1) {
		var n int64
		k := 0
		if d {
			k = 1
		}
		for ; k < len(v) && v[k] >= '0' && v[k] <= '9'; k++ {
			n = n*10 + int64(v[k]-'0')
		}
		if k == len(v) {
			if d {
				n = -n
			}
			return n, end, nil
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("field %s: want an integer", name)
	}
	return n, end, nil
}

// isNull reports whether b[i:] starts with null.
func isNull(b []byte, i int) bool { return len(b)-i >= 4 && string(b[i:i+4]) == "null" }

// nested decodes the object or null at b[i] with fn; another value is an
// error.
func nested(b []byte, i int, fn func(key []byte, i int) (int, error)) (int, error) {
	if isNull(b, i) {
		return i + 4, nil
	}
	if i < len(b) && b[i] == '{' {
		return object(b, i, fn)
	}
	if _, err := skipValue(b, i); err != nil {
		return 0, err
	}
	return 0, errNotObject
}

// decode fills d from the callback document b, in one pass. Instance and
// Payload alias b, capped so that appending to one cannot overwrite the rest.
func (d *Delivery) decode(b []byte) error {
	return wholeObject(b, func(k []byte, i int) (end int, err error) {
		var n int64
		switch string(k) {
		case "event_type":
			return decString(b, i, &d.EventType, "event_type")
		case "event_uuid":
			return decString(b, i, &d.EventUUID, "event_uuid")
		case "retry_count":
			n, end, err = decInt(b, i, "retry_count")
			d.RetryCount = int(n)
			return end, err
		case "webhook":
			return nested(b, i, d.Webhook.decodeField(b))
		case "response":
			return nested(b, i, d.Response.decodeField(b))
		}
		if end, err = skipValue(b, i); err != nil {
			return 0, err
		}
		switch string(k) {
		case "delivered":
			d.Delivered = string(b[i:end]) == "true"
		case "instance":
			d.Instance = b[i:end:end]
		case "payload":
			d.Payload = b[i:end:end]
		}
		return end, nil
	})
}

func (w *Webhook) decodeField(b []byte) func(k []byte, i int) (int, error) {
	return func(k []byte, i int) (end int, err error) {
		switch string(k) {
		case "id":
			w.ID, end, err = decInt(b, i, "webhook.id")
			return end, err
		case "target_url":
			return decString(b, i, &w.TargetURL, "webhook.target_url")
		case "event_type":
			return decString(b, i, &w.EventType, "webhook.event_type")
		case "callback":
			return decString(b, i, &w.Callback, "webhook.callback")
		}
		return skipValue(b, i)
	}
}

func (r *Response) decodeField(b []byte) func(k []byte, i int) (int, error) {
	return func(k []byte, i int) (end int, err error) {
		switch string(k) {
		case "status":
			var n int64
			n, end, err = decInt(b, i, "response.status")
			r.Status = int(n)
			return end, err
		case "body":
			return decString(b, i, &r.Body, "response.body")
		case "error":
			return decString(b, i, &r.Error, "response.error")
		case "headers":
			if i < len(b) && b[i] == '{' {
				r.Headers = map[string]string{}
			}
			return nested(b, i, func(name []byte, i int) (int, error) {
				var s string
				end, err := decString(b, i, &s, "response.headers")
				r.Headers[string(name)] = s
				return end, err
			})
		case "duration_ms":
			if end, err = skipValue(b, i); err != nil {
				return 0, err
			}
			if v := b[i:end]; string(v) != "null" {
				f, err := strconv.ParseFloat(string(v), 64)
				if err != nil {
					return 0, fmt.Errorf("field response.duration_ms: want a number")
				}
				r.DurationMS = f
			}
			return end, nil
		}
		return skipValue(b, i)
	}
}
