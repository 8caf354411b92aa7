package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A hook deactivated automatically shows why and when; the reason is
// read-only; PATCH is_active true clears it and the hook gets new events
// again; DELETE records that its owner deactivated it.
func TestHookDisabledReason(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		h := e.createHook(e.alice, hookBody("https://example.com/gone"))
		if h["disabled_reason"] != "" || h["disabled_at"] != nil {
			t.Fatalf("new hook: %v", h)
		}
		path := idPath("/whisperer/hooks/", h["id"])
		id := int64(h["id"].(float64))

		// The receiver answers 410 Gone to an attempt.
		ev := storetest.Publish(t, s, eventType, `{}`)[0]
		ctx := t.Context()
		jobs, err := s.ClaimEvents(ctx, "n1", []int64{ev.ID}, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatal(len(jobs), err)
		}
		if err := s.Complete(ctx, []webhook.Result{{EventID: ev.ID, Lease: jobs[0].Lease, WebhookID: id, RetryCount: 1,
			State: webhook.StateGivenUp, Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 410}}}); err != nil {
			t.Fatal(err)
		}
		got := e.do("GET", path, e.alice, nil).obj(t)
		if got["is_active"] != false || got["disabled_reason"] != store.ReasonGone || got["disabled_at"] == nil {
			t.Fatalf("after a 410: %v", got)
		}
		// Publishing no longer fans out to it.
		if n := len(storetest.Publish(t, s, eventType, `{}`)); n != 0 {
			t.Fatalf("an inactive hook got %d new events", n)
		}

		// Clients cannot set the reason; a PATCH without is_active keeps it.
		r := e.do("PATCH", path, e.alice, map[string]any{"disabled_reason": "", "disabled_at": nil, "secret_key": "new"})
		want(t, r, http.StatusOK, "")
		if r.obj(t)["disabled_reason"] != store.ReasonGone {
			t.Fatalf("read-only reason changed: %s", r.raw)
		}

		r = e.do("PATCH", path, e.alice, map[string]any{"is_active": true})
		want(t, r, http.StatusOK, "")
		if o := r.obj(t); o["is_active"] != true || o["disabled_reason"] != "" || o["disabled_at"] != nil {
			t.Fatalf("re-enabled: %s", r.raw)
		}
		if n := len(storetest.Publish(t, s, eventType, `{}`)); n != 1 {
			t.Fatalf("the re-enabled hook got %d new events, want 1", n)
		}

		want(t, e.do("DELETE", path, e.alice, nil), http.StatusNoContent, "")
		if o := e.do("GET", path, e.alice, nil).obj(t); o["disabled_reason"] != store.ReasonOwner || o["disabled_at"] == nil {
			t.Fatalf("deleted: %v", o)
		}
	})
}

func TestHookRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		body := hookBody("https://example.com/slow")
		body["config"] = map[string]any{"rate_limit_per_second": 0.5}
		h := e.createHook(e.alice, body)
		stored := storedHook(t, s, h["id"])
		if r, ok := stored.RateLimit(); !ok || r != 0.5 {
			t.Fatalf("RateLimit() = %v, %v", r, ok)
		}
		path := idPath("/whisperer/hooks/", h["id"])
		want(t, e.do("PATCH", path, e.alice, map[string]any{"config": map[string]any{"rate_limit_per_second": -1}}),
			http.StatusBadRequest, `{"config":{"rate_limit_per_second":["Ensure this value is greater than 0."]}}`)
		r := e.do("PATCH", path, e.alice, map[string]any{"config": map[string]any{"rate_limit_per_second": nil}})
		want(t, r, http.StatusOK, "")
		stored = storedHook(t, s, h["id"])
		if _, ok := stored.RateLimit(); ok {
			t.Fatalf("null did not remove the limit: %s", r.raw)
		}
	})
}
