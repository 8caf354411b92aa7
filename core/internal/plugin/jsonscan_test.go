package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// hostileStrings are tricky's strings and more, with every special byte at
// every position of an eight-byte word: the fast paths read words.
func hostileStrings() []string {
	ss := append([]string(nil), tricky...)
	ss = append(ss, "\u2028", "\u2029", "a\u2028b\u2029c", "\xe2\x80", "\xe2\x80\xa7", "\xe2\x80\xaa", "\xe2\x80\xa8\xe2",
		"&&&", "<>", "\x7f\x80\xbf\xc0\xc1\xf5\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\U0010FFFF", "/", "\\/", "'",
		strings.Repeat("x", 4096), strings.Repeat("é", 1000), strings.Repeat("<a href=\"x\">&amp;</a>\n", 50))
	for c := range 256 {
		ss = append(ss, string([]byte{byte(c)}))
		for at := range 17 {
			s := []byte(strings.Repeat("abcdefgh", 3))
			s[at] = byte(c)
			ss = append(ss, string(s), string(s[:at+1]))
		}
	}
	return ss
}

// checkAppendString compares appendString with encoding/json and with the
// span rules of sdk/ABI.md §7: a string that needed no escaping points at
// its content in the document, anything else is decoded into the tail.
func checkAppendString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s) // HTML-safe, invalid UTF-8 as \ufffd
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("{\"k\":")
	got, sp := appendString(bytes.Clone(prefix), s)
	if !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("appendString(%q) = %q, encoding/json writes %q", s, got[len(prefix):], want)
	}
	if asIs := string(want) == `"`+s+`"`; sp.inTail == asIs {
		t.Fatalf("appendString(%q): in tail %v, but the document holds it as it is: %v", s, sp.inTail, asIs)
	}
	if !sp.inTail && (int(sp.off) != len(prefix)+1 || int(sp.n) != len(s)) {
		t.Fatalf("appendString(%q): span (%d, %d), want (%d, %d)", s, sp.off, sp.n, len(prefix)+1, len(s))
	}
	var decoded string
	if err := json.Unmarshal(want, &decoded); err != nil {
		t.Fatal(err)
	}
	if text := sp.text(got); text != decoded {
		t.Fatalf("appendString(%q): span reads %q, the document %q", s, text, decoded)
	}
}

func TestAppendStringIsEncodingJSON(t *testing.T) {
	for _, s := range hostileStrings() {
		checkAppendString(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	f.Add("0123456789abcdef\u2028<\xff")
	f.Fuzz(checkAppendString)
}

// jsonDocs are documents on each side of encoding/json's grammar.
func jsonDocs() []string {
	docs := seedDocs()
	for _, s := range hostileStrings() {
		q, _ := json.Marshal(s)
		docs = append(docs, string(q), `"`+s+`"`, `{"`+s+`":["`+s+`"]}`)
	}
	return docs
}

// seedDocs are jsonDocs without the hostile strings: a fuzz corpus.
func seedDocs() []string {
	return []string{
		``, ` `, `{}`, `[]`, ` {} `, "\t[\n]\r", `{`, `}`, `[`, `]`, `{]`, `[}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `[1,]`,
		`[,1]`, `{,}`, `{"a":1 "b":2}`, `[1 2]`, `{"a":1}}`, `[[]]]`, `{"a":{"b":[1,{"c":null}]}}`, `{"":""}`, `{"a":1}x`, `1 2`,
		`0`, `-0`, `01`, `-01`, `1.`, `1.5`, `.5`, `-`, `+1`, `1e`, `1e+`, `1e5`, `1E-5`, `1.5e+10`, `-0.0e0`, `1.e5`, `0x1`, `1_0`,
		`123456789012345678901234567890`, `true`, `false`, `null`, `tru`, `nul`, `nulll`, `True`, `NaN`, `Infinity`, `"`, `""`, `"a`,
		`"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\x"`, `"\'"`, `"\u"`, `"\u12"`, `"\u12g4"`, `"\u00e9\uD800\udc00"`, `"\U0041"`,
		"\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"\u2028\"", "\"<>&\"", "\"a\tb\"", `"é"`, "{\"\x01\":1}",
		`{"a":1, "b" : [ 1 , 2 ] }`, `[1,"a",{"b":true},null,-2.5e-3]`, "\ufeff{}", `{"a":1}` + "\x00",
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
		strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
		strings.Repeat("[", 300) + strings.Repeat("]", 299), strings.Repeat("[{}", 70) + strings.Repeat("]", 70),
		`{"s":"` + strings.Repeat("x", 1000) + `"}`, `{"s":"` + strings.Repeat("x", 1000) + "\x01\"}",
	}
}

// checkValidDocument compares validDocument with json.Valid, and its flags
// with what json.Compact and json.HTMLEscape change.
func checkValidDocument(t *testing.T, doc []byte) {
	t.Helper()
	ok, flags := validDocument(doc)
	if want := json.Valid(doc); ok != want {
		t.Fatalf("validDocument(%q) = %v, json.Valid says %v", doc, ok, want)
	}
	if !ok {
		return
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		t.Fatal(err)
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	if flags&sawSpace == 0 && !bytes.Equal(compact.Bytes(), doc) {
		t.Fatalf("validDocument(%q): no space seen, but json.Compact writes %q", doc, compact.Bytes())
	}
	if flags&sawHTML == 0 && !bytes.Equal(escaped.Bytes(), compact.Bytes()) {
		t.Fatalf("validDocument(%q): nothing to escape seen, but json.HTMLEscape writes %q", doc, escaped.Bytes())
	}
}

func TestValidDocumentIsJSONValid(t *testing.T) {
	for _, doc := range jsonDocs() {
		checkValidDocument(t, []byte(doc))
		// Cut anywhere, a document is still judged as encoding/json does.
		if len(doc) < 200 {
			for i := range doc {
				checkValidDocument(t, []byte(doc[:i]))
			}
		}
	}
}

func FuzzValidDocument(f *testing.F) {
	for _, doc := range seedDocs() {
		if len(doc) < 1000 {
			f.Add([]byte(doc))
		}
	}
	f.Fuzz(checkValidDocument)
}

// checkMembers compares the member index with main's.
func checkMembers(t *testing.T, v []byte) {
	t.Helper()
	got, want := members(nil, v, 5), membersMain(nil, v, 5)
	if !slices.Equal(got, want) {
		t.Fatalf("members(%q) = %v, main's %v", v, got, want)
	}
}

func TestMembersAsBefore(t *testing.T) {
	docs := append(jsonDocs(), `{"a\"b":1,"c\\":"\\","d":"\"}"}`, `{"a":"\`, `{"a":1,"b":[`, `{"a":}`, `{"a":x y}`, `{"a":1]`,
		`{"a":{"b":"}"}}`, `{"a":"`+strings.Repeat(`\\`, 9)+`"}`, `{"a":"`+strings.Repeat(`\"`, 9)+`"}`)
	// Escapes inside nested values, at every offset of an eight-byte word.
	for pad := range 9 {
		p := strings.Repeat("p", pad)
		docs = append(docs, `{"a":["`+p+`x\"y","\\",{"k\"":"v\\\""}],"b":{"`+p+`\\":"]\"}"}}`,
			`{"a":["`+p+`\\"],"b":"\"}"}`, `{"a":{"`+p+`\u0022":"\\\\"},"b":["\\\"]"]}`, `{"a":["`+p+`\`)
	}
	for _, doc := range docs {
		for i := range min(len(doc), 200) + 1 {
			checkMembers(t, []byte(doc[:i]))
		}
		checkMembers(t, []byte(doc))
	}
}

func FuzzMembers(f *testing.F) {
	for _, doc := range seedDocs() {
		if len(doc) < 1000 {
			f.Add([]byte(doc))
		}
	}
	f.Fuzz(checkMembers)
}

// checkValidObject holds validObject, which checks and splits a
// transform's result in one pass, to what it replaced: json.Valid and an
// object, then members. A document it refuses, parseTransform refuses as
// not valid JSON, whatever its members say.
func checkValidObject(t *testing.T, doc []byte) {
	t.Helper()
	ms, ok := validObject(nil, doc)
	i := skipWS(doc, 0)
	if want := json.Valid(doc) && i < len(doc) && doc[i] == '{'; ok != want {
		t.Fatalf("validObject(%q) = %v, want %v (json.Valid %v)", doc, ok, want, json.Valid(doc))
	}
	if want := members(nil, doc, 0); ok && !slices.Equal(ms, want) {
		t.Fatalf("validObject(%q) members %v, members() %v", doc, ms, want)
	}
	_, err := parseTransform(doc)
	if notJSON := err != nil && strings.Contains(err.Error(), "not a valid JSON object"); notJSON == ok {
		t.Fatalf("parseTransform(%q): %v (document valid: %v)", doc, err, ok)
	}
	if err != nil && !errors.Is(err, ErrFailed) {
		t.Fatalf("parseTransform(%q): %v is not ErrFailed", doc, err)
	}
}

// TestMalformedResultRefused: a result encoding/json would not read is
// refused, whatever its members say.
func TestMalformedResultRefused(t *testing.T) {
	refused := 0
	for _, d := range jsonDocs() {
		for _, doc := range []string{d, `{"body":` + d + `}`, `{"headers":{"x":` + d + `}}`, `{"cancel":` + d + `}`, `{"cancel":1,"body":` + d + `}`} {
			checkValidObject(t, []byte(doc))
			if !json.Valid([]byte(doc)) {
				refused++
			}
		}
	}
	if refused < 1000 {
		t.Fatalf("only %d malformed documents", refused)
	}
}

func FuzzValidObject(f *testing.F) {
	for _, s := range append(seedDocs(), `{"body":"x","headers":{"a":"b"},"cancel":true}`, `{"body":[1,"]"]}`,
		`{"b\u006fdy":"\ud800"}`, `{"cancel":1,"body":}`, `{"headers":{"a":"\u0001"}}`, ` {"body" : {"t":"<&>"} } `) {
		f.Add([]byte(s))
	}
	f.Fuzz(checkValidObject)
}

// TestRawValueIsEncodingJSON: a callback document's instance and payload
// are written as encoding/json writes a json.RawMessage, compacted and
// HTML-escaped, whether or not they take the fast path.
func TestRawValueIsEncodingJSON(t *testing.T) {
	for _, doc := range jsonDocs() {
		e := new(callbackEncoder)
		got, err := e.raw(nil, 0, json.RawMessage(doc))
		want, wantErr := json.Marshal(json.RawMessage(doc))
		if doc == "" {
			want, wantErr = []byte("null"), nil
		}
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("raw(%q) = %q, %v; encoding/json %q, %v", doc, got, err, want, wantErr)
		}
		if err == nil && (int(e.spans[0].off) != 0 || int(e.spans[0].n) != len(got)) {
			t.Fatalf("raw(%q): span %+v of %d bytes", doc, e.spans[0], len(got))
		}
	}
}

// BenchmarkScanMembers is the payload's member index, against main's
// scanner: the ratio is the figure to read on a shared machine.
func BenchmarkScanMembers(b *testing.B) {
	p := benchPayload(b)
	for _, impl := range []struct {
		name string
		fn   func([]member, []byte, int) []member
	}{{"main", membersMain}, {"new", members}} {
		b.Run(impl.name, func(b *testing.B) {
			var ms []member
			for b.Loop() {
				ms = impl.fn(ms[:0], p, 0)
			}
		})
	}
}
