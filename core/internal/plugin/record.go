package plugin

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/sdk/abi"
)

// The callback input: the JSON document every plugin gets and, for modules
// that export whisperer_callback_record, the record after it (sdk/ABI.md
// §7). Both are written in one pass by hand: the record needs to know where
// each value landed in the document, and the pass costs a fraction of
// encoding/json's reflection on the callback goroutines.

// span is one (offset, length) of the record, or a decoded string that goes
// in the record's tail because the document holds it escaped.
type span struct {
	off, n uint32
	tail   string
	inTail bool
}

// callbackEncoder holds the buffers of one encoding; encoders are pooled.
type callbackEncoder struct {
	buf     []byte
	spans   [abi.SpanCount]span
	hdrs    []header
	resort  bool // a header name is not valid UTF-8: decoded, it may sort elsewhere
	keys    []string
	compact bytes.Buffer // instance or payload, compacted
	escaped bytes.Buffer // the same, HTML-escaped
}

// header is one entry of the record's header table.
type header struct{ name, value span }

var encoders = sync.Pool{New: func() any { return new(callbackEncoder) }}

// maxPooledBuffer keeps a rare huge document from pinning its buffer.
const maxPooledBuffer = 1 << 20

func (e *callbackEncoder) release() {
	if cap(e.buf) > maxPooledBuffer {
		e.buf = nil
	}
	clear(e.keys)
	for i := range e.spans {
		e.spans[i].tail = ""
	}
	clear(e.hdrs)
	if e.compact.Cap() > maxPooledBuffer || e.escaped.Cap() > maxPooledBuffer {
		e.compact, e.escaped = bytes.Buffer{}, bytes.Buffer{}
	}
	encoders.Put(e)
}

// encode writes d's document into e.buf and, when record is set, the record
// after it. It returns the document's length.
func (e *callbackEncoder) encode(d *webhook.CallbackDoc, record bool) (int, error) {
	b := append(e.buf[:0], `{"event_type":`...)
	b = e.str(b, abi.SpanEventType, d.EventType)
	b = append(b, `,"event_uuid":`...)
	b = e.str(b, abi.SpanEventUUID, d.EventUUID)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(d.RetryCount), 10)
	b = append(b, `,"delivered":`...)
	b = strconv.AppendBool(b, d.Delivered)
	b = append(b, `,"webhook":{"id":`...)
	b = strconv.AppendInt(b, d.Webhook.ID, 10)
	b = append(b, `,"target_url":`...)
	b = e.str(b, abi.SpanTargetURL, d.Webhook.TargetURL)
	b = append(b, `,"event_type":`...)
	b = e.str(b, abi.SpanWebhookEventType, d.Webhook.EventType)
	b = append(b, `,"callback":`...)
	b = e.str(b, abi.SpanCallback, d.Webhook.Callback)
	b = append(b, `},"response":{"status":`...)
	b = strconv.AppendInt(b, int64(d.Response.Status), 10)
	b = append(b, `,"headers":`...)
	e.hdrs, e.resort = e.hdrs[:0], false
	if d.Response.Headers == nil {
		b = append(b, "null"...)
	} else {
		e.keys = e.keys[:0]
		for k := range d.Response.Headers {
			e.keys = append(e.keys, k)
		}
		slices.Sort(e.keys)
		b = append(b, '{')
		for i, k := range e.keys {
			if i > 0 {
				b = append(b, ',')
			}
			var h header
			b, h.name = appendString(b, k)
			b = append(b, ':')
			b, h.value = appendString(b, d.Response.Headers[k])
			e.hdrs = append(e.hdrs, h)
			e.resort = e.resort || h.name.inTail && h.name.tail != k
		}
		b = append(b, '}')
	}
	b = append(b, `,"body":`...)
	b = e.str(b, abi.SpanBody, d.Response.Body)
	b = append(b, `,"error":`...)
	b = e.str(b, abi.SpanError, d.Response.Error)
	b = append(b, `,"duration_ms":`...)
	b = appendFloat(b, d.Response.DurationMS)
	b = append(b, `},"instance":`...)
	b, err := e.raw(b, abi.SpanInstance, d.Instance)
	if err != nil {
		return 0, fmt.Errorf("instance: %w", err)
	}
	b = append(b, `,"payload":`...)
	if b, err = e.raw(b, abi.SpanPayload, d.Payload); err != nil {
		return 0, fmt.Errorf("payload: %w", err)
	}
	b = append(b, '}')
	docLen := len(b)
	if record {
		b = e.record(b, d)
	}
	e.buf = b
	return docLen, nil
}

// record appends the callback record of the document in b.
func (e *callbackEncoder) record(b []byte, d *webhook.CallbackDoc) []byte {
	le := binary.LittleEndian
	// The document holds the headers in the order of the raw names; the
	// table promises the order of the names it holds, which differ where a
	// raw name is not valid UTF-8.
	if e.resort {
		slices.SortStableFunc(e.hdrs, func(x, y header) int { return strings.Compare(x.name.text(b), y.name.text(b)) })
	}
	base := len(b)
	size := abi.RecHeaders + len(e.hdrs)*2*abi.SpanBytes
	b = slices.Grow(b, size)
	b = b[:base+size]
	rec := b[base:]
	clear(rec)
	le.PutUint32(rec[abi.RecVersion:], abi.RecordVersion)
	var flags uint32
	if d.Delivered {
		flags |= abi.RecDelivered
	}
	if d.Response.Headers != nil {
		flags |= abi.RecHeadersSet
	}
	le.PutUint32(rec[abi.RecFlags:], flags)
	le.PutUint64(rec[abi.RecRetryCount:], uint64(d.RetryCount))
	le.PutUint64(rec[abi.RecWebhookID:], uint64(d.Webhook.ID))
	le.PutUint64(rec[abi.RecStatus:], uint64(d.Response.Status))
	le.PutUint64(rec[abi.RecDuration:], math.Float64bits(finite(d.Response.DurationMS)))
	le.PutUint32(rec[abi.RecHeaderCount:], uint32(len(e.hdrs)))
	// Strings the document holds escaped follow the header table, in the
	// order of their spans.
	tail := uint32(len(b))
	put := func(at int, s *span) {
		if s.inTail {
			s.off, s.n = tail, uint32(len(s.tail))
			tail += s.n
		}
		le.PutUint32(rec[at:], s.off)
		le.PutUint32(rec[at+4:], s.n)
	}
	for i := range e.spans {
		put(abi.RecSpans+i*abi.SpanBytes, &e.spans[i])
	}
	for i := range e.hdrs {
		put(abi.RecHeaders+2*i*abi.SpanBytes, &e.hdrs[i].name)
		put(abi.RecHeaders+(2*i+1)*abi.SpanBytes, &e.hdrs[i].value)
	}
	// Most strings need no escaping: their tails are empty.
	for i := range e.spans {
		if e.spans[i].inTail {
			b = append(b, e.spans[i].tail...)
		}
	}
	for i := range e.hdrs {
		if h := &e.hdrs[i]; h.name.inTail || h.value.inTail {
			b = append(b, h.name.tail...)
			b = append(b, h.value.tail...)
		}
	}
	return b
}

// text is the string s stands for, in the document doc or in its tail.
func (s span) text(doc []byte) string {
	if s.inTail {
		return s.tail
	}
	return string(doc[s.off : s.off+s.n])
}

// str appends s as a JSON string and notes its span.
func (e *callbackEncoder) str(b []byte, field int, s string) []byte {
	b, e.spans[field] = appendString(b, s)
	return b
}

// raw appends the JSON value v (null when empty) as encoding/json does,
// compacted and HTML-escaped, and notes its span.
func (e *callbackEncoder) raw(b []byte, field int, v json.RawMessage) ([]byte, error) {
	if len(v) == 0 {
		v = json.RawMessage("null")
	}
	// The common value is already compact and has nothing to escape: it
	// goes as it is, checked in one pass; json.Compact and json.HTMLEscape
	// handle the rest (and word the error of an invalid one).
	if ok, flags := validDocument(v); !ok || flags != 0 {
		if !ok {
			flags = sawHTML // json.Compact refuses it, or escape it all to be safe
		}
		e.compact.Reset()
		if err := json.Compact(&e.compact, v); err != nil {
			return b, fmt.Errorf("not valid JSON: %w", err)
		}
		v = e.compact.Bytes()
		if flags&sawHTML != 0 {
			e.escaped.Reset()
			json.HTMLEscape(&e.escaped, v)
			v = e.escaped.Bytes()
		}
	}
	e.spans[field] = span{off: uint32(len(b)), n: uint32(len(v))}
	return append(b, v...), nil
}

// appendString appends s as a JSON string the way encoding/json writes it
// (HTML-safe, invalid UTF-8 as U+FFFD) and returns the span of its content
// in b, or, when the document holds it escaped, the decoded value for the
// record's tail.
func appendString(b []byte, s string) ([]byte, span) {
	b = append(b, '"')
	off := len(b)
	// Most strings (event types, uuids, URLs, header names) need no
	// escaping: one scan, one copy.
	i := plainPrefix(s)
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"'), span{off: uint32(off), n: uint32(len(s))}
	}
	valid := true
	start := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i += plainPrefix(s[i:])
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
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			valid = false
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	b = append(b, '"')
	if start == 0 {
		// Only multi-byte characters written as they are.
		return b, span{off: uint32(off), n: uint32(len(s))}
	}
	if !valid {
		s = replaceInvalid(s)
	}
	return b, span{tail: s, inTail: true}
}

const hexDigits = "0123456789abcdef"

// replaceInvalid is s with every byte that is not valid UTF-8 replaced by
// U+FFFD, as decoding the document's \ufffd escapes gives.
func replaceInvalid(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// finite is f, or 0 for a NaN or an infinity, which JSON cannot hold.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// appendFloat writes finite(f) as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	f = finite(f)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
