package filter_test

import (
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

// BenchmarkMatch5 is one hook's filter of 5 conditions against an event
// decoded once for all hooks: the per-hook cost at fan-out.
func BenchmarkMatch5(b *testing.B) {
	f, err := filter.Parse([]byte(five))
	if err != nil {
		b.Fatal(err)
	}
	ev, err := filter.NewEvent("order.paid", kib())
	if err != nil {
		b.Fatal(err)
	}
	if !f.Match(&ev) {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		f.Match(&ev)
	}
}

// BenchmarkDecode1KiB is the per-event cost paid once when any hook of the
// event's type has a filter.
func BenchmarkDecode1KiB(b *testing.B) {
	p := kib()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := filter.NewEvent("order.paid", p); err != nil {
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
