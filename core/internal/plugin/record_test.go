package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/testlog"
	"github.com/whisperer/whisperer/sdk"
	"github.com/whisperer/whisperer/sdk/abi"
)

// tricky is every string the encoders must get right: escapes, HTML
// characters, control bytes, line separators, invalid and cut UTF-8.
var tricky = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x00\x01\x1f\x7f", "\b\f",
	"<script>&amp;</script>", "line\u2028sep\u2029para", "emoji 😀 é", "bad \xff\xfe bytes", "cut \xe2\x82",
	"\ufffd kept", strings.Repeat("long ", 100),
}

// trickyDocs are callback documents over tricky strings and numbers.
func trickyDocs(t testing.TB) []*webhook.CallbackDoc {
	docs := []*webhook.CallbackDoc{callbackDoc(t, 1024), callbackDoc(t, 64<<10), {}}
	for i, s := range tricky {
		d := *callbackDoc(t, 0)
		d.EventType, d.EventUUID, d.Webhook.TargetURL, d.Webhook.EventType, d.Webhook.Callback = s, s, s, s, s
		d.Response.Body, d.Response.Error = s, s
		d.Response.Headers = map[string]string{s: s, "x-" + s: "v", "content-type": s}
		d.RetryCount, d.Webhook.ID, d.Response.Status = i, int64(i)<<40, 100*i
		d.Response.DurationMS = []float64{0, 1e-7, 12.5, 1e21, 123.456, -3, 5e-324, math.MaxFloat64}[i%8]
		docs = append(docs, &d)
	}
	noResponse := *callbackDoc(t, 0)
	noResponse.Response = webhook.CallbackResp{Error: "dial tcp: connection refused", DurationMS: 3}
	noResponse.Instance, noResponse.Payload = nil, nil
	many := *callbackDoc(t, 0)
	many.Response.Headers = map[string]string{}
	for i := range 40 {
		many.Response.Headers[strings.Repeat("h", i+1)] = strings.Repeat("v", 40-i)
	}
	// encoding/json compacts and HTML-escapes raw values; names that are not
	// valid UTF-8 sort differently raw and decoded, and two decode alike.
	raw := *callbackDoc(t, 0)
	raw.Instance = json.RawMessage("{\"html\": \"<p>a & b</p>\", \"sep\": \"x\u2028y\"}")
	raw.Payload = json.RawMessage(" [1, 2] ")
	raw.Response.Headers = map[string]string{"a\x80": "1", "a\xc3\xa9": "2", "\x85": "3", "\x96": "4"}
	return append(docs, &noResponse, &many, &raw)
}

func encodeDoc(t testing.TB, d *webhook.CallbackDoc, record bool) ([]byte, int) {
	t.Helper()
	e := new(callbackEncoder)
	n, err := e.encode(d, record)
	if err != nil {
		t.Fatal(err)
	}
	return e.buf, n
}

// TestCallbackDocumentIsEncodingJSON: the hand-written document is byte
// for byte what encoding/json writes, and the record reads as the document.
func TestCallbackDocumentIsEncodingJSON(t *testing.T) {
	for _, d := range trickyDocs(t) {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, n := encodeDoc(t, d, true)
		if !bytes.Equal(got[:n], want) {
			t.Errorf("document differs from encoding/json:\n got %q\nwant %q", got[:n], want)
		}
		checkRecord(t, got, n)
	}
}

// checkRecord reads the record after the document in[:docLen] strictly by
// sdk/ABI.md §7 and compares it with json.Unmarshal's reading of the
// document.
func checkRecord(t *testing.T, in []byte, docLen int) {
	t.Helper()
	le := binary.LittleEndian
	rec := in[docLen:]
	if len(rec) < abi.RecHeaders || le.Uint32(rec[abi.RecVersion:]) != abi.RecordVersion {
		t.Fatalf("bad record header")
	}
	str := func(at, limit int) string {
		off, n := int(le.Uint32(rec[at:])), int(le.Uint32(rec[at+4:]))
		if off+n > limit {
			t.Fatalf("span at %d out of bounds: %d+%d > %d", at, off, n, limit)
		}
		return string(in[off : off+n])
	}
	f := func(i int) int { return abi.RecSpans + i*abi.SpanBytes }
	flags := le.Uint32(rec[abi.RecFlags:])
	got := webhook.CallbackDoc{
		EventType:  str(f(abi.SpanEventType), len(in)),
		EventUUID:  str(f(abi.SpanEventUUID), len(in)),
		RetryCount: int(int64(le.Uint64(rec[abi.RecRetryCount:]))),
		Delivered:  flags&abi.RecDelivered != 0,
		Webhook: webhook.CallbackWebhook{
			ID:        int64(le.Uint64(rec[abi.RecWebhookID:])),
			TargetURL: str(f(abi.SpanTargetURL), len(in)),
			EventType: str(f(abi.SpanWebhookEventType), len(in)),
			Callback:  str(f(abi.SpanCallback), len(in)),
		},
		Response: webhook.CallbackResp{
			Status:     int(int64(le.Uint64(rec[abi.RecStatus:]))),
			Body:       str(f(abi.SpanBody), len(in)),
			Error:      str(f(abi.SpanError), len(in)),
			DurationMS: math.Float64frombits(le.Uint64(rec[abi.RecDuration:])),
		},
		Instance: json.RawMessage(str(f(abi.SpanInstance), docLen)),
		Payload:  json.RawMessage(str(f(abi.SpanPayload), docLen)),
	}
	if flags&abi.RecHeadersSet != 0 {
		got.Response.Headers = map[string]string{}
		prev := ""
		for k := range int(le.Uint32(rec[abi.RecHeaderCount:])) {
			at := abi.RecHeaders + 2*k*abi.SpanBytes
			name := str(at, len(in))
			if k > 0 && name < prev {
				t.Errorf("header names not in ascending byte order: %q after %q", name, prev)
			}
			prev = name
			got.Response.Headers[name] = str(at+abi.SpanBytes, len(in))
		}
	}
	var want webhook.CallbackDoc
	if err := json.Unmarshal(in[:docLen], &want); err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) || got.Response.DurationMS != want.Response.DurationMS ||
		string(got.Instance) != string(want.Instance) || string(got.Payload) != string(want.Payload) {
		t.Fatalf("record reads\n%s\ndocument reads\n%s", gj, wj)
	}
}

// FuzzCallbackRecord: for any strings, numbers and instance, the document
// is encoding/json's and the record reads as the document.
func FuzzCallbackRecord(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, s, "k", s, 1.5, `{"a":1}`)
	}
	f.Fuzz(func(t *testing.T, a, b, hk, hv string, dur float64, inst string) {
		if !json.Valid([]byte(inst)) || math.IsNaN(dur) || math.IsInf(dur, 0) {
			return
		}
		d := webhook.CallbackDoc{EventType: a, EventUUID: b, RetryCount: -3,
			Webhook:  webhook.CallbackWebhook{ID: -1, TargetURL: a + b, EventType: b, Callback: a},
			Response: webhook.CallbackResp{Status: 200, Headers: map[string]string{hk: hv, hv: hk, "z": a}, Body: b + a, Error: hv, DurationMS: dur},
			Instance: json.RawMessage(inst), Payload: json.RawMessage(`[1]`)}
		want, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		got, n := encodeDoc(t, &d, true)
		if !bytes.Equal(got[:n], want) {
			t.Fatalf("document differs from encoding/json:\n got %q\nwant %q", got[:n], want)
		}
		checkRecord(t, got, n)
	})
}

func TestCallbackDocumentEdges(t *testing.T) {
	d := *callbackDoc(t, 0)
	d.Response.DurationMS = math.NaN()
	d.Instance = json.RawMessage("{\n  \"spaced\": [1, 2]\n}")
	got, n := encodeDoc(t, &d, false)
	if n != len(got) {
		t.Fatalf("no record asked, but %d bytes follow the document", len(got)-n)
	}
	var back webhook.CallbackDoc
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("invalid JSON %q: %v", got, err)
	}
	if back.Response.DurationMS != 0 || !strings.Contains(string(back.Instance), `"spaced"`) {
		t.Fatalf("NaN duration or spaced instance mangled: %+v", back)
	}
	d.Payload = json.RawMessage(`{"cut":`)
	if _, err := new(callbackEncoder).encode(&d, true); err == nil {
		t.Fatal("invalid payload JSON encoded without an error")
	}
}

// echoed is the callback's log line (testdata/echo's Echo).
type echoed struct {
	D        sdk.Delivery
	Instance string
	Payload  string
	Raw      string
	NilHdrs  bool
}

// echoAll calls testdata/echo with every doc and returns its log lines.
func echoAll(t *testing.T, docs []*webhook.CallbackDoc, jsonOnly bool) []string {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./core/internal/plugin/testdata/echo"), dir, "echo.wasm")
	cfg := testConfig(dir)
	cfg.jsonOnly = jsonOnly
	var lb testlog.Buffer
	sink := newSink()
	h, err := New(cfg, sink, slog.New(slog.NewJSONHandler(&lb, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())
	if v := h.entries["echo.wasm"].cur; v == nil || v.record == jsonOnly {
		t.Fatalf("echo.wasm: record path = %v, want %v", v != nil && v.record, !jsonOnly)
	}
	cb := sink.callback(t, "echo")
	var lines []string
	for i, d := range docs {
		lb.Reset()
		if err := cb(context.Background(), d); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(lb.String()), &rec); err != nil {
			t.Fatalf("doc %d: log %q: %v", i, lb.String(), err)
		}
		lines = append(lines, rec.Msg)
	}
	return lines
}

// TestCallbackRecordReadsAsTheDocument runs real Go guests over tricky
// documents: what the SDK reads from the record is what it reads from the
// JSON, and that is the document's content.
func TestCallbackRecordReadsAsTheDocument(t *testing.T) {
	docs := trickyDocs(t)
	viaRecord := echoAll(t, docs, false)
	viaJSON := echoAll(t, docs, true)
	for i, d := range docs {
		if viaRecord[i] != viaJSON[i] {
			t.Errorf("doc %d: record and JSON disagree:\nrecord %s\n  json %s", i, viaRecord[i], viaJSON[i])
			continue
		}
		var e echoed
		if err := json.Unmarshal([]byte(viaRecord[i]), &e); err != nil {
			t.Fatalf("doc %d: echo %q: %v", i, viaRecord[i], err)
		}
		// Invalid bytes as U+FFFD, like a JSON decoder; long ones digested
		// like the guest does.
		valid := func(s string) string {
			s = string([]rune(s))
			if len(s) <= 256 {
				return s
			}
			sum := sha256.Sum256([]byte(s))
			return "sha256:" + hex.EncodeToString(sum[:])
		}
		if e.D.EventType != valid(d.EventType) || e.D.Webhook.ID != d.Webhook.ID || e.D.RetryCount != d.RetryCount ||
			e.D.Response.Status != d.Response.Status || e.D.Response.Error != valid(d.Response.Error) ||
			len(e.D.Response.Headers) != len(decodedNames(d.Response.Headers)) || e.NilHdrs != (d.Response.Headers == nil) ||
			e.D.Delivered != d.Delivered || e.D.Response.DurationMS != d.Response.DurationMS {
			t.Errorf("doc %d: guest read %+v\nfrom %+v", i, e, d)
		}
		want, _ := json.Marshal(d.Instance) // compacted and HTML-escaped; null when empty
		if e.Instance != string(want) {
			t.Errorf("doc %d: instance %q, want %q", i, e.Instance, want)
		}
	}
}

// decodedNames is the set of header names as a JSON decoder reads them.
func decodedNames(h map[string]string) map[string]bool {
	names := map[string]bool{}
	for k := range h {
		names[string([]rune(k))] = true
	}
	return names
}

// TestTransformRecordReadsAsTheDocument runs a real Go guest over tricky
// transform inputs: what the SDK reads from the transform record is what
// it reads from the document, and that is the input.
func TestTransformRecordReadsAsTheDocument(t *testing.T) {
	var inputs []*webhook.TransformInput
	for i, s := range tricky {
		inputs = append(inputs, &webhook.TransformInput{EventType: s, UUID: "u" + s, URL: s + "/x", HookID: int64(i) << 40, RetryCount: i,
			Headers: map[string]string{"content-type": "application/json", "x-" + s: s},
			Payload: json.RawMessage(`{"id":` + strconv.Itoa(i) + `,"s":"x"}`), Body: []byte(s)})
	}
	inputs = append(inputs, &webhook.TransformInput{}, // no payload, no headers
		&webhook.TransformInput{EventType: "e", Payload: json.RawMessage(`[1, 2]`)})
	viaRecord := transformEchoAll(t, inputs, false)
	viaJSON := transformEchoAll(t, inputs, true)
	for i, in := range inputs {
		if viaRecord[i] != viaJSON[i] {
			t.Errorf("input %d: record and JSON disagree:\nrecord %s\n  json %s", i, viaRecord[i], viaJSON[i])
			continue
		}
		var e struct {
			EventType, UUID, URL string
			HookID               int64
			RetryCount           int
			Headers              map[string]string
			Payload, Field       string
		}
		if err := json.Unmarshal([]byte(viaRecord[i]), &e); err != nil {
			t.Fatalf("input %d: echo %q: %v", i, viaRecord[i], err)
		}
		valid := func(s string) string { return string([]rune(s)) } // invalid bytes as U+FFFD
		wantPayload := string(in.Payload)
		if wantPayload == "" {
			wantPayload = "null"
		}
		if e.EventType != valid(in.EventType) || e.UUID != valid(in.UUID) || e.URL != valid(in.URL) || e.HookID != in.HookID ||
			e.RetryCount != in.RetryCount || len(e.Headers) != len(decodedNames(in.Headers)) || e.Payload != wantPayload {
			t.Errorf("input %d: guest read %+v\nfrom %+v", i, e, in)
		}
		if i < len(tricky) && (e.Headers["x-"+valid(tricky[i])] != valid(tricky[i]) || e.Field != strconv.Itoa(i)) {
			t.Errorf("input %d: headers %q, field id %q", i, e.Headers, e.Field)
		}
	}
}

// transformEchoAll calls testdata/echo's transform with every input and
// returns the bodies it answered.
func transformEchoAll(t *testing.T, inputs []*webhook.TransformInput, jsonOnly bool) []string {
	dir := t.TempDir()
	copyFile(t, goWasm(t, "./core/internal/plugin/testdata/echo"), dir, "echo.wasm")
	cfg := testConfig(dir)
	cfg.jsonOnly = jsonOnly
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	if v := h.entries["echo.wasm"].cur; v == nil || v.trRecord == jsonOnly {
		t.Fatalf("echo.wasm: transform record path = %v, want %v", v != nil && v.trRecord, !jsonOnly)
	}
	tr := sink.transform(t, "echo")
	var bodies []string
	for i, in := range inputs {
		res, err := tr.Apply(context.Background(), nil, in)
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		bodies = append(bodies, string(res.Body))
	}
	return bodies
}

// TestTransformRecordLayout decodes the host's transform record strictly
// by sdk/ABI.md §6 — version, hook id, retry count, and each span's bytes
// — without the SDK, whose fallback to the document would hide a record
// it cannot read (the JSON path reads the same values, so a comparison of
// the two cannot tell).
func TestTransformRecordLayout(t *testing.T) {
	le := binary.LittleEndian
	for i, s := range tricky {
		in := &webhook.TransformInput{EventType: s, UUID: "u" + s, URL: s + "/x", HookID: int64(i)<<40 + 7, RetryCount: i,
			Headers: map[string]string{"x-" + s: s}, Payload: json.RawMessage(`{"id":` + strconv.Itoa(i) + `}`), Body: []byte("body")}
		kwargs := []byte(`{"k":1}`)
		var doc transformDoc
		b := doc.append(append([]byte(nil), kwargs...), in)
		docEnd := len(b)
		b = append(b, in.Body...)
		recAt := len(b)
		b = doc.record(b, in)
		rec := b[recAt:]
		if len(rec) < abi.TRecData || le.Uint32(rec[abi.TRecVersion:]) != abi.TransformRecordVersion || le.Uint32(rec[abi.TRecFlags:]) != 0 {
			t.Fatalf("input %d: record header %x", i, rec[:min(len(rec), abi.TRecSpans)])
		}
		if int64(le.Uint64(rec[abi.TRecHookID:])) != in.HookID || int64(le.Uint64(rec[abi.TRecRetryCount:])) != int64(in.RetryCount) {
			t.Errorf("input %d: hook id / retry count %d %d", i, le.Uint64(rec[abi.TRecHookID:]), le.Uint64(rec[abi.TRecRetryCount:]))
		}
		spanOf := func(f int) string {
			at := abi.TRecSpans + f*abi.SpanBytes
			off, n := int(le.Uint32(rec[at:])), int(le.Uint32(rec[at+4:]))
			if off < 0 || off+n > len(b) {
				t.Fatalf("input %d: span %d [%d, +%d) outside the input of %d bytes", i, f, off, n, len(b))
			}
			return string(b[off : off+n])
		}
		valid := func(s string) string { return string([]rune(s)) } // as the document carries it
		var headers map[string]string
		if err := json.Unmarshal([]byte(spanOf(abi.TSpanHeaders)), &headers); err != nil || headers["x-"+valid(s)] != valid(s) {
			t.Errorf("input %d: headers span %q: %v", i, spanOf(abi.TSpanHeaders), err)
		}
		if got := spanOf(abi.TSpanEventType); got != valid(in.EventType) {
			t.Errorf("input %d: event_type span %q, want %q", i, got, valid(in.EventType))
		}
		if got := spanOf(abi.TSpanUUID); got != valid(in.UUID) {
			t.Errorf("input %d: uuid span %q", i, got)
		}
		if got := spanOf(abi.TSpanURL); got != valid(in.URL) {
			t.Errorf("input %d: url span %q", i, got)
		}
		if got := spanOf(abi.TSpanPayload); got != string(in.Payload) {
			t.Errorf("input %d: payload span %q", i, got)
		}
		// Headers and payload lie inside the document.
		for _, f := range []int{abi.TSpanHeaders, abi.TSpanPayload} {
			at := abi.TRecSpans + f*abi.SpanBytes
			if off, n := int(le.Uint32(rec[at:])), int(le.Uint32(rec[at+4:])); off < len(kwargs) || off+n > docEnd {
				t.Errorf("input %d: span %d [%d, +%d) outside the document [%d, %d)", i, f, off, n, len(kwargs), docEnd)
			}
		}
	}
}

// TestTransformDocHeaders: the document's headers are written as
// encoding/json writes the map (names sorted, strings escaped alike),
// whether sortHeaders sorts them by insertion or not.
func TestTransformDocHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 16, 17, 40} {
		hs := map[string]string{}
		for i := range n {
			hs[strconv.Itoa(i*7919%101)+"-x"] = tricky[i%len(tricky)]
		}
		var doc transformDoc
		b := doc.append(nil, &webhook.TransformInput{Headers: hs})
		sp := doc.spans[abi.TSpanHeaders]
		want, err := json.Marshal(hs)
		if err != nil {
			t.Fatal(err)
		}
		if got := b[sp.off : sp.off+sp.n]; !bytes.Equal(got, want) {
			t.Fatalf("%d headers: %s, encoding/json writes %s", n, got, want)
		}
	}
}
