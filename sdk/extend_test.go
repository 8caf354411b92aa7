package sdk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/sdk/abi"
)

// index builds the member index the host appends (sdk/ABI.md §6) from
// spans given as [name offset, name length, value offset, value length].
func testIndex(nk int, spans ...[4]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(nk))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(spans)-nk))
	for _, s := range spans {
		for _, v := range s {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
	}
	return b
}

func TestFilterReadsTheIndex(t *testing.T) {
	var got json.RawMessage
	filters = append(filters, filterEntry{name: "ix", fn: func(kw Kwargs, ev *Event) (bool, error) {
		got, _ = ev.Field(kw.String("f"))
		return true, nil
	}})
	defer func() { filters = filters[:len(filters)-1] }()
	kwargs := `{"f":"b"}`
	doc := `{"event_type":"e","payload":{"a":1,"b":[2]}}`
	in := []byte(kwargs + doc)
	p := uint32(len(kwargs) + len(`{"event_type":"e","payload":`))
	ix := testIndex(1, [4]uint32{2, 1, 5, 3}, [4]uint32{p + 2, 1, p + 5, 1}, [4]uint32{p + 8, 1, p + 11, 3})
	if code := filterAt(len(filters)-1, append(in, ix...), len(kwargs), len(doc)); code != 1 || string(got) != "[2]" {
		t.Fatalf("filter = %d, field %s", code, got)
	}
	// A span past the documents is not followed; a table that does not
	// fit its length is ignored and the payload walked instead.
	bad := testIndex(1, [4]uint32{2, 1, 5, 3}, [4]uint32{p + 8, 1, 1 << 30, 3})
	got = nil
	if code := filterAt(len(filters)-1, append(in, bad...), len(kwargs), len(doc)); code != 1 || got != nil {
		t.Fatalf("out-of-bounds span: %d, field %s", code, got)
	}
	got = nil
	if code := filterAt(len(filters)-1, append(in, bad[:20]...), len(kwargs), len(doc)); code != 1 || string(got) != "[2]" {
		t.Fatalf("short table: %d, field %s", code, got)
	}
}

func TestTransformReadsHeadersOnDemand(t *testing.T) {
	var ct string
	var all map[string]string
	transforms = append(transforms, transformEntry{name: "hdr", fn: func(kw Kwargs, req *Request) (Result, error) {
		ct, _ = req.Header("content-type")
		all = req.Headers()
		return Result{Headers: map[string]string{"x-seen": ct}}, nil
	}})
	defer func() { transforms = transforms[:len(transforms)-1] }()
	res, err := RunTransform("hdr", `{}`, Request{EventType: "e", Payload: json.RawMessage(`{"a":1}`)},
		map[string]string{"content-type": "application/json", "x-\u00e9": "\"q\""})
	if err != nil || ct != "application/json" || all["x-é"] != `"q"` || len(all) != 2 || res.Headers["x-seen"] != ct || res.Body != nil {
		t.Fatalf("res %+v, %v; content-type %q, headers %v", res, err, ct, all)
	}
	if _, ok := (&Request{}).Header("a"); ok {
		t.Error("a request without headers has one")
	}
}

// TestResultBodyJSON: a body marked as JSON goes into the result as it is,
// without the SDK's check; one that is not JSON makes the result document
// invalid, which the host refuses (RunTransform decodes it as the host).
func TestResultBodyJSON(t *testing.T) {
	for _, c := range []struct {
		body   string
		isJSON bool
		want   string
		fails  bool
	}{
		{`{"text":"a"}`, true, `{"text":"a"}`, false},
		{`[1, 2]`, false, `[1, 2]`, false},
		{`{not json`, false, `{not json`, false},
		{`{not json`, true, "", true},
		{`plain`, false, `plain`, false},
	} {
		transforms = append(transforms, transformEntry{name: "bj", fn: func(Kwargs, *Request) (Result, error) {
			return Result{Body: []byte(c.body), BodyJSON: c.isJSON}, nil
		}})
		res, err := RunTransform("bj", `{}`, Request{EventType: "e"}, nil)
		transforms = transforms[:len(transforms)-1]
		if c.fails {
			if err == nil {
				t.Errorf("%q marked JSON: no error, body %q", c.body, res.Body)
			}
			continue
		}
		if err != nil || string(res.Body) != c.want {
			t.Errorf("%q (JSON %v): body %q, %v", c.body, c.isJSON, res.Body, err)
		}
	}
}

// TestPreparedTransform: prepare runs once per kwargs document, its result
// may keep the kwargs after the input is overwritten, and a failed prepare
// fails the attempt and runs again on the next.
func TestPreparedTransform(t *testing.T) {
	prepared, fail := 0, false
	RegisterPreparedTransform("prep", func(kw Kwargs) (json.RawMessage, error) {
		prepared++
		if fail {
			return nil, errors.New("no")
		}
		return kw["a"], nil
	}, func(a json.RawMessage, req *Request) (Result, error) {
		return Result{Body: append([]byte(req.EventType+":"), a...)}, nil
	}, nil)
	defer func() { transforms = transforms[:len(transforms)-1] }()
	idx := len(transforms) - 1
	call := func(kwargs string) string {
		t.Helper()
		doc := (&Request{EventType: "e"}).encode(nil)
		in := append([]byte(kwargs), doc...)
		out, err := transformAt(idx, in, len(kwargs), len(doc), 0, 0, nil)
		clear(in) // the host overwrites the input on the next call
		if err != nil {
			return "error"
		}
		res, err := decodeResult(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Body)
	}
	for range 3 {
		if got := call(`{"a":[1]}`); got != "e:[1]" || prepared != 1 {
			t.Fatalf("got %q, prepared %d times", got, prepared)
		}
	}
	if got := call(`{"a":2}`); got != "e:2" || prepared != 2 {
		t.Fatalf("other kwargs: got %q, prepared %d times", got, prepared)
	}
	fail = true
	if got := call(`{"a":3}`); got != "error" || prepared != 3 {
		t.Fatalf("failed prepare: got %q, prepared %d times", got, prepared)
	}
	fail = false
	if got := call(`{"a":3}`); got != "e:3" || prepared != 4 {
		t.Fatalf("after a failed prepare: got %q, prepared %d times", got, prepared)
	}
	if got := call(`{"a":[1]}`); got != "e:[1]" || prepared != 4 {
		t.Fatalf("kept: got %q, prepared %d times", got, prepared)
	}
	for i := range maxPrepared + 1 { // past the bound the cache starts again
		call(`{"b":` + strconv.Itoa(i) + `}`)
	}
	if got := call(`{"a":[1]}`); got != "e:[1]" || prepared != 4+maxPrepared+2 {
		t.Fatalf("after the bound: got %q, prepared %d times", got, prepared)
	}
}

// TestTransformRecord: the SDK reads a transform record it knows and falls
// back to the document for one it does not or whose spans are out of
// bounds.
func TestTransformRecord(t *testing.T) {
	var got Request
	transforms = append(transforms, transformEntry{name: "rec", fn: func(kw Kwargs, req *Request) (Result, error) {
		got = *req
		return Result{}, nil
	}})
	defer func() { transforms = transforms[:len(transforms)-1] }()
	kwargs := `{}`
	doc := (&Request{EventType: "e", UUID: "u", HookID: 7, RetryCount: 2, URL: "https://x/",
		Payload: json.RawMessage(`{"a":1}`)}).encode(map[string]string{"k": "v"})
	in := append([]byte(kwargs), doc...)
	at := func(s string) [2]uint32 {
		i := strings.Index(string(in), s)
		if i < 0 {
			t.Fatalf("%s not in %s", s, in)
		}
		return [2]uint32{uint32(i), uint32(len(s))}
	}
	docLen := len(doc)
	// A record whose hook id and retry count differ from the document's,
	// to tell which was read, and whose event type is in its string data.
	record := func(version uint32, payload [2]uint32) []byte {
		le := binary.LittleEndian
		r := le.AppendUint32(nil, version)
		r = le.AppendUint32(r, 0)
		r = le.AppendUint64(r, 70)
		r = le.AppendUint64(r, 20)
		data := uint32(len(in) + abi.TRecData)
		for _, s := range [][2]uint32{{data, 2}, at(`u`), at(`https://x/`), at(`{"k":"v"}`), payload} {
			r = le.AppendUint32(r, s[0])
			r = le.AppendUint32(r, s[1])
		}
		return append(r, "E2"...)
	}
	for _, c := range []struct {
		rec        []byte
		fromRecord bool
	}{
		{record(abi.TransformRecordVersion, at(`{"a":1}`)), true},
		{record(2, at(`{"a":1}`)), false},
		{record(abi.TransformRecordVersion, [2]uint32{uint32(len(in)), 3}), false}, // payload past the document
		{record(abi.TransformRecordVersion, at(`{"a":1}`))[:abi.TRecData-1], false},
	} {
		got = Request{}
		all := append(append([]byte(nil), in...), c.rec...)
		if _, err := transformAt(len(transforms)-1, all, len(kwargs), docLen, 0, len(c.rec), nil); err != nil {
			t.Fatal(err)
		}
		want := Request{EventType: "e", UUID: "u", HookID: 7, RetryCount: 2, URL: "https://x/"}
		if c.fromRecord {
			want.EventType, want.HookID, want.RetryCount = "E2", 70, 20
		}
		h, _ := got.Header("k")
		if got.EventType != want.EventType || got.UUID != want.UUID || got.HookID != want.HookID || got.RetryCount != want.RetryCount ||
			got.URL != want.URL || string(got.Payload) != `{"a":1}` || h != "v" {
			t.Errorf("record %v: read %+v, header %q; want %+v", c.rec, got, h, want)
		}
	}
}
