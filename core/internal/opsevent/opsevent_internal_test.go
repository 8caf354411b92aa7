package opsevent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

var ctx = context.Background()

func messages(t *testing.T, s *store.Store, eventType string) []json.RawMessage {
	t.Helper()
	var payloads []json.RawMessage
	if err := s.DB().NewSelect().Table("messages").Column("payload").Where("event_type = ?", eventType).
		Order("id").Scan(ctx, &payloads); err != nil {
		t.Fatal(err)
	}
	return payloads
}

// With no hook subscribed nothing is written, however many failures come;
// with one, a plugin file's failures make at most one event per
// PluginEvery, the next counting those in between; past MaxQueued,
// changes are dropped.
func TestPluginFailuresAreRateLimited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := s.AddOpsEventTypes(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		e := New(Config{Node: "n1", Now: func() time.Time { return now }, MaxQueued: 2}, s, nil)
		boom := errors.New("wasm error: unreachable")
		e.PluginFailed("a.wasm", "callback", boom)
		e.Changes(webhook.Changes{GivenUp: []webhook.Result{{EventID: 1}, {EventID: 2}, {EventID: 3}}})
		e.flush(ctx)
		for _, typ := range webhook.OpsEventTypes {
			if m := messages(t, s, typ); len(m) != 0 {
				t.Fatalf("%s written without a subscriber: %s", typ, m)
			}
		}
		if e.dropped != 0 || len(e.givenUp) != 0 {
			t.Fatalf("queue after a flush: %d dropped, %d queued", e.dropped, len(e.givenUp))
		}

		admin, _ := storetest.User(t, s, "root", webhook.RoleAdmin)
		storetest.Hook(t, s, admin.ID, webhook.EventPluginFailed, "https://ops.example/")
		now = now.Add(time.Minute)
		e.PluginFailed("a.wasm", "callback", boom) // a minute after the last event: at once
		now = now.Add(10 * time.Second)
		e.PluginFailed("a.wasm", "countdown", boom)
		e.PluginFailed("a.wasm", "countdown", boom)
		e.PluginFailed("b.wasm", "load", errors.New("no manifest"))
		e.flush(ctx)
		got := messages(t, s, webhook.EventPluginFailed)
		if len(got) != 2 {
			t.Fatalf("events %s, want a.wasm's first and b.wasm's", got)
		}
		now = now.Add(50 * time.Second) // a minute after a.wasm's event
		e.flush(ctx)
		got = messages(t, s, webhook.EventPluginFailed)
		if len(got) != 3 {
			t.Fatalf("events %s, want a third with a.wasm's two counted failures", got)
		}
		var p map[string]any
		if err := json.Unmarshal(got[2], &p); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"plugin": "a.wasm", "node": "n1", "stage": "countdown", "error": boom.Error(),
			"failures": float64(2), "since": "2026-01-02T03:05:15.000000Z", "failed_at": "2026-01-02T03:06:05.000000Z"}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%s = %v, want %v (%v)", k, p[k], v, p)
			}
		}
		now = now.Add(time.Hour)
		e.flush(ctx)
		if n := len(messages(t, s, webhook.EventPluginFailed)); n != 3 {
			t.Fatalf("%d events with no new failure", n)
		}
		if len(e.plugins) != 0 {
			t.Errorf("idle files kept: %v", e.plugins)
		}
	})
}

// A long error is cut to maxErrorLen bytes, ellipsis included, never in
// the middle of a character.
func TestClipError(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("a", 5000),
		strings.Repeat("é", 5000),                // 2 bytes
		"a" + strings.Repeat("€", 5000),          // 3 bytes, shifted
		"ab" + strings.Repeat("😀", 5000),         // 4 bytes, shifted
		strings.Repeat("x", maxErrorLen-1) + "é", // one byte over
	} {
		got := clipError(msg)
		if len(got) > maxErrorLen || len(got) < maxErrorLen-6 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") ||
			!strings.HasPrefix(msg, strings.TrimSuffix(got, "…")) {
			t.Errorf("%.10q…: %d bytes, valid %v, ends %q", msg, len(got), utf8.ValidString(got), got[max(0, len(got)-8):])
		}
	}
	if short := strings.Repeat("é", maxErrorLen/2); clipError(short) != short {
		t.Error("a message of maxErrorLen bytes was cut")
	}
}
