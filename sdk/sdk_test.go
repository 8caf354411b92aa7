package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDeliveryDecodeMatchesEncodingJSON(t *testing.T) {
	doc := []byte(`{"event_type":"package-created","event_uuid":"0123456789abcdef0123456789abcdef","retry_count":3,
		"delivered":false,"webhook":{"id":7,"target_url":"https://example.com/\u00e9","event_type":"package-created","callback":"cb"},
		"response":{"status":0,"headers":{"content-type":"text/plain","x-a":"b, c"},"body":"line\nbreak \"q\"","error":"dial tcp: refused","duration_ms":12.5},
		"instance":{"id":1,"tags":["a",{"b":null}]},"payload":{"event":{"type":"package-created"}},"future_field":[1,2]}`)
	var want Delivery
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	var got Delivery
	if err := got.decode(doc); err != nil {
		t.Fatal(err)
	}
	want.Raw, got.Raw = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseKwargs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Kwargs
		ok   bool
	}{
		{`{}`, Kwargs{}, true},
		{` {"factor": 5, "s": "x\"y", "n": null, "o": {"a": [1, {}]}} `, Kwargs{"factor": []byte("5"),
			"s": []byte(`"x\"y"`), "n": []byte("null"), "o": []byte(`{"a": [1, {}]}`)}, true},
		{`{"f\u0061ctor": 1}`, Kwargs{"factor": []byte("1")}, true},
		{`[1]`, nil, false},
		{`{"a": 1,}`, nil, false},
		{`{"a": tru}`, nil, false},
		{`{"a": 1} x`, nil, false},
		{`{"a": {"b": }}`, nil, false},
		{`{"a": 1e}`, nil, false},
		{``, nil, false},
	} {
		got, err := parseKwargs([]byte(tc.in))
		if (err == nil) != tc.ok || tc.ok && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseKwargs(%s) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestKwargsGetters(t *testing.T) {
	kw, err := parseKwargs([]byte(`{"i": 5, "s": "7", "f": 5.0, "x": "five", "b": "yes", "str": "hi", "fl": 2.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if kw.Int("i") != 5 || kw.Int("s") != 7 || kw.Int("f") != 5 || kw.IntOr("x", -1) != -1 || kw.IntOr("missing", 9) != 9 {
		t.Error("Int getters")
	}
	if !kw.Bool("b") || kw.String("str") != "hi" || kw.Float("fl") != 2.5 || !kw.Has("x") || kw.Has("y") {
		t.Error("other getters")
	}
}

func TestRules(t *testing.T) {
	rules := Rules{
		"factor": Int().Min(1).Max(10),
		"limit":  Int().Min(0).Optional(),
		"base":   Int().Default(2),
		"ratio":  Float().Min(0.5).Optional(),
		"mode":   String().OneOf("a", "b").Optional(),
		"on":     Bool().Optional(),
	}
	for _, tc := range []struct {
		in, clean string
		errs      Errors
	}{
		{`{"factor": "3", "extra": 1}`, `{"base":2,"factor":3}`, nil},
		{`{"factor": 3, "limit": null, "ratio": "0.75", "mode": "b", "on": "true"}`,
			`{"base":2,"factor":3,"limit":null,"mode":"b","on":true,"ratio":0.75}`, nil},
		{`{}`, "", Errors{"factor": {"This field is required."}}},
		{`{"factor": 0}`, "", Errors{"factor": {"Ensure this value is greater than or equal to 1."}}},
		{`{"factor": 11}`, "", Errors{"factor": {"Ensure this value is less than or equal to 10."}}},
		{`{"factor": 2.5}`, "", Errors{"factor": {"A valid integer is required."}}},
		{`{"factor": null}`, "", Errors{"factor": {"This field may not be null."}}},
		{`{"factor": 1, "ratio": 0.1, "mode": "c", "on": "maybe"}`, "", Errors{
			"ratio": {"Ensure this value is greater than or equal to 0.5."},
			"mode":  {`"c" is not a valid choice.`},
			"on":    {"Must be a valid boolean."}}},
	} {
		kw, err := parseKwargs([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		clean, errs := rules.Validate(kw)
		got, _ := json.Marshal(clean)
		if !reflect.DeepEqual(errs, tc.errs) || tc.errs == nil && string(got) != tc.clean {
			t.Errorf("Validate(%s) = %s, %v; want %s, %v", tc.in, got, errs, tc.clean, tc.errs)
		}
	}
}

func TestDispatch(t *testing.T) {
	countdowns, callbacks = nil, nil
	t.Cleanup(func() { countdowns, callbacks = nil, nil })
	RegisterCountdown("twice", func(n int, kw Kwargs) int { return 2 * n * kw.IntOr("k", 1) }, Rules{"k": Int().Min(1)})
	RegisterCountdown("boom", func(int, Kwargs) int { panic("boom") }, nil)
	RegisterCallback("ok", func(d *Delivery) error { return nil })
	if v, err := RunCountdown("twice", 3, `{"k": 2}`); v != 12 || err != nil {
		t.Errorf("twice = %d, %v", v, err)
	}
	if _, err := RunCountdown("boom", 3, `{}`); err == nil {
		t.Error("a panicking countdown must fail, not crash")
	}
	if _, err := RunCountdown("twice", 3, `[1]`); err == nil {
		t.Error("non-object kwargs must fail")
	}
	if clean, _, err := RunValidate("boom", `{"a": 1}`); clean != `{"a": 1}` || err != nil {
		t.Errorf("nil validator keeps kwargs: %s, %v", clean, err)
	}
	if _, errs, _ := RunValidate("twice", `"x"`); errs["non_field_errors"][0] != "Invalid data. Expected a dictionary, but got str." {
		t.Errorf("non-object = %v", errs)
	}
	var m struct {
		Countdowns []string `json:"countdowns"`
		Callbacks  []string `json:"callbacks"`
	}
	if err := json.Unmarshal(manifest(), &m); err != nil || len(m.Countdowns) != 2 || m.Callbacks[0] != "ok" {
		t.Errorf("manifest = %s", manifest())
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate key must panic at registration")
		}
	}()
	RegisterCallback("ok", func(*Delivery) error { return nil })
}

// TestScanString checks the eight-bytes-a-step string scan against a byte
// loop, with the quote and a backslash at every offset.
func TestScanString(t *testing.T) {
	for n := range 40 {
		for _, mid := range []string{"", `\"`, `\\`, `\n`, "é"} {
			for pos := 0; pos <= n; pos++ {
				body := strings.Repeat("x", pos) + mid + strings.Repeat("y", n-pos)
				doc := []byte(`"` + body + `"tail`)
				end, esc, err := scanString(doc, 0)
				if err != nil || end != len(body)+2 || esc != strings.Contains(mid, `\`) {
					t.Fatalf("scanString(%s) = %d, %v, %v", doc, end, esc, err)
				}
				if _, _, err := scanString(doc[:len(body)+1], 0); err == nil {
					t.Fatalf("scanString(%s) accepted an unterminated string", doc[:len(body)+1])
				}
			}
		}
	}
}

func TestDeliveryDecodeStrings(t *testing.T) {
	doc := []byte(`{"event_type":"a\"b","event_uuid":null,"webhook":{"target_url":"","callback":"c"},
		"response":{"headers":{"x":null,"k\u00e9":"v\u00e9","e":""},"body":"","error":"err"},
		"instance":[1],"payload":{"x":"y"},"event_type":"last"}`)
	var want, got Delivery
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	if err := got.decode(doc); err != nil {
		t.Fatal(err)
	}
	got.Raw = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode =\n%+v\nwant\n%+v", got, want)
	}
	// The strings do not alias the document, and Instance cannot grow
	// into Payload.
	_ = append(got.Instance, "XXXXXXXXXXXXXXXXXXXXXXXX"...)
	if string(got.Payload) != `{"x":"y"}` {
		t.Errorf("append to Instance overwrote Payload: %s", got.Payload)
	}
	for i := range doc {
		doc[i] = '#'
	}
	if got.EventType != "last" || got.Webhook.Callback != "c" || got.Response.Headers["ké"] != "vé" {
		t.Errorf("strings changed with the document: %+v", got)
	}
	for _, bad := range []string{`{"response":{"headers":{"a":1}}}`, `{"event_type":5}`, `{"response":{"headers":{"a":"\x"}}}`} {
		var d Delivery
		if d.decode([]byte(bad)) == nil {
			t.Errorf("decode(%s): no error", bad)
		}
	}
}
