package filter_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/filter"
)

// kib is a 1 KiB order payload: the fields the filter reads and filler.
func kib() []byte {
	var b strings.Builder
	b.WriteString(`{"status":"paid","amount":150,"currency":"usd","customer":{"tier":"premium","email":"a@example.com"},"tags":["vip","urgent"],"lines":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%04d","qty":%d}`, i, i%5+1)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

const five = `{"payload.status": "paid", "payload.amount": {"$gte": 100}, "payload.currency": {"$in": ["usd", "eur"]},
	"payload.customer.tier": {"$neq": "free"}, "payload.customer.email": {"$endsWith": "@example.com"}}`

// BenchmarkMatch5 is a filter of 5 conditions on a new 1 KiB event each
// time: the cost for the first (or only) filtered hook of an event,
// reading the payload included.
func BenchmarkMatch5(b *testing.B) {
	f, err := filter.Parse([]byte(five))
	if err != nil {
		b.Fatal(err)
	}
	p := kib()
	b.ReportAllocs()
	for b.Loop() {
		ev := filter.TrustedEvent("order.paid", p)
		if !f.Match(&ev) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkMatch5Shared is the same filter on an event another hook's
// filter already read: each further hook of the event.
func BenchmarkMatch5Shared(b *testing.B) {
	f, err := filter.Parse([]byte(five))
	if err != nil {
		b.Fatal(err)
	}
	ev := filter.TrustedEvent("order.paid", kib())
	f.Match(&ev)
	b.ReportAllocs()
	for b.Loop() {
		f.Match(&ev)
	}
}

// BenchmarkDecode1KiB is what decoding the whole payload would cost
// (encoding/json into maps), which the scanner avoids.
func BenchmarkDecode1KiB(b *testing.B) {
	p := kib()
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse5 is compiling the filter, paid at hook save and once per
// hook version in the store's cache.
func BenchmarkParse5(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := filter.Parse([]byte(five)); err != nil {
			b.Fatal(err)
		}
	}
}
