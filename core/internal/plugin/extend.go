package plugin

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tetratelabs/wazero/api"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
)

// Filters and transforms (sdk/ABI.md §6): one input each, the kwargs
// followed by a JSON document (and, for a transform, the raw body), so the
// guest needs one buffer and no second copy. Payload is always the
// document's last member: a guest may take it without walking it.

// inputBuf is a pooled buffer a filter or transform input is built in.
type inputBuf struct {
	b  []byte
	ms []member
}

var inputs = sync.Pool{New: func() any { return new(inputBuf) }}

func (in *inputBuf) release() {
	if cap(in.b) <= maxPooledBuffer && cap(in.ms) <= maxPooledBuffer/16 {
		inputs.Put(in)
	}
}

// index appends the member index of kwargs (at 0) and of the payload (at
// payloadOff) to in.b.
func (in *inputBuf) index(kwargs json.RawMessage, payloadOff, payloadLen int) {
	in.ms = members(in.ms[:0], kwargs, 0)
	nk := len(in.ms)
	in.ms = members(in.ms, in.b[payloadOff:payloadOff+payloadLen], payloadOff)
	in.b = appendIndex(in.b, in.ms, nk)
}

// kwargsOr is kwargs, or {} when there are none.
func kwargsOr(kwargs json.RawMessage) json.RawMessage {
	if len(kwargs) == 0 {
		return json.RawMessage(`{}`)
	}
	return kwargs
}

// rawOr is v, or null when empty.
func rawOr(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage(`null`)
	}
	return v
}

// filter calls whisperer_filter: whether the event goes to the hook. what
// names the entry in errors (registrations builds it once).
func (v *version) filter(ctx context.Context, idx int, what string, kwargs json.RawMessage, eventType string, payload json.RawMessage) (bool, error) {
	buf := inputs.Get().(*inputBuf)
	defer buf.release()
	kwargs, payload = kwargsOr(kwargs), rawOr(payload)
	b := append(buf.b[:0], kwargs...)
	b = append(b, `{"event_type":`...)
	b, _ = appendString(b, eventType)
	b = append(b, `,"payload":`...)
	payloadOff := len(b)
	b = append(b, payload...)
	b = append(b, '}')
	evLen := len(b) - len(kwargs)
	buf.b = b
	buf.index(kwargs, payloadOff, len(payload))
	b = buf.b
	deliver := false
	err := v.call(ctx, v.gate.calls, what, v.cfg.CallTimeout, func(ctx context.Context, inst *instance) error {
		ptr, err := inst.input(ctx, b, v.cfg.maxInput())
		if err != nil {
			return err
		}
		s := inst.stack[:]
		s[0], s[1], s[2], s[3], s[4] = uint64(idx), uint64(ptr), uint64(len(kwargs)), uint64(evLen), uint64(len(b)-len(kwargs)-evLen)
		if err := inst.filter.CallWithStack(ctx, s); err != nil {
			return err
		}
		switch code := int32(s[0]); code {
		case abi.FilterDeliver:
			deliver = true
		case abi.FilterSkip:
		default:
			return fmt.Errorf("returned %d: %w", code, ErrFailed)
		}
		return nil
	})
	return deliver, err
}

// transform calls whisperer_transform with the kwargs, the transform
// document and the body; what names the entry, as for filter.
func (v *version) transform(ctx context.Context, idx int, what string, kwargs json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
	if in == nil {
		return webhook.TransformResult{}, fmt.Errorf("plugin %s: %s: no input", v.file, what)
	}
	buf := inputs.Get().(*inputBuf)
	defer buf.release()
	kwargs = kwargsOr(kwargs)
	b := append(buf.b[:0], kwargs...)
	var doc transformDoc
	b = doc.append(b, in)
	docLen := len(b) - len(kwargs)
	b = append(b, in.Body...)
	buf.b = b
	buf.index(kwargs, int(doc.spans[abi.TSpanPayload].off), len(rawOr(in.Payload)))
	b = buf.b
	indexLen := len(b) - len(kwargs) - docLen - len(in.Body)
	// The record, for a module that reads it, unless it alone would push
	// the input over the limit (the module then parses the document).
	recLen := 0
	if v.trRecord {
		withRec := doc.record(b, in)
		if len(withRec) <= v.cfg.maxInput() {
			b, recLen = withRec, len(withRec)-len(b)
		}
		buf.b = withRec
	}
	var res webhook.TransformResult
	err := v.call(ctx, v.gate.calls, what, v.cfg.CallTimeout, func(ctx context.Context, inst *instance) error {
		ptr, err := inst.input(ctx, b, v.cfg.maxInput())
		if err != nil {
			return err
		}
		s, fn := inst.stack[:6], inst.transform
		if recLen > 0 {
			s, fn = inst.stack[:7], inst.transformRecord
			s[6] = uint64(recLen)
		}
		s[0], s[1], s[2], s[3], s[4], s[5] = uint64(idx), uint64(ptr), uint64(len(kwargs)), uint64(docLen), uint64(len(in.Body)), uint64(indexLen)
		if err := fn.CallWithStack(ctx, s); err != nil {
			return err
		}
		switch packed := int64(s[0]); {
		case packed < 0:
			return fmt.Errorf("returned %d: %w", packed, ErrFailed)
		case packed == 0:
			return nil
		}
		// Read in place: parseTransform copies what it keeps.
		doc, err := inst.view(s[0], abi.MaxTransformBytes)
		if err != nil {
			return err
		}
		res, err = parseTransform(doc)
		return err
	})
	return res, err
}

// transformDoc is where the transform document's values landed in the
// input (abi.TSpan*), for the member index and the transform record.
type transformDoc struct {
	spans [abi.TSpanCount]span
}

// append writes the transform document: the event, the attempt and the
// request, payload last.
func (d *transformDoc) append(b []byte, in *webhook.TransformInput) []byte {
	b = append(b, `{"event_type":`...)
	b, d.spans[abi.TSpanEventType] = appendString(b, in.EventType)
	b = append(b, `,"uuid":`...)
	b, d.spans[abi.TSpanUUID] = appendString(b, in.UUID)
	b = append(b, `,"hook_id":`...)
	b = strconv.AppendInt(b, in.HookID, 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(in.RetryCount), 10)
	b = append(b, `,"url":`...)
	b, d.spans[abi.TSpanURL] = appendString(b, in.URL)
	b = append(b, `,"headers":`...)
	headers := len(b)
	b = append(b, '{')
	var arr [16][2]string // most requests have a few headers: no allocation
	hs := arr[:0]
	for name, value := range in.Headers {
		hs = append(hs, [2]string{name, value})
	}
	sortHeaders(hs)
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = appendString(b, h[0])
		b = append(b, ':')
		b, _ = appendString(b, h[1])
	}
	b = append(b, '}')
	d.spans[abi.TSpanHeaders] = span{off: uint32(headers), n: uint32(len(b) - headers)}
	b = append(b, `,"payload":`...)
	payload := rawOr(in.Payload)
	d.spans[abi.TSpanPayload] = span{off: uint32(len(b)), n: uint32(len(payload))}
	b = append(b, payload...)
	return append(b, '}')
}

// sortHeaders sorts name-value pairs by name (each name once: they come
// from a map). A request's few headers are sorted in place by insertion,
// without slices.SortFunc's call per comparison.
func sortHeaders(hs [][2]string) {
	if len(hs) > 16 {
		slices.SortFunc(hs, func(x, y [2]string) int { return strings.Compare(x[0], y[0]) })
		return
	}
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j][0] < hs[j-1][0]; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// record appends the transform record (sdk/ABI.md §6) to the input b.
func (d *transformDoc) record(b []byte, in *webhook.TransformInput) []byte {
	le := binary.LittleEndian
	base := len(b)
	b = slices.Grow(b, abi.TRecData)[:base+abi.TRecData]
	rec := b[base:]
	clear(rec)
	le.PutUint32(rec[abi.TRecVersion:], abi.TransformRecordVersion)
	le.PutUint64(rec[abi.TRecHookID:], uint64(in.HookID))
	le.PutUint64(rec[abi.TRecRetryCount:], uint64(in.RetryCount))
	// Strings the document holds escaped follow, in the order of their
	// spans.
	tail := uint32(len(b))
	for i, s := range d.spans {
		if s.inTail {
			s.off, s.n = tail, uint32(len(s.tail))
			tail += s.n
		}
		le.PutUint32(rec[abi.TRecSpans+i*abi.SpanBytes:], s.off)
		le.PutUint32(rec[abi.TRecSpans+i*abi.SpanBytes+4:], s.n)
	}
	for i := range d.spans {
		if d.spans[i].inTail {
			b = append(b, d.spans[i].tail...)
		}
	}
	return b
}

// parseTransform decodes a transform result document: {"body": string or
// any JSON value, "headers": {name: string}, "cancel": bool}, each optional,
// names matched exactly. Header names and values are checked for HTTP
// syntax here; which names a transform may set is the caller's rule
// (core/internal/transform). It runs on every transformed attempt, so it
// reads the document in place (the guest's memory), checked as json.Valid
// would and split into its members in one pass, rather than through
// encoding/json's reflection, and copies only what it keeps: the result
// holds no part of doc.
func parseTransform(doc []byte) (webhook.TransformResult, error) {
	var res webhook.TransformResult
	var arr [8]member
	ms, ok := validObject(arr[:0], doc)
	if !ok {
		return res, fmt.Errorf("result document is not a valid JSON object: %w", ErrFailed)
	}
	var body []byte // the last "body" member's value
	for _, m := range ms {
		val := doc[m.valOff : m.valOff+m.valLen : m.valOff+m.valLen]
		switch resultMember(doc[m.keyOff : m.keyOff+m.keyLen]) {
		case "body":
			body = val
		case "cancel":
			switch string(val) {
			case "true":
				res.Cancel = true
			case "false", "null":
				res.Cancel = false
			default:
				return webhook.TransformResult{}, fmt.Errorf("result cancel is not a boolean: %w", ErrFailed)
			}
		case "headers":
			if err := parseHeaders(&res, val); err != nil {
				return webhook.TransformResult{}, err
			}
		}
	}
	switch {
	case body == nil, string(body) == "null":
	case body[0] == '"':
		if raw := body[1 : len(body)-1]; asIs(raw) {
			res.Body = bytes.Clone(raw)
		} else {
			res.Body = []byte(jsonString(body))
		}
	default:
		res.Body = bytes.Clone(body)
	}
	return res, nil
}

// parseHeaders adds the result's headers object val (or null) to res.
func parseHeaders(res *webhook.TransformResult, val []byte) error {
	if string(val) == "null" {
		return nil
	}
	if val[0] != '{' {
		return fmt.Errorf("result headers is not an object: %w", ErrFailed)
	}
	var arr [8]member
	hs := members(arr[:0], val, 0)
	if len(hs) > 0 && res.Headers == nil {
		res.Headers = make(map[string]string, len(hs))
	}
	for _, h := range hs {
		rawName, hv := val[h.keyOff:h.keyOff+h.keyLen], val[h.valOff:h.valOff+h.valLen]
		var name, value string
		if len(hv) >= 2 && hv[0] == '"' && asIs(rawName) && asIs(hv[1:len(hv)-1]) {
			// The usual header: both in one allocation.
			var nv strings.Builder
			nv.Grow(len(rawName) + len(hv) - 2)
			nv.Write(rawName)
			nv.Write(hv[1 : len(hv)-1])
			name, value = nv.String()[:len(rawName)], nv.String()[len(rawName):]
		} else {
			name = jsonName(rawName)
			if hv[0] != '"' {
				return fmt.Errorf("result header %q is not a string: %w", name, ErrFailed)
			}
			value = jsonString(hv)
		}
		if !webhook.ValidHeaderName(name) {
			return fmt.Errorf("result header name %q is not an HTTP token: %w", name, ErrFailed)
		}
		if !validHeaderValue(value) {
			return fmt.Errorf("result header %q has a control character in its value: %w", name, ErrFailed)
		}
		res.Headers[name] = value
	}
	return nil
}

// resultMember is the name of a result document's member, written raw
// between its quotes, when it is one parseTransform reads; it allocates
// only for a name written with escapes.
func resultMember(raw []byte) string {
	// Written without escapes, a name is its bytes (invalid UTF-8 decodes
	// to U+FFFD, which none of these names holds).
	switch string(raw) {
	case "body":
		return "body"
	case "cancel":
		return "cancel"
	case "headers":
		return "headers"
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		return jsonName(raw)
	}
	return ""
}

// asIs reports whether raw, a JSON string's content as written between its
// quotes, decodes to itself: no escape, valid UTF-8. A short ASCII one, as
// header names and values are, is looked at byte by byte, without two
// calls.
func asIs(raw []byte) bool {
	if len(raw) <= 32 {
		for _, c := range raw {
			if c == '\\' || c >= utf8.RuneSelf {
				return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
			}
		}
		return true
	}
	return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
}

// jsonName is a member name as written between its quotes, decoded.
func jsonName(raw []byte) string {
	if asIs(raw) {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	return jsonString(append(append(append(q, '"'), raw...), '"'))
}

// jsonString decodes the JSON string literal q, which validObject passed:
// plain valid UTF-8 is its content as is; anything else goes through
// encoding/json (escapes; invalid UTF-8 becomes U+FFFD).
func jsonString(q []byte) string {
	if raw := q[1 : len(q)-1]; asIs(raw) {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(q, &s) // valid JSON: cannot fail
	return s
}

// validHeaderValue reports whether s can be sent as a header value: valid
// UTF-8 without control characters other than tab.
func validHeaderValue(s string) bool {
	var high byte // all bytes or'ed: ASCII is valid UTF-8
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
		high |= c
	}
	return high < utf8.RuneSelf || utf8.ValidString(s)
}

// validateFilter and validateTransform call the entry's validator export.
func (v *version) validateFilter(ctx context.Context, idx int, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
	return v.runValidate(ctx, "validator of filter "+strconv.Quote(v.manifest.Filters[idx].Name), idx, kwargs,
		func(inst *instance) api.Function { return inst.filterValidate })
}

func (v *version) validateTransform(ctx context.Context, idx int, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
	return v.runValidate(ctx, "validator of transform "+strconv.Quote(v.manifest.Transforms[idx].Name), idx, kwargs,
		func(inst *instance) api.Function { return inst.transformValidate })
}

// registrations builds the file's filters and transforms.
func (v *version) registrations() (map[string]webhook.Filter, map[string]webhook.Transform) {
	fs := make(map[string]webhook.Filter, len(v.manifest.Filters))
	for i, e := range v.manifest.Filters {
		what := "filter " + strconv.Quote(e.Name) // named once, as in register
		f := webhook.Filter{Match: func(ctx context.Context, kwargs json.RawMessage, eventType string, payload json.RawMessage) (bool, error) {
			return v.filter(ctx, i, what, kwargs, eventType, payload)
		}}
		if e.Validator {
			f.Validate = func(ctx context.Context, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
				return v.validateFilter(ctx, i, kwargs)
			}
		}
		fs[e.Name] = f
	}
	ts := make(map[string]webhook.Transform, len(v.manifest.Transforms))
	for i, e := range v.manifest.Transforms {
		what := "transform " + strconv.Quote(e.Name)
		t := webhook.Transform{Apply: func(ctx context.Context, kwargs json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
			return v.transform(ctx, i, what, kwargs, in)
		}}
		if e.Validator {
			t.Validate = func(ctx context.Context, kwargs json.RawMessage) (json.RawMessage, map[string]any, error) {
				return v.validateTransform(ctx, i, kwargs)
			}
		}
		ts[e.Name] = t
	}
	return fs, ts
}

// probeEntries calls each filter and transform validator once with {},
// as probe does for countdowns.
func (v *version) probeEntries(ctx context.Context) error {
	for i, e := range v.manifest.Filters {
		if !e.Validator {
			continue
		}
		if _, _, err := v.validateFilter(ctx, i, json.RawMessage(`{}`)); err != nil {
			return fmt.Errorf("manifest declares filter %q (index %d) with a validator but it fails: %w", e.Name, i, err)
		}
	}
	for i, e := range v.manifest.Transforms {
		if !e.Validator {
			continue
		}
		if _, _, err := v.validateTransform(ctx, i, json.RawMessage(`{}`)); err != nil {
			return fmt.Errorf("manifest declares transform %q (index %d) with a validator but it fails: %w", e.Name, i, err)
		}
	}
	return nil
}

// member is one top-level member of a JSON object: the spans of its name
// (between the quotes, as written) and of its raw value.
type member struct{ keyOff, keyLen, valOff, valLen uint32 }

// members appends the top-level members of the JSON object v, which
// starts at off in the input, to ms. A value that is not an object, or
// not valid JSON, has none: the guest sees what the host could not read
// as an empty table rather than half of one.
func members(ms []member, v []byte, off int) []member {
	n := len(ms)
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '{' {
		return ms
	}
	i = skipWS(v, i+1)
	if i < len(v) && v[i] == '}' {
		return ms
	}
	// Compact JSON is looked at first: the colon right after the name, the
	// value right after the colon, the comma right after the value.
	for i < len(v) && v[i] == '"' {
		ks := i + 1
		ke := shortStringEnd(v, ks)
		if ke < 0 {
			if ke = scanString(v, ks); ke < 0 {
				break
			}
		}
		if i = ke + 1; i < len(v) && v[i] != ':' {
			i = skipWS(v, i)
		}
		if i >= len(v) || v[i] != ':' {
			break
		}
		vs := i + 1
		if vs < len(v) && v[vs] <= ' ' {
			vs = skipWS(v, vs)
		}
		if vs >= len(v) {
			break
		}
		// The value's end: it checks the nesting and the strings, not every
		// token (the index only needs the values' bounds).
		ve := vs
		switch v[vs] {
		case '"':
			if ve = shortStringEnd(v, vs+1); ve < 0 {
				if ve = scanString(v, vs+1); ve < 0 {
					return ms[:n]
				}
			}
			ve++
		case '{', '[':
			if ve = skipContainer(v, vs+1); ve < 0 {
				return ms[:n]
			}
		case '}', ']':
			return ms[:n]
		default:
			for ve < len(v) && v[ve] != ',' && v[ve] != '}' && v[ve] != ']' && v[ve] > ' ' {
				ve++
			}
			if ve == vs {
				return ms[:n]
			}
		}
		ms = append(ms, member{uint32(off + ks), uint32(ke - ks), uint32(off + vs), uint32(ve - vs)})
		if i = ve; i < len(v) && v[i] <= ' ' {
			i = skipWS(v, i)
		}
		if i >= len(v) {
			break
		}
		if v[i] == '}' {
			return ms
		}
		if v[i] != ',' {
			break
		}
		if i++; i < len(v) && v[i] <= ' ' {
			i = skipWS(v, i)
		}
	}
	return ms[:n]
}

// shortStringEnd is the index of the quote closing the JSON string whose
// content starts at v[j] when it is within eight bytes and no backslash
// comes before it, as for most strings (names above all); else -1, and
// scanString finds it. Small enough to be inlined: Go saves no register
// across a call, and a call per name cost more than the name.
func shortStringEnd(v []byte, j int) int {
	if j+8 <= len(v) {
		if m := quoteOrBackslash(binary.LittleEndian.Uint64(v[j:])); m != 0 {
			if k := j + bits.TrailingZeros64(m)/8; v[k] == '"' {
				return k
			}
		}
	}
	return -1
}

func skipWS(v []byte, i int) int {
	for i < len(v) && v[i] <= ' ' && jsonSpace[v[i]] {
		i++
	}
	return i
}

// skipContainer returns the index after the bracket closing the object or
// array whose content starts at v[i], or -1. Any closing bracket closes
// (members checks nesting, not types). It reads eight bytes at a time: in
// a word without a backslash the quotes alone say which bytes are in a
// string (a running parity of them), and only the brackets outside strings
// are looked at one by one. A word with a backslash, and the last bytes,
// are read a byte at a time.
func skipContainer(v []byte, i int) int {
	depth := 1
	var inString uint64 // highs while in a string
	for i < len(v) {
		if i+8 <= len(v) {
			x := binary.LittleEndian.Uint64(v[i:])
			if zeroBytes(x^0x5c*ones) == 0 {
				q := zeroBytes(x ^ 0x22*ones)
				// In each byte's high bit: whether it is in a string,
				// counting an opening quote in and a closing one out.
				in := q ^ q<<8
				in ^= in << 16
				in ^= in << 32
				in ^= inString
				inString = uint64(int64(in)>>63) & highs
				for m := brackets(x) &^ in; m != 0; m &= m - 1 {
					switch p := i + bits.TrailingZeros64(m)/8; v[p] {
					case '{', '[':
						depth++
					case '}', ']':
						if depth--; depth == 0 {
							return p + 1
						}
					}
				}
				i += 8
				continue
			}
		}
		for end := min(i+8, len(v)); i < end; i++ {
			c := v[i]
			switch {
			case inString != 0 && c == '"':
				inString = 0
			case inString != 0 && c == '\\':
				i++ // the escaped byte is content, whatever it is
			case inString != 0:
			case c == '"':
				inString = highs
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	return -1
}

// scanString returns the index of the quote closing the JSON string whose
// content starts at v[j], or -1.
func scanString(v []byte, j int) int {
	for {
		j = nextQuoteOrBackslash(v, j)
		switch {
		case j >= len(v):
			return -1
		case v[j] == '"':
			return j
		}
		j += 2 // the backslash and the byte it escapes
	}
}

// nextQuoteOrBackslash is the index of the first '"' or '\\' from v[j],
// or len(v). Most strings of a payload are short: the first 32 bytes are
// looked at eight at a time; past them, bytes.IndexByte's vector code finds
// the quote, and a backslash before it.
func nextQuoteOrBackslash(v []byte, j int) int {
	for end := min(len(v), j+32); j+8 <= end; j += 8 {
		if m := quoteOrBackslash(binary.LittleEndian.Uint64(v[j:])); m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	if len(v)-j >= 8 {
		k := bytes.IndexByte(v[j:], '"')
		if k < 0 {
			k = len(v) - j
		}
		if b := bytes.IndexByte(v[j:j+k], '\\'); b >= 0 {
			return j + b
		}
		return j + k
	}
	for j < len(v) && v[j] != '"' && v[j] != '\\' {
		j++
	}
	return j
}

// appendIndex appends the member index (sdk/abi Index*) of the kwargs and
// the payload already in b.
func appendIndex(b []byte, ms []member, nKwargs int) []byte {
	le := binary.LittleEndian
	at := len(b)
	b = slices.Grow(b, 8+16*len(ms))[:at+8+16*len(ms)]
	le.PutUint32(b[at:], uint32(nKwargs))
	le.PutUint32(b[at+4:], uint32(len(ms)-nKwargs))
	at += 8
	for _, m := range ms {
		e := b[at : at+16]
		le.PutUint64(e, uint64(m.keyOff)|uint64(m.keyLen)<<32)
		le.PutUint64(e[8:], uint64(m.valOff)|uint64(m.valLen)<<32)
		at += 16
	}
	return b
}
