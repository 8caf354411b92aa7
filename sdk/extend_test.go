package sdk

import (
	"encoding/binary"
	"encoding/json"
	"testing"
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
