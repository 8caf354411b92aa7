package filter_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/filter"
)

const order = `{"status": "paid", "amount": 150, "currency": "usd", "email": "a@example.com",
	"tags": ["urgent", "vip"], "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
	"customer": {"tier": "premium", "deleted_at": null}, "flag": true}`

func event(t testing.TB) *filter.Event {
	t.Helper()
	ev, err := filter.NewEvent("order.paid", []byte(order))
	if err != nil {
		t.Fatal(err)
	}
	return &ev
}

func TestMatch(t *testing.T) {
	ev := event(t)
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{`{}`, true},
		{`{"payload.status": "paid"}`, true},
		{`{"payload.status": "refunded"}`, false},
		{`{"event_type": "order.paid"}`, true},
		{`{"event_type": {"$startsWith": "order."}}`, true},
		{`{"event_type": {"$startsWith": "user."}}`, false},
		{`{"payload.status": "paid", "payload.amount": {"$gte": 100}}`, true},
		{`{"payload.status": "paid", "payload.amount": {"$gt": 150}}`, false},
		{`{"payload.amount": {"$gte": 100, "$lt": 500}}`, true},
		{`{"payload.amount": {"$lte": 150}}`, true},
		{`{"payload.amount": {"$lt": 150}}`, false},
		{`{"payload.status": {"$gt": 1}}`, false}, // a string field is no number
		{`{"payload.status": {"$neq": "refunded"}}`, true},
		{`{"payload.missing": {"$neq": "x"}}`, true},
		{`{"payload.missing": "x"}`, false},
		{`{"payload.status": {"$in": ["pending", "paid"]}}`, true},
		{`{"payload.status": {"$nin": ["pending", "paid"]}}`, false},
		{`{"payload.missing": {"$nin": ["pending"]}}`, true},
		{`{"payload.amount": {"$in": [1, 150]}}`, true},
		{`{"payload.email": {"$in": "example"}}`, true},
		{`{"payload.email": {"$endsWith": "@example.com"}}`, true},
		{`{"payload.tags": "urgent"}`, true},
		{`{"payload.tags": "spam"}`, false},
		{`{"payload.tags": {"$neq": "spam"}}`, true},
		{`{"payload.tags": {"$neq": "vip"}}`, false},
		{`{"payload.tags": {"$in": ["vip", "x"]}}`, true},
		{`{"payload.tags": ["urgent", "vip"]}`, true},
		{`{"payload.tags": ["vip", "urgent"]}`, false},
		{`{"payload.items.0.sku": "A-1"}`, true},
		{`{"payload.items.1.qty": {"$gte": 2}}`, false},
		{`{"payload.items.5.sku": {"$exists": false}}`, true},
		{`{"payload.customer.deleted_at": null}`, true},
		{`{"payload.customer.deleted_at": {"$exists": true}}`, true},
		{`{"payload.customer.nope": {"$exist": false}}`, true},
		{`{"payload": {"customer": {"tier": "premium"}}}`, true},
		{`{"payload.customer": {"$eq": {"tier": "premium", "deleted_at": null}}}`, true},
		{`{"payload.flag": true}`, true},
		{`{"$or": [{"payload.status": "refunded"}, {"payload.amount": {"$gt": 100}}]}`, true},
		{`{"$or": [{"payload.status": "refunded"}, {"payload.amount": {"$gt": 1000}}]}`, false},
		{`{"$and": [{"payload.status": "paid"}, {"$not": {"payload.currency": "eur"}}]}`, true},
		{`{"$not": {"payload.currency": "usd"}}`, false},
	} {
		f, err := filter.Parse([]byte(c.filter))
		if err != nil {
			t.Errorf("Parse(%s): %v", c.filter, err)
			continue
		}
		if got := f.Match(ev); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.filter, got, c.want)
		}
		ok, why := f.Explain(ev)
		if ok != c.want || (ok == (why != "")) {
			t.Errorf("Explain(%s) = %v %q", c.filter, ok, why)
		}
	}
}

func TestExplainNamesTheFailingCondition(t *testing.T) {
	f, err := filter.Parse([]byte(`{"payload.status": "paid", "payload.amount": {"$gte": 1000}}`))
	if err != nil {
		t.Fatal(err)
	}
	ok, why := f.Explain(event(t))
	if ok || why != `{"payload.amount":{"$gte":1000}}` {
		t.Fatalf("Explain = %v %q", ok, why)
	}
}

func TestParseRefuses(t *testing.T) {
	deep := strings.Repeat(`{"$not":`, 10000) + `{}` + strings.Repeat(`}`, 10000)
	deep9 := strings.Repeat(`{"$not":`, 9) + `{}` + strings.Repeat(`}`, 9)
	long := `{"payload.` + strings.Repeat("a.", 10000) + `a": 1}`
	long17 := `{"payload.` + strings.Repeat("a.", 16) + `a": 1}`
	big := `{"payload.x": {"$in": [` + strings.Repeat(`"aaaaaaaaaaaaaaaaaaaa",`, 50000) + `"b"]}}`
	many := `{"payload.x": {"$in": [` + strings.Repeat(`1,`, 300) + `1]}}`
	var nodes strings.Builder
	nodes.WriteString(`{"$or": [`)
	for i := range 200 {
		if i > 0 {
			nodes.WriteByte(',')
		}
		nodes.WriteString(`{"payload.a": 1, "payload.b": 2}`)
	}
	nodes.WriteString(`]}`)
	for _, c := range []struct{ filter, want string }{
		{`[]`, "must be a JSON object, got a list"},
		{`"x"`, "must be a JSON object, got a string"},
		{`null`, "must be a JSON object, got null"},
		{`{`, "Not valid JSON"},
		{`{"payload.amount": {"$gt": {}}}`, `payload.amount: $gt expects a number, got an object`},
		{`{"payload.amount": {"$gt": true}}`, `payload.amount: $gt expects a number, got a boolean`},
		{`{"payload.amount": {"$gt": "100"}}`, `payload.amount: $gt expects a number, got a string`},
		{`{"payload.status": {"$lte": "a"}}`, `payload.status: $lte expects a number, got a string`},
		{`{"payload.amount": {"$regex": "x"}}`, `payload.amount: Unknown operator "$regex"`},
		{`{"$where": "x"}`, `Unknown operator "$where"`},
		{`{"status": "paid"}`, `status: A path starts with event_type or payload`},
		{`{"payload..x": 1}`, `empty segments`},
		{`{"payload.x": {"$in": 3}}`, `$in expects a list`},
		{`{"payload.x": {"$exists": "yes"}}`, `$exists expects true or false`},
		{`{"payload.x": {"$startsWith": 1}}`, `$startsWith expects a string`},
		{`{"payload.x": {"$eq": 1, "y": 2}}`, `Mix of operators and fields`},
		{`{"payload.x": {}}`, `empty object`},
		{`{"$or": []}`, `$or: $or expects a non-empty list`},
		{`{"$and": [1]}`, `$and.0: $and expects filters`},
		{`{"$not": []}`, `$not expects a filter`},
		{`{"$or": [{"payload.x": {"$bad": 1}}]}`, `payload.x: Unknown operator "$bad"`},
		{`{"plugin": 5}`, `"plugin" must be the name of a plugin filter (a string), got a number`},
		{`{"plugin": " "}`, `"plugin" may not be blank`},
		{`{"plugin": "a", "kwargs": []}`, `"kwargs" must be a JSON object, got a list`},
		{`{"plugin": "a", "kwargs": "x"}`, `"kwargs" must be a JSON object, got a string`},
		{`{"plugin": "a", "payload.x": 1}`, `only the keys "plugin" and "kwargs", not "payload.x"`},
		{deep, "no more than 16384 bytes"},
		{deep9, "nested no more than 8 levels"},
		{long, "no more than 16384 bytes"},
		{long17, "no more than 16 segments"},
		{big, "no more than 16384 bytes"},
		{many, "$in has no more than 256 elements"},
		{nodes.String(), "no more than 256 conditions"},
	} {
		_, err := filter.Parse([]byte(c.filter))
		var fe *filter.Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, c.want) {
			t.Errorf("Parse(%.80s) = %v, want an *Error with %q", c.filter, err, c.want)
		} else if len(fe.Msg) > 400 {
			t.Errorf("Parse(%.80s): message of %d bytes", c.filter, len(fe.Msg))
		}
	}
}

// TestErrorsClipLongPaths: a filter may be 16 KiB, and a path most of it;
// no error echoes it whole, nor cuts a character in two.
func TestErrorsClipLongPaths(t *testing.T) {
	long := "payload." + strings.Repeat("é", 5000)
	for _, doc := range []string{
		`{"` + long + `": {}}`,
		`{"` + long + `": {"$gt": 1, "x": 2}}`,
		`{"` + long + `": {"$gt": "1"}}`,
		`{"` + long + `": {"$in": 1}}`,
		`{"` + long + `": {"$exists": 1}}`,
		`{"` + long + `": {"$startsWith": 1}}`,
		`{"` + long + `": {"$and": []}}`,
		`{"` + long + `": {"$` + strings.Repeat("x", 5000) + `": 1}}`,
		`{"$` + strings.Repeat("x", 5000) + `": 1}`,
		`{"$or": [{"` + long + `": 1}, 3]}`,
		`{"plugin": "p", "` + strings.Repeat("k", 5000) + `": 1}`,
	} {
		_, err := filter.Parse([]byte(doc))
		if err == nil {
			t.Errorf("%.60s…: accepted", doc)
			continue
		}
		if len(err.Error()) > 800 || !utf8.ValidString(err.Error()) {
			t.Errorf("%.60s…: %d bytes, valid UTF-8 %v: %.100s…", doc, len(err.Error()), utf8.ValidString(err.Error()), err)
		}
	}
}

func TestJSONIsCompact(t *testing.T) {
	f, err := filter.Parse([]byte(" { \"payload.a\" : 1 } "))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.JSON()); got != `{"payload.a":1}` {
		t.Fatalf("JSON = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"payload.a": 1}`, `{"$or": [{"payload.a": {"$gt": 1}}, {"$not": {"event_type": "x"}}]}`,
		`{"payload": {"a": {"b": [1, 2]}}}`, `{"payload.a": {"$in": [1, "x", null, {"a": 1}]}}`, `[]`} {
		f.Add(s, order)
	}
	f.Fuzz(func(t *testing.T, doc, payload string) {
		flt, err := filter.Parse([]byte(doc))
		if err != nil {
			var fe *filter.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error %T %v is not an *Error", err, err)
			}
			return
		}
		if !json.Valid(flt.JSON()) {
			t.Fatalf("JSON() = %s is not JSON", flt.JSON())
		}
		ev, err := filter.NewEvent("t", []byte(payload))
		if err != nil {
			return
		}
		ok, why := flt.Explain(&ev)
		if ok != flt.Match(&ev) || ok == (why != "") {
			t.Fatalf("Explain = %v %q, Match = %v", ok, why, flt.Match(&ev))
		}
	})
}

// A plugin filter is stored with both keys, absent or null kwargs as {}.
func TestParsePlugin(t *testing.T) {
	for in, want := range map[string]string{
		`{"plugin": "big"}`:                                 `{"plugin":"big","kwargs":{}}`,
		`{"plugin": "big", "kwargs": null}`:                 `{"plugin":"big","kwargs":{}}`,
		`{"kwargs": {"min": 5}, "plugin": "big"}`:           `{"plugin":"big","kwargs":{"min":5}}`,
		`{"plugin": "big", "kwargs": {"a": {"b": [1, 2]}}}`: `{"plugin":"big","kwargs":{"a":{"b":[1,2]}}}`,
	} {
		f, err := filter.Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		if string(f.JSON()) != want {
			t.Errorf("Parse(%s) = %s, want %s", in, f.JSON(), want)
		}
		if name, _ := f.Plugin(); name != "big" {
			t.Errorf("Parse(%s).Plugin() = %q", in, name)
		}
	}
}
