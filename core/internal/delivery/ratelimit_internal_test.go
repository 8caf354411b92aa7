package delivery

import (
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

func limitedJob(hook, event int64, rate any) *webhook.Job {
	return &webhook.Job{
		Event:   webhook.Event{ID: event},
		Webhook: webhook.Webhook{ID: hook, IsActive: true, Config: map[string]any{"rate_limit_per_second": rate}},
	}
}

func TestLimiterSlotsAndSweep(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(time.Minute)
	l.max = 4
	if _, ok := l.admit(limitedJob(1, 1, 4), t0); !ok {
		t.Fatal("the first request of a hook waited")
	}
	until, ok := l.admit(limitedJob(1, 2, 4), t0)
	if ok || !until.Equal(t0.Add(250*time.Millisecond)) {
		t.Fatalf("second request: %v, %v; want postponed to +250ms", until, ok)
	}
	// Back early (a redelivery): it keeps its slot; back at it: it goes,
	// without taking another slot.
	if u, ok := l.admit(limitedJob(1, 2, 4), t0.Add(time.Millisecond)); ok || !u.Equal(until) {
		t.Fatalf("early return: %v, %v", u, ok)
	}
	if _, ok := l.admit(limitedJob(1, 2, 4), until); !ok {
		t.Fatal("an event back at its slot waited again")
	}
	if u, _ := l.admit(limitedJob(1, 3, 4), until); !u.Equal(t0.Add(500 * time.Millisecond)) {
		t.Fatalf("third request postponed to %v, want +500ms", u)
	}
	// No limit, or a malformed one: never held.
	for _, rate := range []any{nil, "2", 0, -1} {
		if _, ok := l.admit(limitedJob(9, 9, rate), t0); !ok {
			t.Errorf("rate %v: held", rate)
		}
	}
	// Many idle hooks: the map is swept, not grown without bound.
	later := t0.Add(time.Hour)
	for id := int64(100); id < 120; id++ {
		l.admit(limitedJob(id, id, 1000), later.Add(time.Duration(id)*time.Second))
	}
	if len(l.hooks) > l.max || len(l.slots) > l.max {
		t.Fatalf("limiter holds %d hooks and %d slots, max %d", len(l.hooks), len(l.slots), l.max)
	}
}

// A rate so low that its interval overflows a Duration is still a limit:
// one request a day (a review found it silently became none).
func TestLimiterTinyRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(time.Minute)
	if _, ok := l.admit(limitedJob(1, 1, 1e-12), t0); !ok {
		t.Fatal("the first request waited")
	}
	until, ok := l.admit(limitedJob(1, 2, 1e-12), t0)
	if ok || !until.Equal(t0.Add(maxInterval)) {
		t.Fatalf("second request: %v, %v; want postponed by %v", until, ok, maxInterval)
	}
}
