package console

import (
	"strconv"
	"testing"
	"time"
)

// The bucket refills evenly over a minute, per address, and the table of
// addresses stays bounded.
func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(10, func() time.Time { return now })
	for i := range 10 {
		if _, ok := l.allow("a"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	wait, ok := l.allow("a")
	if ok || wait <= 0 || wait > 6*time.Second {
		t.Fatalf("11th attempt = %v, %v; want refused for at most 6s", wait, ok)
	}
	if _, ok := l.allow("b"); !ok {
		t.Fatal("another address shares the limit")
	}
	now = now.Add(6 * time.Second)
	if _, ok := l.allow("a"); !ok {
		t.Fatal("no attempt after 6s")
	}
	if _, ok := l.allow("a"); ok {
		t.Fatal("two attempts after 6s")
	}
	// Full table: addresses whose buckets are full again are forgotten.
	for i := range maxClients {
		l.allow(strconv.Itoa(i))
	}
	if _, ok := l.allow("new"); ok {
		t.Fatal("a new address was let in while every bucket was in use")
	}
	now = now.Add(time.Minute)
	if _, ok := l.allow("new"); !ok || len(l.buckets) > 2 {
		t.Fatalf("after a minute: allowed=%v, %d addresses kept", ok, len(l.buckets))
	}
}
