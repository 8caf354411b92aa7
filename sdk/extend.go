package sdk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/whisperer/whisperer/sdk/abi"
)

// Event is what a filter decides on: the published event.
type Event struct {
	Type string
	// Payload is the published payload (raw JSON). It aliases the call's
	// input, which the host overwrites on the next call: copy it to keep
	// it after the filter returns.
	Payload json.RawMessage
	ix      index
}

// Field returns the raw JSON value of the payload's top-level member name
// (as written, escapes not decoded), and whether there is one. It reads
// the host's member index, without walking the payload.
func (ev *Event) Field(name string) (json.RawMessage, bool) { return ev.ix.field(ev.Payload, name) }

// FilterFunc decides whether an event goes to a hook: true delivers,
// false skips. An error means the filter failed; the server then delivers
// (a filter is never a reason to lose an event) and counts the failure.
type FilterFunc func(kw Kwargs, ev *Event) (bool, error)

// Request is what a transform receives for one delivery attempt, before
// the server signs it.
type Request struct {
	EventType string
	UUID      string
	HookID    int64
	// RetryCount counts the retries already made: 0 on the first attempt.
	RetryCount int
	// URL is the target; a transform cannot change it.
	URL string
	// rawHeaders is the document's headers object, read on demand by
	// Header and Headers: most transforms never look, and a map built on
	// every call costs a guest more than the rest of the decoding.
	rawHeaders []byte
	// Payload is the published payload and Body the request body the
	// server would send (raw bytes). Both alias the call's input, which
	// the host overwrites on the next call: copy them to keep them after
	// the transform returns. (Copying every input costs a Go guest more
	// than the rest of the call: the collector's assists grow with the
	// bytes allocated.)
	Payload json.RawMessage
	Body    []byte
	ix      index
}

// Header returns the request header name (lower case, as the server sends
// it; signature headers aside), and whether there is one.
func (r *Request) Header(name string) (string, bool) {
	var (
		val   string
		found bool
	)
	_, _ = nested(r.rawHeaders, 0, func(k []byte, i int) (int, error) {
		if string(k) != name {
			return skipValue(r.rawHeaders, i)
		}
		found = true
		return decString(r.rawHeaders, i, &val, "headers")
	})
	return val, found
}

// Headers returns the request's headers (signature headers aside), decoded
// on each call.
func (r *Request) Headers() map[string]string {
	h := map[string]string{}
	_, _ = nested(r.rawHeaders, 0, func(k []byte, i int) (int, error) {
		var v string
		end, err := decString(r.rawHeaders, i, &v, "headers")
		h[string(k)] = v
		return end, err
	})
	return h
}

// Field returns the raw JSON value of the payload's top-level member name,
// like Event.Field.
func (r *Request) Field(name string) (json.RawMessage, bool) { return r.ix.field(r.Payload, name) }

// index is the host's member index of one input (abi.Index*): docs is the
// kwargs and documents it points into, tab the table.
type index struct {
	docs, tab []byte
	nk, np    int
}

// readIndex checks the table's size; spans are checked as they are read.
// A table that does not fit gives the zero index, and lookups walk JSON.
func readIndex(docs, tab []byte) index {
	if len(tab) < abi.IndexEntries {
		return index{}
	}
	nk, np := int(binary.LittleEndian.Uint32(tab[abi.IndexKwargsCount:])), int(binary.LittleEndian.Uint32(tab[abi.IndexPayloadCount:]))
	if nk < 0 || np < 0 || nk > len(tab) || np > len(tab) || (len(tab)-abi.IndexEntries)/abi.IndexEntryBytes < nk+np {
		return index{}
	}
	return index{docs: docs, tab: tab, nk: nk, np: np}
}

func (x index) span(at int) ([]byte, bool) {
	off, n := binary.LittleEndian.Uint32(x.tab[at:]), binary.LittleEndian.Uint32(x.tab[at+4:])
	if uint64(off)+uint64(n) > uint64(len(x.docs)) {
		return nil, false
	}
	return x.docs[off : off+n : off+n], true
}

// entry returns entry k's name and value.
func (x index) entry(k int) (name, val []byte, ok bool) {
	at := abi.IndexEntries + k*abi.IndexEntryBytes
	name, ok1 := x.span(at)
	val, ok2 := x.span(at + 8)
	return name, val, ok1 && ok2
}

// field looks name up among the payload's entries, or walks payload
// without a table.
func (x index) field(payload []byte, name string) (json.RawMessage, bool) {
	if x.tab == nil {
		return Field(payload, name)
	}
	for k := x.nk; k < x.nk+x.np; k++ {
		// Names of another length are passed over, and the name compared,
		// without a call: each costs a guest ~100 ns.
		at := abi.IndexEntries + k*abi.IndexEntryBytes
		if int(binary.LittleEndian.Uint32(x.tab[at+4:])) != len(name) {
			continue
		}
		off := uint64(binary.LittleEndian.Uint32(x.tab[at:]))
		if off+uint64(len(name)) > uint64(len(x.docs)) || string(x.docs[off:off+uint64(len(name))]) != name {
			continue
		}
		if v, ok := x.span(at + 8); ok {
			return v, true
		}
	}
	return nil, false
}

// kwargs builds the kwargs from the table when it has them all unescaped,
// else parses raw.
func (x index) kwargs(raw []byte) (Kwargs, error) {
	if x.tab == nil || x.nk == 0 {
		return parseKwargs(raw)
	}
	kw := make(Kwargs, x.nk)
	for k := range x.nk {
		n, v, ok := x.entry(k)
		if !ok || bytes.IndexByte(n, '\\') >= 0 {
			return parseKwargs(raw)
		}
		kw[string(n)] = v
	}
	return kw, nil
}

// Result is a transform's answer. A nil Body keeps the request's body;
// Headers are set over the request's (the server refuses protected ones:
// signature, content-length, host…); Cancel drops the attempt unsent.
// The SDK copies Body before the transform's next call, so a transform
// may build it in a buffer it reuses (examples/transform does).
type Result struct {
	Body []byte
	// BodyJSON says that Body is one JSON value, written by the transform
	// (an encoder's output, or appends it controls): the SDK then sends it
	// as it is, without the walk that checks it, which costs a guest per
	// byte (ABI.md §8, Performance). If it is not JSON after all, the host
	// refuses the result and the attempt fails. Without it, a Body that is
	// a JSON object or array is found by that walk and sent as it is, and
	// anything else is escaped into a JSON string.
	BodyJSON bool
	Headers  map[string]string
	Cancel   bool
}

// TransformFunc reshapes one attempt's request. An error fails the
// attempt, which is retried like any other failed attempt.
type TransformFunc func(kw Kwargs, req *Request) (Result, error)

type filterEntry struct {
	name     string
	fn       FilterFunc
	validate Validator
}

type transformEntry struct {
	name     string
	fn       TransformFunc
	validate Validator
	// prepared, when set, serves the entry instead of fn (nil then): it
	// takes the raw kwargs (RegisterPreparedTransform).
	prepared func(kwargs []byte, req *Request) (Result, error)
}

var (
	filters    []filterEntry
	transforms []transformEntry
)

// RegisterFilter registers fn under name, with v checking the kwargs a
// hook's filter gives it (a nil v: the server accepts any JSON object).
// Call it from init; it panics on an empty or duplicate name.
func RegisterFilter(name string, fn FilterFunc, v Validator) {
	mustNew("filter", name, fn == nil)
	if slices.ContainsFunc(filters, func(f filterEntry) bool { return f.name == name }) {
		panic(fmt.Sprintf("sdk: filter %q registered twice", name))
	}
	filters = append(filters, filterEntry{name: name, fn: fn, validate: v})
}

// RegisterTransform registers fn under name, with v checking the kwargs a
// hook's transform gives it (a nil v: the server accepts any JSON object).
// Call it from init; it panics on an empty or duplicate name.
func RegisterTransform(name string, fn TransformFunc, v Validator) {
	mustNew("transform", name, fn == nil)
	addTransform(transformEntry{name: name, fn: fn, validate: v})
}

func addTransform(t transformEntry) {
	if slices.ContainsFunc(transforms, func(o transformEntry) bool { return o.name == t.name }) {
		panic(fmt.Sprintf("sdk: transform %q registered twice", t.name))
	}
	transforms = append(transforms, t)
}

// RegisterPreparedTransform registers a transform whose kwargs are
// compiled once: prepare turns a hook's kwargs into a T (a parsed template,
// say), and fn runs each attempt with the T of its hook's kwargs. The SDK
// keeps the T of the last kwargs it saw (a few dozen distinct kwargs
// documents per instance; past that it starts again) and calls prepare
// only for kwargs it has not kept, so a hook's attempts skip decoding the
// kwargs, which costs a guest several microseconds a call (ABI.md §8,
// Performance). prepare may keep kw and its values; an error from it fails
// the attempt, and the kwargs are prepared again on the next. The entry is
// otherwise RegisterTransform's (validator, dispatch, RunTransform).
func RegisterPreparedTransform[T any](name string, prepare func(kw Kwargs) (T, error), fn func(T, *Request) (Result, error), v Validator) {
	mustNew("transform", name, prepare == nil || fn == nil)
	c := &preparedCache[T]{prepare: prepare}
	addTransform(transformEntry{name: name, validate: v, prepared: func(kwargs []byte, req *Request) (Result, error) {
		p, err := c.get(kwargs, req.ix)
		if err != nil {
			return Result{}, err
		}
		return fn(p, req)
	}})
}

// maxPrepared bounds a preparedCache: a rare instance serving many hooks'
// kwargs starts again rather than keep them all.
const maxPrepared = 32

// preparedCache maps kwargs documents, as the host sends them, to what
// prepare made of them. In Wasm exports run one at a time; the lock (never
// contended there) is for native tests calling RunTransform in parallel.
type preparedCache[T any] struct {
	mu      sync.Mutex
	prepare func(Kwargs) (T, error)
	m       map[string]T
}

func (c *preparedCache[T]) get(kwargs []byte, ix index) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[string(kwargs)]; ok { // no allocation: the key is only compared
		return p, nil
	}
	// The kwargs' values alias this copy, which prepare may keep: the
	// input is overwritten by the next call.
	own := bytes.Clone(kwargs)
	kix := ix
	kix.docs = own
	kw, err := kix.kwargs(own)
	var p T
	if err == nil {
		p, err = c.prepare(kw)
	}
	if err != nil {
		return p, err
	}
	if c.m == nil || len(c.m) >= maxPrepared {
		c.m = make(map[string]T)
	}
	c.m[string(own)] = p
	return p, nil
}

func filterEntries() []abi.Entry {
	out := make([]abi.Entry, len(filters))
	for i, f := range filters {
		out[i] = abi.Entry{Name: f.name, Validator: f.validate != nil}
	}
	return out
}

func transformEntries() []abi.Entry {
	out := make([]abi.Entry, len(transforms))
	for i, t := range transforms {
		out[i] = abi.Entry{Name: t.name, Validator: t.validate != nil}
	}
	return out
}

// filterAt serves whisperer_filter: in is the kwargs, the event document
// of evLen bytes and the member index. It returns abi.FilterDeliver,
// abi.FilterSkip or -1.
func filterAt(idx int, in []byte, kwLen, evLen int) (code int32) {
	if idx < 0 || idx >= len(filters) {
		Logf(LevelError, "no filter at index %d", idx)
		return -1
	}
	f := filters[idx]
	defer func() {
		if r := recover(); r != nil {
			recovered("filter "+quote(f.name), r)
			code = -1
		}
	}()
	if kwLen < 0 || evLen < 0 || kwLen+evLen > len(in) {
		Logf(LevelError, "filter %q: input lengths %d+%d out of range", f.name, kwLen, evLen)
		return -1
	}
	docs := in[: kwLen+evLen : kwLen+evLen]
	ev := &Event{ix: readIndex(docs, in[kwLen+evLen:])}
	kw, err := ev.ix.kwargs(in[:kwLen])
	if err != nil {
		Logf(LevelError, "filter %q: %v", f.name, err)
		return -1
	}
	if err := ev.decode(docs[kwLen:]); err != nil {
		Logf(LevelError, "filter %q: decode event: %v", f.name, err)
		return -1
	}
	ok, err := f.fn(kw, ev)
	switch {
	case err != nil:
		Logf(LevelError, "filter %q: %v", f.name, err)
		return -1
	case ok:
		return abi.FilterDeliver
	}
	return abi.FilterSkip
}

// transformAt serves whisperer_transform and whisperer_transform_record:
// in is the kwargs, the transform document, the body, the member index and
// the last recLen bytes the transform record (0 without one). It returns
// the result document, appended to dst[:0], nil to keep the request as it
// is, or an error (logged).
func transformAt(idx int, in []byte, kwLen, docLen, bodyLen, recLen int, dst []byte) (doc []byte, err error) {
	if idx < 0 || idx >= len(transforms) {
		return nil, fmt.Errorf("no transform at index %d", idx)
	}
	t := transforms[idx]
	defer func() {
		if r := recover(); r != nil {
			recovered("transform "+quote(t.name), r)
			doc, err = nil, errPanicked
		}
	}()
	if kwLen < 0 || docLen < 0 || bodyLen < 0 || recLen < 0 || kwLen+docLen+bodyLen+recLen > len(in) {
		return nil, fmt.Errorf("transform %q: input lengths %d+%d+%d+%d out of range", t.name, kwLen, docLen, bodyLen, recLen)
	}
	end := kwLen + docLen + bodyLen
	req := &Request{Body: in[kwLen+docLen : end : end], ix: readIndex(in[:kwLen+docLen], in[end:len(in)-recLen])}
	var kw Kwargs
	if t.prepared == nil {
		if kw, err = req.ix.kwargs(in[:kwLen]); err != nil {
			return nil, fmt.Errorf("transform %q: %v", t.name, err)
		}
	}
	if recLen == 0 || !req.decodeRecord(in, kwLen, docLen, in[len(in)-recLen:]) {
		if err := req.decode(in[kwLen : kwLen+docLen]); err != nil {
			return nil, fmt.Errorf("transform %q: decode request: %v", t.name, err)
		}
	}
	var res Result
	if t.prepared != nil {
		res, err = t.prepared(in[:kwLen], req)
	} else {
		res, err = t.fn(kw, req)
	}
	if err != nil {
		return nil, fmt.Errorf("transform %q: %v", t.name, err)
	}
	if res.Body == nil && len(res.Headers) == 0 && !res.Cancel {
		return nil, nil
	}
	return res.encode(dst), nil
}

// errPanicked: the panic was logged already.
var errPanicked = errors.New("panicked")

// encode appends the result document to dst (a buffer the caller
// reuses: an allocation per call costs a guest more than the copy). A
// body that is a JSON object or array goes in as it is (no escaping,
// which a guest pays per byte); anything else as a JSON string.
func (r *Result) encode(dst []byte) []byte {
	b := slices.Grow(dst[:0], len(r.Body)+64)
	if r.Cancel {
		b = append(b, `{"cancel":true`...)
	} else {
		b = append(b, `{"cancel":false`...)
	}
	if r.Body != nil {
		b = append(b, `,"body":`...)
		if (r.BodyJSON && len(r.Body) > 0) || isJSONContainer(r.Body) {
			b = append(b, r.Body...)
		} else {
			b = appendJSONString(b, r.Body)
		}
	}
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		first := true
		for name, v := range r.Headers {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, []byte(name))
			b = append(b, ':')
			b = appendJSONString(b, []byte(v))
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// isJSONContainer reports whether b is one valid JSON object or array.
func isJSONContainer(b []byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || (b[i] != '{' && b[i] != '[') {
		return false
	}
	end, err := skipValue(b, i)
	return err == nil && skipSpace(b, end) == len(b)
}

// AppendJSONString appends s to b as a JSON string, with invalid UTF-8
// replaced by U+FFFD. It copies runs of plain bytes at once, for guests
// that build a JSON body (ABI.md §8, Performance).
func AppendJSONString(b []byte, s string) []byte {
	// s is only read: no copy into a []byte.
	return appendJSONString(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// AppendJSONBytes is AppendJSONString for text held in a []byte, without
// the conversion to a string, which copies it.
func AppendJSONBytes(b, s []byte) []byte { return appendJSONString(b, s) }

func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			// Eight plain bytes at a time: no quote, backslash, control
			// byte or non-ASCII byte in the word.
			w := binary.LittleEndian.Uint64(s[i:])
			q, bs := w^quotes, w^slashs
			if ((q-ones)&^q|(bs-ones)&^bs|(w-0x20*ones)&^w|w)&highs == 0 {
				i += 8
				continue
			}
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// decode reads the filter's event document {"event_type": …, "payload": …}.
func (ev *Event) decode(b []byte) error {
	return wholeObject(b, func(k []byte, i int) (int, error) {
		switch string(k) {
		case "event_type":
			return decString(b, i, &ev.Type, "event_type")
		case "payload":
			end, err := payloadEnd(b, i)
			ev.Payload = b[i:end:end]
			return end, err
		}
		return skipValue(b, i)
	})
}

// payloadEnd is the end of the payload value at b[i]: the host writes it
// as the document's last member (ABI.md §6), so it ends before the closing
// brace and need not be walked, which costs a guest per byte.
func payloadEnd(b []byte, i int) (int, error) {
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	if j > i && b[j-1] == '}' {
		k := j - 1
		for k > i && isSpace(b[k-1]) {
			k--
		}
		if k > i {
			return k, nil
		}
	}
	return skipValue(b, i)
}

// decode reads the transform document. Its strings are copied into one
// allocation at the end: one per string costs a guest about a microsecond.
func (r *Request) decode(b []byte) error {
	err := wholeObject(b, func(k []byte, i int) (end int, err error) {
		var n int64
		switch string(k) {
		case "event_type":
			return decStringRef(b, i, &r.EventType, "event_type")
		case "uuid":
			return decStringRef(b, i, &r.UUID, "uuid")
		case "url":
			return decStringRef(b, i, &r.URL, "url")
		case "hook_id":
			r.HookID, end, err = decInt(b, i, "hook_id")
			return end, err
		case "retry_count":
			n, end, err = decInt(b, i, "retry_count")
			r.RetryCount = int(n)
			return end, err
		case "headers":
			end, err = skipValue(b, i)
			r.rawHeaders = b[i:end:end]
			return end, err
		case "payload":
			end, err = payloadEnd(b, i)
			r.Payload = b[i:end:end]
			return end, err
		}
		return skipValue(b, i)
	})
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(r.EventType)+len(r.UUID)+len(r.URL)) // never grows: the strings stay valid
	own := func(s string) string {
		start := len(buf)
		buf = append(buf, s...)
		return refString(buf[start:])
	}
	r.EventType, r.UUID, r.URL = own(r.EventType), own(r.UUID), own(r.URL)
	return nil
}

// decodeRecord fills r from the transform record rec (ABI.md §6) of the
// input in, whose document is in[kwLen:kwLen+docLen]: fixed offsets
// instead of a walk of the document. It reports false, leaving r to be
// decoded from the document, when the record is not one this SDK reads or
// a span is out of bounds.
func (r *Request) decodeRecord(in []byte, kwLen, docLen int, rec []byte) bool {
	if len(rec) < abi.TRecData || le.Uint32(rec[abi.TRecVersion:]) != abi.TransformRecordVersion {
		return false
	}
	// Each span's bounds, checked: strings anywhere in the input, headers
	// and payload within the document. The arithmetic is in uint64: where
	// int has 32 bits a u32 may not fit.
	var sp [abi.TSpanCount][2]int
	for f := range sp {
		lo, hi := uint64(0), uint64(len(in))
		if f == abi.TSpanHeaders || f == abi.TSpanPayload {
			lo, hi = uint64(kwLen), uint64(kwLen+docLen)
		}
		at := abi.TRecSpans + f*abi.SpanBytes
		off, n := uint64(le.Uint32(rec[at:])), uint64(le.Uint32(rec[at+4:]))
		if off < lo || off > hi || n > hi-off {
			return false
		}
		sp[f] = [2]int{int(off), int(off + n)}
	}
	r.HookID = int64(le.Uint64(rec[abi.TRecHookID:]))
	r.RetryCount = int(int64(le.Uint64(rec[abi.TRecRetryCount:])))
	h, p := sp[abi.TSpanHeaders], sp[abi.TSpanPayload]
	r.rawHeaders = in[h[0]:h[1]:h[1]]
	r.Payload = in[p[0]:p[1]:p[1]]
	// The strings are copied into one allocation: the input is
	// overwritten by the next call, and they must stay valid.
	et, id, u := sp[abi.TSpanEventType], sp[abi.TSpanUUID], sp[abi.TSpanURL]
	buf := make([]byte, 0, et[1]-et[0]+id[1]-id[0]+u[1]-u[0])
	buf = append(buf, in[et[0]:et[1]]...)
	buf = append(buf, in[id[0]:id[1]]...)
	buf = append(buf, in[u[0]:u[1]]...)
	n1, n2 := et[1]-et[0], et[1]-et[0]+id[1]-id[0]
	r.EventType, r.UUID, r.URL = refString(buf[:n1]), refString(buf[n1:n2]), refString(buf[n2:])
	return true
}

// decStringRef is decString for a b the caller owns and never changes:
// an unescaped string refers to b's bytes instead of being copied.
func decStringRef(b []byte, i int, dst *string, name string) (int, error) {
	if i < len(b) && b[i] == '"' {
		if end, esc, err := scanString(b, i); err == nil && !esc {
			*dst = refString(b[i+1 : end-1])
			return end, nil
		}
	}
	return decString(b, i, dst, name)
}

// refString is b as a string without a copy; b must never change.
func refString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// validateEntry serves the filter and transform validator exports: like
// validateAt, with the entry's validator.
func validateEntry(what string, v Validator, kwargs []byte) (doc []byte, code int64) {
	defer func() {
		if r := recover(); r != nil {
			recovered("validator of "+what, r)
			doc, code = nil, -1
		}
	}()
	return validateKwargs(v, kwargs)
}

func filterValidateAt(idx int, kwargs []byte) ([]byte, int64) {
	if idx < 0 || idx >= len(filters) {
		Logf(LevelError, "no filter at index %d", idx)
		return nil, -1
	}
	return validateEntry("filter "+quote(filters[idx].name), filters[idx].validate, kwargs)
}

func transformValidateAt(idx int, kwargs []byte) ([]byte, int64) {
	if idx < 0 || idx >= len(transforms) {
		Logf(LevelError, "no transform at index %d", idx)
		return nil, -1
	}
	return validateEntry("transform "+quote(transforms[idx].name), transforms[idx].validate, kwargs)
}

// RunFilter calls the filter registered under name through the same
// dispatch the wasm export uses, for native tests: kwargs and payload are
// JSON.
func RunFilter(name, kwargs, eventType, payload string) (bool, error) {
	for i, f := range filters {
		if f.name != name {
			continue
		}
		in := []byte(kwargs)
		in = append(in, `{"event_type":`...)
		in = appendJSONString(in, []byte(eventType))
		in = append(in, `,"payload":`...)
		in = append(in, payload...)
		in = append(in, '}')
		switch filterAt(i, in, len(kwargs), len(in)-len(kwargs)) {
		case abi.FilterDeliver:
			return true, nil
		case abi.FilterSkip:
			return false, nil
		}
		return false, errFailed
	}
	return false, fmt.Errorf("sdk: no filter %q", name)
}

// RunTransform calls the transform registered under name as the host
// would, for native tests: kwargs is JSON; req and headers (the request's
// headers) are encoded as the host encodes them. A nil Body in the result
// keeps req.Body.
func RunTransform(name, kwargs string, req Request, headers map[string]string) (Result, error) {
	for i, t := range transforms {
		if t.name != name {
			continue
		}
		in := []byte(kwargs)
		doc := req.encode(headers)
		in = append(in, doc...)
		in = append(in, req.Body...)
		out, err := transformAt(i, in, len(kwargs), len(doc), len(req.Body), 0, nil)
		if err != nil {
			if err != errPanicked {
				Log(LevelError, err.Error())
			}
			return Result{}, errFailed
		}
		if out == nil {
			return Result{}, nil
		}
		return decodeResult(out)
	}
	return Result{}, fmt.Errorf("sdk: no transform %q", name)
}

// RunFilterValidate and RunTransformValidate validate kwargs with the
// entry's validator as the host would, like RunValidate.
func RunFilterValidate(name, kwargs string) (clean string, errs Errors, err error) {
	for i, f := range filters {
		if f.name == name {
			return runValidateDoc(filterValidateAt(i, []byte(kwargs)))(kwargs)
		}
	}
	return "", nil, fmt.Errorf("sdk: no filter %q", name)
}

func RunTransformValidate(name, kwargs string) (clean string, errs Errors, err error) {
	for i, t := range transforms {
		if t.name == name {
			return runValidateDoc(transformValidateAt(i, []byte(kwargs)))(kwargs)
		}
	}
	return "", nil, fmt.Errorf("sdk: no transform %q", name)
}

// encode is the host's transform document for r, payload last.
func (r *Request) encode(headers map[string]string) []byte {
	b := []byte(`{"event_type":`)
	b = appendJSONString(b, []byte(r.EventType))
	b = append(b, `,"uuid":`...)
	b = appendJSONString(b, []byte(r.UUID))
	b = append(b, `,"hook_id":`...)
	b = strconv.AppendInt(b, r.HookID, 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(r.RetryCount), 10)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, []byte(r.URL))
	b = append(b, `,"headers":`...)
	h, _ := json.Marshal(headers)
	if headers == nil {
		h = []byte("{}")
	}
	b = append(b, h...)
	b = append(b, `,"payload":`...)
	if len(r.Payload) == 0 {
		b = append(b, "null"...)
	}
	b = append(b, r.Payload...)
	return append(b, '}')
}

// decodeResult reads a result document as the host does.
func decodeResult(doc []byte) (Result, error) {
	var raw struct {
		Body    json.RawMessage   `json:"body"`
		Headers map[string]string `json:"headers"`
		Cancel  bool              `json:"cancel"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return Result{}, fmt.Errorf("sdk: result document: %w", err)
	}
	res := Result{Headers: raw.Headers, Cancel: raw.Cancel}
	switch {
	case len(raw.Body) == 0 || string(raw.Body) == "null":
	case raw.Body[0] == '"':
		var s string
		_ = json.Unmarshal(raw.Body, &s)
		res.Body = []byte(s)
	default:
		res.Body = raw.Body
	}
	return res, nil
}

var errFound = errors.New("found")

// Field returns the raw JSON value of the member name of the JSON object
// obj (a payload, say), and whether it is there. It reads only up to that
// member.
func Field(obj []byte, name string) (json.RawMessage, bool) {
	var val []byte
	_, err := object(obj, skipSpace(obj, 0), func(k []byte, i int) (int, error) {
		end, err := skipValue(obj, i)
		if err != nil {
			return 0, err
		}
		if string(k) == name {
			val = obj[i:end:end]
			return 0, errFound
		}
		return end, nil
	})
	return val, err == errFound
}
