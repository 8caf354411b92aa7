package sdk

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/whisperer/whisperer/sdk/abi"
)

// testRecord is a document and a record written by hand after the layout
// in sdk/abi (the host's writer is tested against this reader with real
// modules in core/internal/plugin).
func testRecord() ([]byte, int) {
	doc := `{"event_type":"e","instance":{"id":1},"payload":[2]}`
	in := []byte(doc)
	rec := make([]byte, abi.RecHeaders+2*abi.SpanBytes)
	le := binary.LittleEndian
	le.PutUint32(rec[abi.RecVersion:], abi.RecordVersion)
	le.PutUint32(rec[abi.RecFlags:], abi.RecDelivered|abi.RecHeadersSet)
	le.PutUint64(rec[abi.RecRetryCount:], 3)
	le.PutUint64(rec[abi.RecWebhookID:], 1<<40)
	le.PutUint64(rec[abi.RecStatus:], 204)
	le.PutUint64(rec[abi.RecDuration:], math.Float64bits(1.5))
	le.PutUint32(rec[abi.RecHeaderCount:], 1)
	span := func(at, off, n int) {
		le.PutUint32(rec[at:], uint32(off))
		le.PutUint32(rec[at+4:], uint32(n))
	}
	field := func(f int) int { return abi.RecSpans + f*abi.SpanBytes }
	span(field(abi.SpanEventType), 15, 1)
	span(field(abi.SpanInstance), 29, 8)
	span(field(abi.SpanPayload), 48, 3)
	tail := len(doc) + len(rec)
	span(field(abi.SpanBody), tail, 4) // "a\"b\n" decoded, in the tail
	span(abi.RecHeaders, tail+4, 4)    // "name"
	span(abi.RecHeaders+8, tail+8, 0)  // ""
	in = append(append(in, rec...), "a\"b\nname"...)
	return in, len(doc)
}

func TestDecodeRecord(t *testing.T) {
	in, docLen := testRecord()
	var d Delivery
	if !d.decodeRecord(in, docLen) {
		t.Fatal("a good record refused")
	}
	if d.EventType != "e" || d.RetryCount != 3 || !d.Delivered || d.Webhook.ID != 1<<40 || d.Response.Status != 204 ||
		d.Response.DurationMS != 1.5 || d.Response.Body != "a\"b\n" || string(d.Instance) != `{"id":1}` ||
		string(d.Payload) != "[2]" || len(d.Response.Headers) != 1 || d.Response.Headers["name"] != "" ||
		string(d.Raw) != string(in[:docLen]) {
		t.Fatalf("decoded %+v", d)
	}
	// The callback owns copies: changing the input or Raw changes nothing else.
	in[15] = 'X'
	d.Raw[29] = 'X'
	if d.EventType != "e" || string(d.Raw[:1]) != "{" || cap(d.Instance) != len(d.Instance) {
		t.Fatalf("Delivery shares memory it must not: %+v", d)
	}

	for name, corrupt := range map[string]func(rec []byte){
		"version":       func(rec []byte) { rec[abi.RecVersion] = 9 },
		"span past end": func(rec []byte) { rec[abi.RecSpans+abi.SpanEventType*abi.SpanBytes] = 0xff },
		"huge length":   func(rec []byte) { binary.LittleEndian.PutUint32(rec[abi.RecSpans+4:], math.MaxUint32) },
		"instance in the record": func(rec []byte) {
			binary.LittleEndian.PutUint32(rec[abi.RecSpans+abi.SpanInstance*abi.SpanBytes:], uint32(docLen+1))
		},
		"header count": func(rec []byte) { binary.LittleEndian.PutUint32(rec[abi.RecHeaderCount:], 1000) },
		"header span":  func(rec []byte) { binary.LittleEndian.PutUint32(rec[abi.RecHeaders+12:], 1<<20) },
		// Where int has 32 bits these turn negative unless read as uint64
		// (GOARCH=386 go test ./sdk, in .ci/run).
		"offset 0xffffffff": func(rec []byte) {
			binary.LittleEndian.PutUint32(rec[abi.RecSpans:], math.MaxUint32)
			binary.LittleEndian.PutUint32(rec[abi.RecSpans+4:], 0)
		},
		"header count 1<<31": func(rec []byte) { binary.LittleEndian.PutUint32(rec[abi.RecHeaderCount:], 1<<31) },
	} {
		in, docLen := testRecord()
		corrupt(in[docLen:])
		if (&Delivery{}).decodeRecord(in, docLen) {
			t.Errorf("%s: a bad record accepted", name)
		}
	}
	in, docLen = testRecord()
	for _, cut := range []int{0, docLen, docLen + abi.RecHeaders - 1} {
		if (&Delivery{}).decodeRecord(in[:cut], docLen) {
			t.Errorf("record cut at %d accepted", cut)
		}
	}
}

// FuzzDecodeRecord: no input makes the reader panic, and what it accepts
// lies within the input.
func FuzzDecodeRecord(f *testing.F) {
	in, docLen := testRecord()
	f.Add(in, docLen)
	f.Add(in[:docLen+abi.RecHeaders], docLen)
	f.Fuzz(func(t *testing.T, in []byte, docLen int) {
		var d Delivery
		if d.decodeRecord(in, docLen) && (len(d.Raw) != docLen || len(d.Response.Body) > len(in) || len(d.Instance) > docLen) {
			t.Fatalf("accepted out of bounds: %+v", d)
		}
	})
}

// TestCallbackRecordFallsBack: a record this SDK cannot read leaves the
// callback to the document.
func TestCallbackRecordFallsBack(t *testing.T) {
	var got *Delivery
	callbacks = append(callbacks, callback{name: "record-test", fn: func(d *Delivery) error { got = d; return nil }})
	defer func() { callbacks = callbacks[:len(callbacks)-1] }()
	idx := len(callbacks) - 1
	in, docLen := testRecord()
	in[docLen+abi.RecVersion] = 2
	if code := callbackRecordAt(idx, in, docLen); code != 0 || got.EventType != "e" || string(got.Payload) != "[2]" ||
		got.RetryCount != 0 {
		t.Fatalf("fallback: code %d, %+v", code, got)
	}
	if code := callbackRecordAt(idx, in, len(in)+1); code == 0 {
		t.Fatal("a document length past the input accepted")
	}
}
