package filter

import (
	"encoding/json"
	"strconv"
	"strings"
)

// path is a compiled path: the root (event_type or payload) and the
// segments below it, each a key and, when numeric, an array index.
type path struct {
	name      string // as written, the key of Event's memo
	eventType bool
	segs      []seg
}

type seg struct {
	key string
	idx int // -1 when key is not an index
}

func compilePath(segs []string) path {
	p := path{name: strings.Join(segs, "."), eventType: segs[0] == "event_type"}
	for _, s := range segs[1:] {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || strconv.Itoa(i) != s {
			i = -1
		}
		p.segs = append(p.segs, seg{key: s, idx: i})
	}
	return p
}

// resolve returns the value at p in ev and whether it is there.
func (p *path) resolve(ev *Event) (any, bool) {
	if p.eventType {
		if len(p.segs) > 0 {
			return nil, false
		}
		return ev.Type, true
	}
	for i := range ev.memo {
		if ev.memo[i].name == p.name {
			return ev.memo[i].v, ev.memo[i].ok
		}
	}
	r := resolved{name: p.name}
	if raw, ok := lookup(ev.payload, p.segs); ok {
		r.v, r.ok = decode(raw)
	}
	if ev.memo == nil {
		ev.memo = ev.inline[:0]
	}
	if len(ev.memo) < 64 { // past that, look up again rather than grow
		ev.memo = append(ev.memo, r)
	}
	return r.v, r.ok
}

// op compiles one operator applied at p (name is p as written).
func (c *compiler) op(op string, lit any, p path, name string) (*node, error) {
	if err := c.count(name); err != nil {
		return nil, err
	}
	n := &node{desc: describe(map[string]any{name: map[string]any{op: lit}}, nil)}
	lit = normalize(lit)
	switch op {
	case "$eq", "$neq":
		eq := equals(lit)
		n.test = func(ev *Event) bool {
			v, ok := p.resolve(ev)
			return ok && eq(v)
		}
		if op == "$neq" {
			n.test = negate(n.test)
		}
	case "$in", "$nin":
		var in func(any) bool
		switch l := lit.(type) {
		case []any:
			if len(l) > MaxList {
				return nil, errf("%s: Ensure %s has no more than %d elements (it has %d).", clip(name), op, MaxList, len(l))
			}
			in = member(l)
		case string:
			// Outpost: a string operand is a substring match.
			in = anyElem(func(v any) bool { s, ok := v.(string); return ok && strings.Contains(s, l) })
		default:
			return nil, errf("%s: %s expects a list (or a string, for a substring), got %s.", clip(name), op, kind(lit))
		}
		n.test = func(ev *Event) bool {
			v, ok := p.resolve(ev)
			return ok && in(v)
		}
		if op == "$nin" {
			n.test = negate(n.test)
		}
	case "$gt", "$gte", "$lt", "$lte":
		cmp, err := ordered(op, lit)
		if err != nil {
			return nil, errf("%s: %s", clip(name), err.Msg)
		}
		test := anyElem(cmp)
		n.test = func(ev *Event) bool {
			v, ok := p.resolve(ev)
			return ok && test(v)
		}
	case "$exists", "$exist":
		want, ok := lit.(bool)
		if !ok {
			return nil, errf("%s: %s expects true or false, got %s.", clip(name), op, kind(lit))
		}
		n.test = func(ev *Event) bool {
			_, ok := p.resolve(ev)
			return ok == want
		}
	case "$startsWith", "$endsWith":
		s, ok := lit.(string)
		if !ok {
			return nil, errf("%s: %s expects a string, got %s.", clip(name), op, kind(lit))
		}
		has := strings.HasPrefix
		if op == "$endsWith" {
			has = strings.HasSuffix
		}
		test := anyElem(func(v any) bool { t, ok := v.(string); return ok && has(t, s) })
		n.test = func(ev *Event) bool {
			v, ok := p.resolve(ev)
			return ok && test(v)
		}
	case "$and", "$or", "$not":
		return nil, errf("%s: %s combines filters; write it at the top of one, e.g. {\"%s\": [...]}.", clip(name), op, op)
	default:
		return nil, errf("%s: Unknown operator %q.", clip(name), clip(op))
	}
	return n, nil
}

func negate(f func(*Event) bool) func(*Event) bool {
	return func(ev *Event) bool { return !f(ev) }
}

// anyElem lifts a test on a value to one that also passes an array with
// any element that passes.
func anyElem(test func(any) bool) func(any) bool {
	return func(v any) bool {
		if a, ok := v.([]any); ok {
			for _, e := range a {
				if test(e) {
					return true
				}
			}
			return false
		}
		return test(v)
	}
}

// equals is $eq against lit: deep equality, and for a scalar literal also
// an array holding it.
func equals(lit any) func(any) bool {
	switch l := lit.(type) {
	case string:
		return anyElem(func(v any) bool { s, ok := v.(string); return ok && s == l })
	case float64:
		return anyElem(func(v any) bool { f, ok := v.(float64); return ok && f == l })
	case bool:
		return anyElem(func(v any) bool { b, ok := v.(bool); return ok && b == l })
	case nil:
		return anyElem(func(v any) bool { return v == nil })
	case map[string]any:
		return anyElem(func(v any) bool { return deepEqual(v, l) })
	}
	return func(v any) bool { return deepEqual(v, lit) } // an array: whole
}

// member is $in against list: the value, or any element of it, equals an
// element of list.
func member(list []any) func(any) bool {
	strs := map[string]struct{}{}
	nums := map[float64]struct{}{}
	var others []any
	for _, e := range list {
		switch e := e.(type) {
		case string:
			strs[e] = struct{}{}
		case float64:
			nums[e] = struct{}{}
		default:
			others = append(others, e)
		}
	}
	return anyElem(func(v any) bool {
		switch v := v.(type) {
		case string:
			_, ok := strs[v]
			return ok
		case float64:
			_, ok := nums[v]
			return ok
		}
		for _, o := range others {
			if deepEqual(v, o) {
				return true
			}
		}
		return false
	})
}

// ordered compiles $gt and friends: they compare numbers only (issue 13:
// "$gt on a string" is a type mismatch, a 400); other literals are
// refused.
func ordered(op string, lit any) (func(any) bool, *Error) {
	var pass func(c int) bool
	switch op {
	case "$gt":
		pass = func(c int) bool { return c > 0 }
	case "$gte":
		pass = func(c int) bool { return c >= 0 }
	case "$lt":
		pass = func(c int) bool { return c < 0 }
	default:
		pass = func(c int) bool { return c <= 0 }
	}
	switch l := lit.(type) {
	case float64:
		return func(v any) bool {
			f, ok := v.(float64)
			if !ok {
				return false
			}
			switch {
			case f > l:
				return pass(1)
			case f < l:
				return pass(-1)
			}
			return pass(0)
		}, nil
	}
	return nil, errf("%s expects a number, got %s.", op, kind(lit))
}

// normalize turns the parser's json.Number into float64, as payloads
// decode.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func deepEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok || !deepEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !deepEqual(a[i], ba[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}
