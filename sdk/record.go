package sdk

import (
	"encoding/binary"
	"math"

	"github.com/whisperer/whisperer/sdk/abi"
)

// The callback record (ABI.md §7): the document's fields at fixed offsets.
// Reading it takes no loop but the header table's: decoding the JSON takes
// a guest thousands of loop steps, each paying the host's deadline check
// (ABI.md §8), this a few.

// recReader reads spans of the host's input; bad is set by any span that
// is out of bounds, and the record is then ignored.
type recReader struct {
	rec    []byte // the record
	s      string // a copy of the whole input: strings are its substrings
	docLen int
	bad    bool
}

var le = binary.LittleEndian

// span returns the bounds of the span at rec[at], within limit. The
// arithmetic is in uint64: where int has 32 bits a u32 may not fit.
func (r *recReader) span(at, limit int) (int, int) {
	off, n := uint64(le.Uint32(r.rec[at:])), uint64(le.Uint32(r.rec[at+4:]))
	if off > uint64(limit) || n > uint64(limit)-off {
		r.bad = true
		return 0, 0
	}
	return int(off), int(off + n)
}

func (r *recReader) str(field int) string {
	i, j := r.span(abi.RecSpans+field*abi.SpanBytes, len(r.s))
	return r.s[i:j]
}

// raw returns the JSON value of field as a slice of the document copy raw,
// capped at its end; nil when empty.
func (r *recReader) raw(raw []byte, field int) []byte {
	i, j := r.span(abi.RecSpans+field*abi.SpanBytes, r.docLen)
	if i == j {
		return nil
	}
	return raw[i:j:j]
}

// decodeRecord fills d from the host's input: the document in[:docLen] and
// the record after it. It reports false, leaving d to be decoded from the
// document, when the record is not one this SDK reads.
func (d *Delivery) decodeRecord(in []byte, docLen int) bool {
	if docLen < 0 || docLen > len(in) || len(in)-docLen < abi.RecHeaders {
		return false
	}
	rec := in[docLen:]
	if le.Uint32(rec[abi.RecVersion:]) != abi.RecordVersion {
		return false
	}
	nh := uint64(le.Uint32(rec[abi.RecHeaderCount:]))
	if nh > uint64((len(rec)-abi.RecHeaders)/(2*abi.SpanBytes)) {
		return false
	}
	// Two copies: the strings must not change if the callback modifies Raw.
	raw := append([]byte(nil), in[:docLen]...)
	r := recReader{rec: rec, s: string(in), docLen: docLen}
	flags := le.Uint32(rec[abi.RecFlags:])
	*d = Delivery{
		EventType:  r.str(abi.SpanEventType),
		EventUUID:  r.str(abi.SpanEventUUID),
		RetryCount: int(int64(le.Uint64(rec[abi.RecRetryCount:]))),
		Delivered:  flags&abi.RecDelivered != 0,
		Webhook: Webhook{
			ID:        int64(le.Uint64(rec[abi.RecWebhookID:])),
			TargetURL: r.str(abi.SpanTargetURL),
			EventType: r.str(abi.SpanWebhookEventType),
			Callback:  r.str(abi.SpanCallback),
		},
		Response: Response{
			Status:     int(int64(le.Uint64(rec[abi.RecStatus:]))),
			Body:       r.str(abi.SpanBody),
			Error:      r.str(abi.SpanError),
			DurationMS: math.Float64frombits(le.Uint64(rec[abi.RecDuration:])),
		},
		Instance: r.raw(raw, abi.SpanInstance),
		Payload:  r.raw(raw, abi.SpanPayload),
		Raw:      raw,
	}
	if flags&abi.RecHeadersSet != 0 {
		d.Response.Headers = make(map[string]string, nh)
		for k := range int(nh) {
			at := abi.RecHeaders + 2*k*abi.SpanBytes
			i, j := r.span(at, len(r.s))
			vi, vj := r.span(at+abi.SpanBytes, len(r.s))
			d.Response.Headers[r.s[i:j]] = r.s[vi:vj]
		}
	}
	return !r.bad
}
