package countdown

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Builtin is the Source of the built-in countdowns.
const Builtin = "builtin"

func builtins() map[string]webhook.Countdown {
	return map[string]webhook.Countdown{
		"fixed": {Validate: schema(field{name: "seconds"}).validate,
			Value: func(_ context.Context, _ int, kw json.RawMessage) (int64, error) {
				v, err := decodeInts(kw)
				return v["seconds"].n, err
			}},
		"linear": {Validate: schema(field{name: "base"}, field{name: "limit", optional: true}).validate,
			Value: func(_ context.Context, n int, kw json.RawMessage) (int64, error) {
				v, err := decodeInts(kw)
				return limited(satMul(v["base"].n, int64(max(n, 0))), v["limit"]), err
			}},
		"exponential": {Validate: schema(field{name: "base"}, field{name: "limit", optional: true}).validate,
			Value: func(_ context.Context, n int, kw json.RawMessage) (int64, error) {
				v, err := decodeInts(kw)
				return limited(satPow(v["base"].n, n), v["limit"]), err
			}},
		"random": {Validate: randomSchema,
			Value: func(_ context.Context, _ int, kw json.RawMessage) (int64, error) {
				v, err := decodeInts(kw)
				lo, hi := v["min_value"].n, v["max_value"].n
				if err != nil || hi < lo {
					return 0, fmt.Errorf("random countdown needs min_value <= max_value: %w", err)
				}
				// Both are within [0, MaxKwarg] (decodeInts), so the span
				// cannot overflow.
				return lo + rand.Int64N(hi-lo+1), nil // randint is inclusive
			}},
	}
}

// MaxKwarg is the largest value a built-in countdown's kwarg may take:
// 30 days in seconds, the longest any countdown waits (MaxWait). The
// validator refuses larger values; kwargs stored before the bound existed
// are clamped to it when the countdown runs.
const MaxKwarg = int64(MaxWait / time.Second)

// optInt is a kwarg that may be absent or null.
type optInt struct {
	n   int64
	set bool
}

func limited(v int64, limit optInt) int64 {
	if limit.set {
		return min(v, limit.n)
	}
	return v
}

// satMul is a*b for a, b >= 0, saturating at MaxKwarg.
func satMul(a, b int64) int64 {
	if a != 0 && b > MaxKwarg/a {
		return MaxKwarg
	}
	return a * b
}

// satPow is base**n for base >= 0, saturating at MaxKwarg; it takes at
// most ~22 steps whatever n is.
func satPow(base int64, n int) int64 {
	switch {
	case n <= 0:
		return 1 // Python's 0**0 is 1 too
	case base <= 1:
		return base
	}
	r := int64(1)
	for range n {
		r = satMul(r, base)
		if r == MaxKwarg {
			break
		}
	}
	return r
}

// decodeInts reads stored integer kwargs, clamped to [0, MaxKwarg]: rows
// validated by an older release may hold any integer, and the arithmetic
// on them must neither overflow nor go negative.
func decodeInts(kw json.RawMessage) (map[string]optInt, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(kw, &raw); err != nil {
		return nil, fmt.Errorf("kwargs: %w", err)
	}
	out := make(map[string]optInt, len(raw))
	for k, v := range raw {
		if n, ok, msg := parseDRFInt(v); msg == "" && ok {
			out[k] = optInt{n: min(max(n, 0), MaxKwarg), set: true}
		}
	}
	return out, nil
}

type field struct {
	name     string
	optional bool // required=False, allow_null=True
}

type schemaSpec []field

func schema(fields ...field) schemaSpec { return fields }

// validate mirrors a DRF Serializer of IntegerField(min_value=0,
// max_value=MaxKwarg) fields: unknown keys are dropped, values are coerced
// to integers.
func (s schemaSpec) validate(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
	clean, errs := s.check(kw)
	if len(errs) > 0 {
		return nil, errs, nil
	}
	b, err := json.Marshal(clean)
	return b, nil, err
}

func (s schemaSpec) check(kw json.RawMessage) (map[string]any, map[string]any) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(kw, &raw); err != nil || raw == nil {
		return nil, map[string]any{"non_field_errors": []string{
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", jsonKind(kw))}}
	}
	clean := map[string]any{}
	errs := map[string]any{}
	for _, f := range s {
		v, present := raw[f.name]
		switch {
		case !present && f.optional:
			continue
		case !present:
			errs[f.name] = []string{"This field is required."}
			continue
		}
		n, ok, msg := parseDRFInt(v)
		switch {
		case msg != "":
			errs[f.name] = []string{msg}
		case !ok && f.optional:
			clean[f.name] = nil
		case !ok:
			errs[f.name] = []string{"This field may not be null."}
		case n < 0:
			errs[f.name] = []string{"Ensure this value is greater than or equal to 0."}
		case n > MaxKwarg:
			errs[f.name] = []string{fmt.Sprintf("Ensure this value is less than or equal to %d.", MaxKwarg)}
		default:
			clean[f.name] = n
		}
	}
	return clean, errs
}

func randomSchema(ctx context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
	s := schema(field{name: "min_value"}, field{name: "max_value"})
	clean, errs := s.check(kw)
	if len(errs) > 0 {
		return nil, errs, nil
	}
	if clean["min_value"].(int64) >= clean["max_value"].(int64) {
		return nil, map[string]any{"non_field_errors": []string{"'max_value' must be greater than 'min_value'."}}, nil
	}
	b, err := json.Marshal(clean)
	return b, nil, err
}

// DRF's IntegerField strips a trailing ".0…" before int(): "5", 5.0 and
// "5.00" are all 5; true, 5.5 and "five" are not integers.
var trailingZeros = regexp.MustCompile(`\.0*\s*$`)

// parseDRFInt returns the integer in v; ok is false for null. msg is DRF's
// message when v is not an integer.
func parseDRFInt(v json.RawMessage) (n int64, ok bool, msg string) {
	const invalid = "A valid integer is required."
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return 0, false, invalid
	}
	var s string
	switch t := x.(type) {
	case nil:
		return 0, false, ""
	case string:
		if len(t) > 1000 {
			return 0, false, "String value too large."
		}
		s = t
	case float64:
		s = strings.TrimSpace(string(v))
	default:
		return 0, false, invalid
	}
	s = trailingZeros.ReplaceAllString(strings.TrimSpace(s), "")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, invalid
	}
	return n, true, ""
}

func jsonKind(v json.RawMessage) string {
	var x any
	_ = json.Unmarshal(v, &x)
	switch x.(type) {
	case string:
		return "str"
	case float64:
		return "int"
	case bool:
		return "bool"
	case []any:
		return "list"
	default:
		return "NoneType"
	}
}
