package sdk

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Rules declare a countdown's kwargs so that its validator is one line:
//
//	sdk.Rules{"factor": sdk.Int().Min(1), "limit": sdk.Int().Min(0).Optional()}
//
// Rules validate like a DRF serializer of the matching fields: every rule is
// required unless Optional, messages are DRF's ("This field is required.",
// "A valid integer is required.", "Ensure this value is greater than or
// equal to 1."), values are coerced ("5" becomes 5), and names without a
// rule are dropped from the cleaned kwargs.
type Rules map[string]Rule

// Rule checks one kwarg. The SDK provides Int, Float, String and Bool.
type Rule interface {
	// check returns the cleaned value, or DRF messages when v is invalid;
	// skip drops the field from the cleaned kwargs.
	check(v json.RawMessage, present bool) (clean any, msgs []string, skip bool)
}

// Validate implements Validator.
func (r Rules) Validate(kw Kwargs) (Kwargs, Errors) {
	clean := Kwargs{}
	var errs Errors
	for name, rule := range r {
		v, present := kw[name]
		c, msgs, skip := rule.check(v, present)
		if len(msgs) > 0 {
			if errs == nil {
				errs = Errors{}
			}
			errs[name] = msgs
			continue
		}
		if skip {
			continue
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, Errors{name: {err.Error()}}
		}
		clean[name] = b
	}
	if errs != nil {
		return nil, errs
	}
	return clean, nil
}

// presence holds what every rule shares: required or not, a default.
type presence struct {
	optional bool
	def      any
}

// missing handles an absent or null value; done is false when v is a value.
func (p *presence) missing(v json.RawMessage, present bool) (clean any, msgs []string, skip, done bool) {
	switch {
	case !present && p.def != nil:
		return p.def, nil, false, true
	case !present && p.optional:
		return nil, nil, true, true
	case !present:
		return nil, []string{"This field is required."}, false, true
	case string(v) == "null" && p.optional:
		return nil, nil, false, true
	case string(v) == "null":
		return nil, []string{"This field may not be null."}, false, true
	}
	return nil, nil, false, false
}

// IntRule is an integer kwarg (DRF IntegerField). Build it with Int.
type IntRule struct {
	presence
	min, max *int64
}

// Int returns a rule for a required integer.
func Int() *IntRule { return &IntRule{} }

// Min requires the value to be at least n.
func (r *IntRule) Min(n int64) *IntRule { r.min = &n; return r }

// Max requires the value to be at most n.
func (r *IntRule) Max(n int64) *IntRule { r.max = &n; return r }

// Optional lets the value be absent (dropped) or null (kept as null).
func (r *IntRule) Optional() *IntRule { r.optional = true; return r }

// Default uses n when the value is absent.
func (r *IntRule) Default(n int64) *IntRule { r.def = n; return r }

func (r *IntRule) check(v json.RawMessage, present bool) (any, []string, bool) {
	if c, msgs, skip, done := r.missing(v, present); done {
		return c, msgs, skip
	}
	n, _, msg := parseInt(v)
	switch {
	case msg != "":
		return nil, []string{msg}, false
	case r.min != nil && n < *r.min:
		return nil, []string{fmt.Sprintf("Ensure this value is greater than or equal to %d.", *r.min)}, false
	case r.max != nil && n > *r.max:
		return nil, []string{fmt.Sprintf("Ensure this value is less than or equal to %d.", *r.max)}, false
	}
	return n, nil, false
}

// FloatRule is a number kwarg (DRF FloatField). Build it with Float.
type FloatRule struct {
	presence
	min, max *float64
}

// Float returns a rule for a required number.
func Float() *FloatRule { return &FloatRule{} }

// Min requires the value to be at least f.
func (r *FloatRule) Min(f float64) *FloatRule { r.min = &f; return r }

// Max requires the value to be at most f.
func (r *FloatRule) Max(f float64) *FloatRule { r.max = &f; return r }

// Optional lets the value be absent (dropped) or null (kept as null).
func (r *FloatRule) Optional() *FloatRule { r.optional = true; return r }

// Default uses f when the value is absent.
func (r *FloatRule) Default(f float64) *FloatRule { r.def = f; return r }

func (r *FloatRule) check(v json.RawMessage, present bool) (any, []string, bool) {
	if c, msgs, skip, done := r.missing(v, present); done {
		return c, msgs, skip
	}
	f, _, msg := parseFloat(v)
	switch {
	case msg != "":
		return nil, []string{msg}, false
	case r.min != nil && f < *r.min:
		return nil, []string{"Ensure this value is greater than or equal to " + pyFloat(*r.min) + "."}, false
	case r.max != nil && f > *r.max:
		return nil, []string{"Ensure this value is less than or equal to " + pyFloat(*r.max) + "."}, false
	}
	return f, nil, false
}

// pyFloat formats f as Python's str(float) does for ordinary values.
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s
		}
	}
	return s + ".0"
}

// StringRule is a string kwarg (DRF CharField, or ChoiceField with OneOf).
// Build it with String.
type StringRule struct {
	presence
	minLen, maxLen int
	blank          bool
	choices        []string
}

// String returns a rule for a required, non-blank string.
func String() *StringRule { return &StringRule{maxLen: -1} }

// MinLen requires at least n characters.
func (r *StringRule) MinLen(n int) *StringRule { r.minLen = n; return r }

// MaxLen allows at most n characters.
func (r *StringRule) MaxLen(n int) *StringRule { r.maxLen = n; return r }

// AllowBlank accepts the empty string.
func (r *StringRule) AllowBlank() *StringRule { r.blank = true; return r }

// OneOf restricts the value to choices.
func (r *StringRule) OneOf(choices ...string) *StringRule { r.choices = choices; return r }

// Optional lets the value be absent (dropped) or null (kept as null).
func (r *StringRule) Optional() *StringRule { r.optional = true; return r }

// Default uses s when the value is absent.
func (r *StringRule) Default(s string) *StringRule { r.def = s; return r }

func (r *StringRule) check(v json.RawMessage, present bool) (any, []string, bool) {
	if c, msgs, skip, done := r.missing(v, present); done {
		return c, msgs, skip
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		// DRF's CharField takes numbers as their text.
		if _, ok, msg := parseFloat(v); !ok || msg != "" || v[0] == '"' {
			return nil, []string{"Not a valid string."}, false
		}
		s = string(v)
	}
	n := utf8.RuneCountInString(s)
	if len(r.choices) > 0 {
		for _, c := range r.choices {
			if c == s {
				return s, nil, false
			}
		}
		return nil, []string{fmt.Sprintf("%q is not a valid choice.", s)}, false
	}
	switch {
	case s == "" && !r.blank:
		return nil, []string{"This field may not be blank."}, false
	case r.maxLen >= 0 && n > r.maxLen:
		return nil, []string{fmt.Sprintf("Ensure this field has no more than %d characters.", r.maxLen)}, false
	case n < r.minLen:
		return nil, []string{fmt.Sprintf("Ensure this field has at least %d characters.", r.minLen)}, false
	}
	return s, nil, false
}

// BoolRule is a boolean kwarg (DRF BooleanField). Build it with Bool.
type BoolRule struct{ presence }

// Bool returns a rule for a required boolean.
func Bool() *BoolRule { return &BoolRule{} }

// Optional lets the value be absent (dropped) or null (kept as null).
func (r *BoolRule) Optional() *BoolRule { r.optional = true; return r }

// Default uses b when the value is absent.
func (r *BoolRule) Default(b bool) *BoolRule { r.def = b; return r }

func (r *BoolRule) check(v json.RawMessage, present bool) (any, []string, bool) {
	if c, msgs, skip, done := r.missing(v, present); done {
		return c, msgs, skip
	}
	b, _, msg := parseBool(v)
	if msg != "" {
		return nil, []string{msg}, false
	}
	return b, nil, false
}
