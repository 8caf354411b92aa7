package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/whisperer/whisperer/sdk/abi"
)

// CountdownFunc returns how many seconds to wait before the next attempt,
// given the number of retries already made (0 after the first failure) and
// the hook's validated kwargs. A negative value is an error.
type CountdownFunc func(retryCount int, kw Kwargs) int

// CallbackFunc runs after a delivery attempt. Its error is logged by the
// server; it never changes the delivery's outcome.
type CallbackFunc func(d *Delivery) error

// Validator checks a countdown's kwargs the way a DRF serializer does: it
// returns the cleaned kwargs to store, or field errors.
type Validator interface {
	Validate(kw Kwargs) (Kwargs, Errors)
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(kw Kwargs) (Kwargs, Errors)

// Validate calls f.
func (f ValidatorFunc) Validate(kw Kwargs) (Kwargs, Errors) { return f(kw) }

// Errors is a DRF-shaped field error document: field name to messages.
// Errors that concern no single field go under "non_field_errors".
type Errors map[string][]string

type countdown struct {
	key      string
	fn       CountdownFunc
	validate Validator
}

type callback struct {
	name string
	fn   CallbackFunc
}

var (
	name       string
	countdowns []countdown
	callbacks  []callback
)

// SetName sets the plugin name reported in the manifest. Optional.
func SetName(n string) { name = n }

// RegisterCountdown registers fn under key, with v checking the kwargs a hook
// stores for it. A nil v accepts any JSON object unchanged. Call it from
// init; it panics on an empty or duplicate key, like net/http.Handle, so the
// mistake surfaces when the plugin loads.
func RegisterCountdown(key string, fn CountdownFunc, v Validator) {
	mustNew("countdown", key, fn == nil)
	for _, c := range countdowns {
		if c.key == key {
			panic(fmt.Sprintf("sdk: countdown %q registered twice", key))
		}
	}
	countdowns = append(countdowns, countdown{key: key, fn: fn, validate: v})
}

// RegisterCallback registers fn under name. Call it from init; it panics on
// an empty or duplicate name.
func RegisterCallback(name string, fn CallbackFunc) {
	mustNew("callback", name, fn == nil)
	for _, c := range callbacks {
		if c.name == name {
			panic(fmt.Sprintf("sdk: callback %q registered twice", name))
		}
	}
	callbacks = append(callbacks, callback{name: name, fn: fn})
}

func mustNew(kind, key string, nilFn bool) {
	switch {
	case key == "":
		panic(fmt.Sprintf("sdk: %s with an empty key", kind))
	case len(key) > abi.MaxKeyBytes:
		panic(fmt.Sprintf("sdk: %s key %.20q… is longer than %d bytes", kind, key, abi.MaxKeyBytes))
	case nilFn:
		panic(fmt.Sprintf("sdk: %s %q has a nil function", kind, key))
	}
}

// manifest returns the ABI manifest document.
func manifest() []byte {
	m := abi.Manifest{ABI: abi.Version, Name: name, Countdowns: []string{}, Callbacks: []string{}}
	for _, c := range countdowns {
		m.Countdowns = append(m.Countdowns, c.key)
	}
	for _, c := range callbacks {
		m.Callbacks = append(m.Callbacks, c.name)
	}
	m.Filters, m.Transforms = filterEntries(), transformEntries()
	b, _ := json.Marshal(m) // strings and ints only: cannot fail
	return b
}

// recovered turns a panic into an error logged at error level, which the
// host attaches to the failed call.
func recovered(what string, r any) {
	msg := fmt.Sprintf("%s panicked: %v", what, r)
	if s := debug.Stack(); len(s) > 0 {
		Log(LevelDebug, msg+"\n"+string(s))
	}
	Log(LevelError, msg)
}

// countdownAt serves whisperer_countdown.
func countdownAt(idx, retryCount int, kwargs []byte) (secs int64) {
	if idx < 0 || idx >= len(countdowns) {
		Logf(LevelError, "no countdown at index %d", idx)
		return -1
	}
	c := countdowns[idx]
	defer func() {
		if r := recover(); r != nil {
			recovered("countdown "+quote(c.key), r)
			secs = -1
		}
	}()
	kw, err := parseKwargs(kwargs)
	if err != nil {
		Logf(LevelError, "countdown %q: %v", c.key, err)
		return -1
	}
	v := c.fn(retryCount, kw)
	if v < 0 {
		Logf(LevelError, "countdown %q returned %d seconds", c.key, v)
		return -1
	}
	return int64(v)
}

// validateAt serves whisperer_validate: nil means valid as given.
func validateAt(idx int, kwargs []byte) (doc []byte, code int64) {
	if idx < 0 || idx >= len(countdowns) {
		Logf(LevelError, "no countdown at index %d", idx)
		return nil, -1
	}
	c := countdowns[idx]
	defer func() {
		if r := recover(); r != nil {
			recovered("validator of "+quote(c.key), r)
			doc, code = nil, -1
		}
	}()
	return validateKwargs(c.validate, kwargs)
}

// validateKwargs runs v on kwargs: nil means valid as given.
func validateKwargs(v Validator, kwargs []byte) ([]byte, int64) {
	kw, err := parseKwargs(kwargs)
	if err != nil {
		return resultDoc("errors", Errors{"non_field_errors": {
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", jsonKind(kwargs))}})
	}
	if v == nil {
		return nil, 0
	}
	clean, errs := v.Validate(kw)
	if len(errs) > 0 {
		return resultDoc("errors", errs)
	}
	if clean == nil {
		clean = Kwargs{}
	}
	return resultDoc("kwargs", clean)
}

func resultDoc(key string, v any) ([]byte, int64) {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		Logf(LevelError, "encode validate result: %v", err)
		return nil, -1
	}
	return b, 0
}

// callbackAt serves whisperer_callback: it runs callback idx with the
// document doc, which it keeps.
func callbackAt(idx int, doc []byte) int32 {
	return runCallback(idx, func(d *Delivery) error {
		if err := d.decode(doc); err != nil {
			return err
		}
		d.Raw = doc
		return nil
	})
}

// callbackRecordAt runs callback idx with the host's input in: the document
// in[:docLen] and the callback record after it. It copies what it keeps.
func callbackRecordAt(idx int, in []byte, docLen int) int32 {
	return runCallback(idx, func(d *Delivery) error {
		if d.decodeRecord(in, docLen) {
			return nil
		}
		if docLen < 0 || docLen > len(in) {
			return errSyntax
		}
		doc := append([]byte(nil), in[:docLen]...)
		*d = Delivery{Raw: doc}
		return d.decode(doc)
	})
}

// runCallback decodes a Delivery with decode and runs callback idx on it,
// turning a panic or an error into a failure status.
func runCallback(idx int, decode func(d *Delivery) error) (code int32) {
	if idx < 0 || idx >= len(callbacks) {
		Logf(LevelError, "no callback at index %d", idx)
		return 1
	}
	c := callbacks[idx]
	defer func() {
		if r := recover(); r != nil {
			recovered("callback "+quote(c.name), r)
			code = 1
		}
	}()
	d := &Delivery{}
	if err := decode(d); err != nil {
		Logf(LevelError, "callback %q: decode delivery: %v", c.name, err)
		return 1
	}
	if err := c.fn(d); err != nil {
		Logf(LevelError, "callback %q: %v", c.name, err)
		return 1
	}
	return 0
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// errFailed is what the Run helpers return when the function reported an
// error; the reason went to the log.
var errFailed = errors.New("sdk: the function failed; see the log")

// RunCountdown calls the countdown registered under key through the same
// dispatch the wasm export uses, for native tests.
func RunCountdown(key string, retryCount int, kwargs string) (int64, error) {
	for i, c := range countdowns {
		if c.key == key {
			if v := countdownAt(i, retryCount, []byte(kwargs)); v >= 0 {
				return v, nil
			}
			return -1, errFailed
		}
	}
	return -1, fmt.Errorf("sdk: no countdown %q", key)
}

// RunValidate validates kwargs with the validator of the countdown under key,
// as the host would: it returns the cleaned kwargs JSON, or field errors.
func RunValidate(key, kwargs string) (clean string, errs Errors, err error) {
	for i, c := range countdowns {
		if c.key == key {
			return runValidateDoc(validateAt(i, []byte(kwargs)))(kwargs)
		}
	}
	return "", nil, fmt.Errorf("sdk: no countdown %q", key)
}

// runValidateDoc reads a validator's answer as the host does, for the Run
// helpers; the returned function takes the kwargs that were validated.
func runValidateDoc(doc []byte, code int64) func(kwargs string) (string, Errors, error) {
	return func(kwargs string) (string, Errors, error) {
		switch {
		case code < 0:
			return "", nil, errFailed
		case doc == nil:
			return kwargs, nil, nil
		}
		var res struct {
			Kwargs json.RawMessage `json:"kwargs"`
			Errors Errors          `json:"errors"`
		}
		if err := json.Unmarshal(doc, &res); err != nil {
			return "", nil, err
		}
		return string(res.Kwargs), res.Errors, nil
	}
}

// RunCallback calls the callback registered under name with a delivery
// document (the JSON of a Delivery), for native tests.
func RunCallback(name string, doc []byte) error {
	for i, c := range callbacks {
		if c.name == name {
			if callbackAt(i, doc) != 0 {
				return errFailed
			}
			return nil
		}
	}
	return fmt.Errorf("sdk: no callback %q", name)
}

func jsonKind(b []byte) string {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "" || s == "null":
		return "NoneType"
	case s[0] == '"':
		return "str"
	case s[0] == '[':
		return "list"
	case s == "true" || s == "false":
		return "bool"
	case strings.ContainsAny(s, ".eE"):
		return "float"
	default:
		return "int"
	}
}
