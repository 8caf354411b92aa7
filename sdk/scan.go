package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// A small JSON object scanner: encoding/json's reflection costs tens of
// microseconds per call inside wasm, which would dominate a countdown call.
// It checks structure and leaves values raw; strings with escapes fall back
// to encoding/json.

var errSyntax = errors.New("invalid JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// eachField calls fn with every member of the JSON object b, in order.
func eachField(b []byte, fn func(key string, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipSpace(b, i+1) != len(b) {
			return errSyntax
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errSyntax
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		key, err := unquote(b[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errSyntax
		}
		i = skipSpace(b, i+1)
		vend, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return errSyntax
		}
		if b[i] == '}' {
			if skipSpace(b, i+1) != len(b) {
				return errSyntax
			}
			return nil
		}
		if b[i] != ',' {
			return errSyntax
		}
		i = skipSpace(b, i+1)
	}
}

// skipString returns the index after the string starting at b[i] == '"'.
// It looks for quotes with bytes.IndexByte rather than testing every byte:
// in wasm under the host's deadline checks each branch costs (ABI.md §8).
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errSyntax
		}
		j += k
		escapes := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return j + 1, nil
		}
		j++
	}
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
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), nil
			}
		}
		return 0, errSyntax
	default:
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] >= '0' && b[j] <= '9') {
			j++
		}
		if j == i {
			return 0, errSyntax
		}
		if _, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil {
			return 0, errSyntax
		}
		return j, nil
	}
}

// unquote decodes a JSON string literal.
func unquote(s []byte) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", errSyntax
	}
	inner := s[1 : len(s)-1]
	// Only escapes need decoding; UTF-8 passes through as is. IndexByte,
	// not a byte loop: every loop iteration pays the deadline check.
	if bytes.IndexByte(inner, '\\') >= 0 {
		var out string
		if err := json.Unmarshal(s, &out); err != nil {
			return "", errSyntax
		}
		return out, nil
	}
	return string(inner), nil
}

// field decoders for Delivery: null leaves the zero value.

func decString(v []byte, dst *string, name string) error {
	if string(v) == "null" {
		return nil
	}
	s, err := unquote(v)
	if err != nil {
		return fmt.Errorf("field %s: want a string", name)
	}
	*dst = s
	return nil
}

func decInt(v []byte, name string) (int64, error) {
	if string(v) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s: want an integer", name)
	}
	return n, nil
}

// decode fills d from the callback document b.
func (d *Delivery) decode(b []byte) error {
	return eachField(b, func(k string, v []byte) (err error) {
		var n int64
		switch k {
		case "event_type":
			return decString(v, &d.EventType, k)
		case "event_uuid":
			return decString(v, &d.EventUUID, k)
		case "retry_count":
			n, err = decInt(v, k)
			d.RetryCount = int(n)
		case "delivered":
			d.Delivered = string(v) == "true"
		case "instance":
			d.Instance = v
		case "payload":
			d.Payload = v
		case "webhook":
			if string(v) == "null" {
				return nil
			}
			return eachField(v, func(k string, v []byte) error {
				switch k {
				case "id":
					n, err := decInt(v, "webhook.id")
					d.Webhook.ID = n
					return err
				case "target_url":
					return decString(v, &d.Webhook.TargetURL, "webhook.target_url")
				case "event_type":
					return decString(v, &d.Webhook.EventType, "webhook.event_type")
				case "callback":
					return decString(v, &d.Webhook.Callback, "webhook.callback")
				}
				return nil
			})
		case "response":
			if string(v) == "null" {
				return nil
			}
			return d.Response.decode(v)
		}
		return err
	})
}

func (r *Response) decode(b []byte) error {
	return eachField(b, func(k string, v []byte) error {
		switch k {
		case "status":
			n, err := decInt(v, "response.status")
			r.Status = int(n)
			return err
		case "body":
			return decString(v, &r.Body, "response.body")
		case "error":
			return decString(v, &r.Error, "response.error")
		case "duration_ms":
			if string(v) == "null" {
				return nil
			}
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return fmt.Errorf("field response.duration_ms: want a number")
			}
			r.DurationMS = f
		case "headers":
			if string(v) == "null" {
				return nil
			}
			r.Headers = map[string]string{}
			return eachField(v, func(name string, v []byte) error {
				var s string
				err := decString(v, &s, "response.headers")
				r.Headers[name] = s
				return err
			})
		}
		return nil
	})
}
