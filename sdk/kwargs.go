package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// Kwargs are a countdown's keyword arguments: the JSON object a hook stores
// in retry_countdown_config.kwargs, one raw value per name. The typed
// getters read values the way DRF's fields coerce them (5, 5.0 and "5" are
// the integer 5) and return the zero value when a name is absent or not of
// that type; kwargs a validator accepted are safe to read without checks.
type Kwargs map[string]json.RawMessage

var errNotObject = errors.New("kwargs are not a JSON object")

func parseKwargs(b []byte) (Kwargs, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	kw := Kwargs{}
	err := eachField(b, func(k string, v []byte) error {
		kw[k] = v
		return nil
	})
	if err != nil {
		return nil, errNotObject
	}
	return kw, nil
}

// Has reports whether name is present (even as null).
func (k Kwargs) Has(name string) bool {
	_, ok := k[name]
	return ok
}

// Int returns name as an integer, or 0.
func (k Kwargs) Int(name string) int { return k.IntOr(name, 0) }

// IntOr returns name as an integer, or def when it is absent, null or not
// an integer.
func (k Kwargs) IntOr(name string, def int) int {
	n, ok, msg := parseInt(k[name])
	if !ok || msg != "" || n > math.MaxInt || n < math.MinInt {
		return def
	}
	return int(n)
}

// Float returns name as a number, or 0.
func (k Kwargs) Float(name string) float64 {
	f, ok, msg := parseFloat(k[name])
	if !ok || msg != "" {
		return 0
	}
	return f
}

// String returns name as a string, or "".
func (k Kwargs) String(name string) string {
	s, _ := Unquote(k[name])
	return s
}

// Unquote returns the JSON string v decoded, and whether v is one. It reads
// eight bytes per step and decodes escapes only when there are some
// (encoding/json costs a guest tens of microseconds per call).
func Unquote(v json.RawMessage) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	var s string
	end, err := decString(v, 0, &s, "")
	return s, err == nil && end == len(v)
}

// Bool returns name as a boolean, or false.
func (k Kwargs) Bool(name string) bool {
	b, ok, msg := parseBool(k[name])
	return ok && msg == "" && b
}

// Decode unmarshals the kwargs into v, a pointer to a struct or map.
func (k Kwargs) Decode(v any) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// parseInt reads v as DRF's IntegerField does; ok is false for absent or
// null; msg is DRF's message when v is not an integer.
func parseInt(v json.RawMessage) (n int64, ok bool, msg string) {
	const invalid = "A valid integer is required."
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return 0, false, ""
	}
	// Fast path: a plain JSON integer, by far the common case.
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return n, true, ""
	}
	var s string
	switch v[0] {
	case '"':
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, false, invalid
		}
		if len(s) > 1000 {
			return 0, false, "String value too large."
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		s = string(v)
	default:
		return 0, false, invalid
	}
	// DRF strips a trailing ".0…" before int(): 5.0 and "5.00" are 5.
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, invalid
	}
	return n, true, ""
}

func parseFloat(v json.RawMessage) (f float64, ok bool, msg string) {
	const invalid = "A valid number is required."
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return 0, false, ""
	}
	s := string(v)
	if v[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, false, invalid
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, invalid
	}
	return f, true, ""
}

// parseBool accepts DRF's BooleanField inputs.
func parseBool(v json.RawMessage) (b bool, ok bool, msg string) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return false, false, ""
	}
	s := string(v)
	if v[0] == '"' {
		_ = json.Unmarshal(v, &s)
	}
	switch strings.ToLower(s) {
	case "true", "1", "1.0", "t", "y", "yes", "on":
		return true, true, ""
	case "false", "0", "0.0", "f", "n", "no", "off":
		return false, true, ""
	}
	return false, false, "Must be a valid boolean."
}
