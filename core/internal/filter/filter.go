// Package filter is a hook's declarative event filter: a JSON document
// matched against an event {"event_type": ..., "payload": ...}, parsed and
// validated once (at hook save, and when the store first meets a hook's
// filter) into a tree of closures that fan-out evaluates per event.
//
// The syntax follows Hookdeck Outpost's destination filters where Outpost
// has an answer (docs/API.md, "Filters", is the reference):
//
//	{"payload.status": "paid", "payload.amount": {"$gte": 100}}
//
// Keys are dotted paths from the event's root, whose first segment is
// event_type or payload; a numeric segment indexes an array
// (payload.items.0.sku). A bare value means $eq; an object of several keys
// means AND; an object whose keys hold no "$" is a nested path
// ({"payload": {"status": "paid"}} is payload.status). Operators: $eq
// $neq $in $nin $gt $gte $lt $lte $exists (also Outpost's $exist)
// $startsWith $endsWith, and $and $or $not.
//
// Arrays in the event: a condition on a field holding an array matches
// when any element matches ({"payload.tags": "urgent"} matches
// ["urgent", "x"]), except $eq with an array literal, which compares whole
// arrays; $neq and $nin are the negations ("no element equals").
//
// Type rules: $gt $gte $lt $lte take a number (any other operand, a
// string included, is an *Error) and compare it with numbers; a field of
// another type does not match. A missing field matches only $neq, $nin and
// {"$exists": false}.
//
// A document with a "plugin" key is a plugin filter instead,
// {"plugin": "name", "kwargs": {...}} (plugin.go): a function a plugin
// registers, which fan-out calls with the kwargs and the event.
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Bounds of a filter document; each violation is an *Error naming where.
const (
	MaxBytes    = 16 << 10 // compact JSON
	MaxDepth    = 8        // nesting of the document
	MaxSegments = 16       // per path
	MaxList     = 256      // elements of $in, $nin, $and, $or
	MaxNodes    = 256      // conditions and combinators in all
)

// Error is a filter that cannot be used, in words for the API's
// {"filter": [msg]}.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errf(format string, args ...any) *Error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Filter is a compiled filter; safe for concurrent use.
type Filter struct {
	root *node  // nil for a plugin filter
	src  []byte // compact JSON as given
	// plugin and kwargs name a plugin filter (plugin.go); "" otherwise.
	plugin string
	kwargs json.RawMessage
}

// Event is what a filter matches: an event type and its payload, read
// where filters look (scan.go). Make one per event and match every hook's
// filter against it: each path is looked up once. Not safe for
// concurrent use.
type Event struct {
	Type    string
	payload []byte
	memo    []resolved // paths looked up so far; few per event
	inline  [8]resolved
}

type resolved struct {
	name string
	v    any
	ok   bool
}

// NewEvent returns payload (JSON; empty means null) ready for matching.
func NewEvent(eventType string, payload []byte) (Event, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("null")
	} else if !json.Valid(payload) {
		return Event{}, errors.New("filter: the payload is not JSON")
	}
	return Event{Type: eventType, payload: payload}, nil
}

// TrustedEvent is NewEvent for a payload already known to be valid JSON
// (the store's, compacted at publish): it skips the validation pass.
func TrustedEvent(eventType string, payload []byte) Event {
	return Event{Type: eventType, payload: payload}
}

// Parse checks raw against the bounds and the syntax and compiles it.
func Parse(raw []byte) (*Filter, error) {
	var compact bytes.Buffer
	if len(raw) > 4*MaxBytes {
		return nil, errf("Ensure this value has no more than %d bytes as compact JSON.", MaxBytes)
	}
	if err := json.Compact(&compact, raw); err != nil {
		return nil, errf("Not valid JSON: %v.", err)
	}
	if compact.Len() > MaxBytes {
		return nil, errf("Ensure this value has no more than %d bytes as compact JSON (it has %d).", MaxBytes, compact.Len())
	}
	if _, d := webhook.JSONShape(compact.Bytes()); d > MaxDepth {
		return nil, errf("Ensure this value is nested no more than %d levels deep (it has %d).", MaxDepth, d)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(compact.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, errf("Not valid JSON: %v.", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errf("A filter must be a JSON object, got %s.", kind(doc))
	}
	if _, ok := obj["plugin"]; ok {
		return parsePlugin(obj, compact.Bytes())
	}
	c := &compiler{}
	root, err := c.object(obj, nil, "")
	if err != nil {
		return nil, err
	}
	return &Filter{root: root, src: compact.Bytes()}, nil
}

// JSON returns the filter as stored: the compact form of what was parsed.
func (f *Filter) JSON() json.RawMessage { return f.src }

// Match reports whether ev passes f.
// A plugin filter passes every event here: fan-out calls its plugin.
func (f *Filter) Match(ev *Event) bool { return f.root == nil || f.root.eval(ev) }

// Explain is Match with the reason: when ev does not pass, the condition
// that failed it, as JSON text ({"payload.amount": {"$gte": 100}}).
func (f *Filter) Explain(ev *Event) (bool, string) {
	if f.Match(ev) {
		return true, ""
	}
	return false, f.root.failed(ev)
}

type nodeKind uint8

const (
	leaf nodeKind = iota
	and
	or
	not
)

// node is one condition or combinator. Leaves hold their test as a
// closure over the resolved literal; combinators switch on kind.
type node struct {
	kind nodeKind
	kids []*node
	test func(*Event) bool
	desc string // the condition as JSON, for Explain
}

func (n *node) eval(ev *Event) bool {
	switch n.kind {
	case and:
		for _, k := range n.kids {
			if !k.eval(ev) {
				return false
			}
		}
		return true
	case or:
		for _, k := range n.kids {
			if k.eval(ev) {
				return true
			}
		}
		return false
	case not:
		return !n.kids[0].eval(ev)
	}
	return n.test(ev)
}

// failed names the condition that makes n fail for ev (n.eval(ev) is
// false): the first failing child of an AND, else n itself.
func (n *node) failed(ev *Event) string {
	if n.kind == and {
		for _, k := range n.kids {
			if !k.eval(ev) {
				return k.failed(ev)
			}
		}
	}
	return n.desc
}

type compiler struct{ nodes int }

func (c *compiler) count(where string) error {
	c.nodes++
	if c.nodes > MaxNodes {
		return errf("%sEnsure this filter has no more than %d conditions.", prefix(where), MaxNodes)
	}
	return nil
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return clip(where) + ": "
}

// object compiles a document object: its keys are paths or $and $or $not.
// base is the path an Outpost-style nested object sits under.
func (c *compiler) object(obj map[string]any, base []string, where string) (*node, error) {
	if err := c.count(where); err != nil {
		return nil, err
	}
	n := &node{kind: and, desc: describe(obj, base)}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		var kid *node
		var err error
		switch {
		case k == "$and" || k == "$or":
			kid, err = c.list(k, v, base, join(where, k))
		case k == "$not":
			kid, err = c.negation(v, base, join(where, k))
		case strings.HasPrefix(k, "$"):
			err = errf("%sUnknown operator %q here: a filter's keys are paths or $and, $or, $not.", prefix(where), clip(k))
		default:
			kid, err = c.field(k, v, base)
		}
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, kid)
	}
	if len(n.kids) == 1 {
		return n.kids[0], nil
	}
	return n, nil
}

func (c *compiler) list(op string, v any, base []string, where string) (*node, error) {
	items, ok := v.([]any)
	if !ok || len(items) == 0 {
		return nil, errf("%s: %s expects a non-empty list of filters, got %s.", clip(where), op, kind(v))
	}
	if len(items) > MaxList {
		return nil, errf("%s: Ensure %s has no more than %d elements (it has %d).", clip(where), op, MaxList, len(items))
	}
	if err := c.count(where); err != nil {
		return nil, err
	}
	n := &node{kind: and, desc: describe(map[string]any{op: v}, base)}
	if op == "$or" {
		n.kind = or
	}
	for i, it := range items {
		w := join(where, strconv.Itoa(i))
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, errf("%s: %s expects filters (objects), got %s.", clip(w), op, kind(it))
		}
		kid, err := c.object(obj, base, w)
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, kid)
	}
	return n, nil
}

func (c *compiler) negation(v any, base []string, where string) (*node, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errf("%s: $not expects a filter (an object), got %s.", clip(where), kind(v))
	}
	if err := c.count(where); err != nil {
		return nil, err
	}
	kid, err := c.object(obj, base, where)
	if err != nil {
		return nil, err
	}
	return &node{kind: not, kids: []*node{kid}, desc: describe(map[string]any{"$not": v}, base)}, nil
}

// field compiles key: v, where key is a dotted path (under base).
func (c *compiler) field(key string, v any, base []string) (*node, error) {
	segs := append(append([]string(nil), base...), strings.Split(key, ".")...)
	name := strings.Join(segs, ".")
	if len(segs) > MaxSegments {
		return nil, errf("%s: Ensure a path has no more than %d segments (it has %d).", clip(name), MaxSegments, len(segs))
	}
	for _, s := range segs {
		if s == "" {
			return nil, errf("%s: A path has no empty segments.", clip(name))
		}
	}
	if segs[0] != "event_type" && segs[0] != "payload" {
		return nil, errf("%s: A path starts with event_type or payload.", clip(name))
	}
	p := compilePath(segs)
	obj, isObj := v.(map[string]any)
	if !isObj {
		return c.op("$eq", v, p, name)
	}
	ops, paths := 0, 0
	for k := range obj {
		if strings.HasPrefix(k, "$") {
			ops++
		} else {
			paths++
		}
	}
	switch {
	case ops == 0 && paths == 0:
		return nil, errf("%s: An empty object is no condition; to compare with {} write {\"$eq\": {}}.", clip(name))
	case ops > 0 && paths > 0:
		return nil, errf("%s: Mix of operators and fields; use one or the other (fields as a nested path, or {\"$eq\": {...}}).", clip(name))
	case paths > 0:
		return c.object(obj, segs, name)
	}
	if err := c.count(name); err != nil {
		return nil, err
	}
	n := &node{kind: and, desc: describe(map[string]any{name: v}, nil)}
	for _, k := range sortedKeys(obj) {
		kid, err := c.op(k, obj[k], p, name)
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, kid)
	}
	if len(n.kids) == 1 {
		return n.kids[0], nil
	}
	return n, nil
}

// clip shortens a hostile path for an error message, at a character's
// boundary.
func clip(s string) string {
	if len(s) <= 200 {
		return s
	}
	n := 200
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func join(where, k string) string {
	if where == "" {
		return k
	}
	return where + "." + k
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// insertion sort: objects are small, and this keeps sort out of the
	// import list for one call site
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// describe renders a condition for Explain.
func describe(v any, base []string) string {
	if len(base) > 0 {
		v = map[string]any{strings.Join(base, "."): v}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// kind names a decoded JSON value's type for messages.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
