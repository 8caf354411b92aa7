package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A hook's filter is validated, stored compact, shown, changed by PUT and
// PATCH and removed by null; bad filters are 400s naming the problem.
func TestHookFilterField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		body := hookBody("https://recv.example/a")
		body["filter"] = map[string]any{"payload.status": "paid", "payload.amount": map[string]any{"$gte": 100}}
		h := e.createHook(e.alice, body)
		if got, _ := json.Marshal(h["filter"]); string(got) != `{"payload.amount":{"$gte":100},"payload.status":"paid"}` {
			t.Fatalf("filter after create: %s", got)
		}
		path := idPath("/whisperer/hooks/", h["id"])
		r := e.do("GET", path, e.alice, nil)
		if f := r.obj(t)["filter"]; f == nil {
			t.Fatalf("GET lost the filter: %s", r.raw)
		}
		r = e.do("PATCH", path, e.alice, map[string]any{"filter": map[string]any{"event_type": map[string]any{"$startsWith": "package-"}}})
		want(t, r, http.StatusOK, "")
		if string(storedHook(t, s, h["id"]).Filter) != `{"event_type":{"$startsWith":"package-"}}` {
			t.Fatalf("stored after PATCH: %s", storedHook(t, s, h["id"]).Filter)
		}
		want(t, e.do("PATCH", path, e.alice, map[string]any{"is_active": true}), http.StatusOK, "") // filter not sent: kept
		if storedHook(t, s, h["id"]).Filter == nil {
			t.Fatal("a PATCH without filter removed it")
		}
		r = e.do("PATCH", path, e.alice, map[string]any{"filter": nil})
		if r.obj(t)["filter"] != nil || storedHook(t, s, h["id"]).Filter != nil {
			t.Fatalf("filter null did not remove it: %s", r.raw)
		}
		plain := e.createHook(e.alice, hookBody("https://recv.example/b"))
		if v, ok := plain["filter"]; !ok || v != nil {
			t.Fatalf("a hook without filter shows %v", plain["filter"])
		}

		deepPath := "payload." + strings.Repeat("a.", 10000) + "a"
		for _, c := range []struct {
			filter any
			msg    string
		}{
			{[]any{1}, "A filter must be a JSON object, got a list."},
			{"paid", "A filter must be a JSON object, got a string."},
			{map[string]any{"payload.amount": map[string]any{"$gt": map[string]any{}}}, "payload.amount: $gt expects a number, got an object."},
			{map[string]any{"payload.amount": map[string]any{"$gte": "100"}}, "payload.amount: $gte expects a number, got a string."},
			{map[string]any{"payload.x": map[string]any{"$regex": "a"}}, `payload.x: Unknown operator "$regex".`},
			{map[string]any{deepPath: 1}, "Ensure this value has no more than 16384 bytes as compact JSON (it has 20015)."},
			{map[string]any{"payload.x": map[string]any{"$in": []string{strings.Repeat("x", 1_000_000)}}}, "Ensure this value has no more than 16384 bytes as compact JSON."},
		} {
			b := hookBody("https://recv.example/bad")
			b["filter"] = c.filter
			r := e.do("POST", "/whisperer/hooks/", e.alice, b)
			doc, _ := json.Marshal(map[string][]string{"filter": {c.msg}})
			want(t, r, http.StatusBadRequest, string(doc))
		}
		// The 10,000-deep document, raw.
		raw := `{"event_type": "` + eventType + `", "target_url": "https://recv.example/deep", "filter": ` +
			strings.Repeat(`{"$not":`, 10000) + `{}` + strings.Repeat(`}`, 10000) + `}`
		r = e.do("POST", "/whisperer/hooks/", e.alice, raw)
		if r.status != http.StatusBadRequest {
			t.Fatalf("10,000-deep filter: %d %s", r.status, r.raw)
		}
	})
}

// The dry run shows what the receiver would get, signed as the sender
// signs, and whether the filter lets it through, without writing a row.
func TestHookDryRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnvDeps(t, s, api.Config{}, s, func(d *api.Deps) { d.Preview = preview(nil) })
		body := hookBody("https://recv.example/a")
		body["filter"] = map[string]any{"payload.status": "paid", "payload.amount": map[string]any{"$gte": 100}}
		body["additional_headers"] = map[string]string{"X-Api-Key": "k-123"}
		h := e.createHook(e.alice, body)
		path := idPath("/whisperer/hooks/", h["id"]) + "test/"

		r := e.do("POST", path, e.alice, map[string]any{"payload": map[string]any{"status": "paid", "amount": 150}})
		want(t, r, http.StatusOK, "")
		res := r.obj(t)
		if res["deliver"] != true || res["filtered_by"] != nil || res["reason"] != "" {
			t.Fatalf("passing event: %s", r.raw)
		}
		req := res["request"].(map[string]any)
		hdr := dryRunHeader(req)
		wh, _ := standardwebhooks.NewWebhookRaw([]byte("s3cret"))
		if err := wh.Verify([]byte(req["body"].(string)), hdr); err != nil {
			t.Fatalf("signature does not verify: %v (%s)", err, r.raw)
		}
		if hdr.Get("X-Api-Key") != "k-123" || !strings.Contains(req["body"].(string), `"payload":{"amount":150,"status":"paid"}`) {
			t.Fatalf("request: %s", r.raw)
		}

		r = e.do("POST", path, e.alice, map[string]any{"payload": map[string]any{"status": "paid", "amount": 5}})
		res = r.obj(t)
		if res["deliver"] != false || res["filtered_by"] != `{"payload.amount":{"$gte":100}}` || res["request"] == nil {
			t.Fatalf("filtered event: %s", r.raw)
		}
		r = e.do("POST", path, e.alice, map[string]any{"event_type": "order-created", "payload": 1})
		if res = r.obj(t); res["deliver"] != false || !strings.Contains(res["reason"].(string), "subscribes to") {
			t.Fatalf("other type: %s", r.raw)
		}
		// The admin sees the request with the owner's header values and
		// the signatures (the owner's secret over the admin's payload)
		// hidden; anyone else finds no such hook.
		r = e.do("POST", path, e.root, map[string]any{"payload": map[string]any{"status": "paid", "amount": 150}})
		adminHdr := r.obj(t)["request"].(map[string]any)["headers"].(map[string]any)
		for _, k := range []string{"X-Api-Key", "X-Whisperer-Signature", "Webhook-Signature"} {
			if hv, _ := adminHdr[k].([]any); len(hv) != 1 || hv[0] != "********" {
				t.Fatalf("admin sees %s: %v", k, adminHdr[k])
			}
		}
		want(t, e.do("POST", path, e.bob, map[string]any{"payload": 1}), http.StatusNotFound, "")
		want(t, e.do("POST", path, e.alice, map[string]any{}), http.StatusBadRequest, `{"payload": ["This field is required."]}`)
		want(t, e.do("POST", path, e.alice, map[string]any{"payload": 1, "x": 1}), http.StatusBadRequest, "")
		want(t, e.do("POST", "/whisperer/hooks/99999/test/", e.alice, map[string]any{"payload": 1}), http.StatusNotFound, "")
		// Nothing was written.
		jobs, _, err := s.ListEvents(t.Context(), scopeAll, webhook.EventFilter{}, pageAll)
		if err != nil || len(jobs) != 0 {
			t.Fatalf("the dry run wrote %d events (%v)", len(jobs), err)
		}
	})
}
