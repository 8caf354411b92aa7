package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/transform"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// preview is the sender's Preview with transforms tr (nil: none).
func preview(tr delivery.Transforms) api.PreviewFunc {
	return func(ctx context.Context, h *webhook.Webhook, ev *webhook.Event, now time.Time) ([]byte, http.Header, error) {
		return delivery.Preview(ctx, tr, h, ev, now)
	}
}

// dryRunHeader is a dry run's request headers as an http.Header.
func dryRunHeader(req map[string]any) http.Header {
	hdr := http.Header{}
	for k, vs := range req["headers"].(map[string]any) {
		for _, v := range vs.([]any) {
			hdr.Add(k, v.(string))
		}
	}
	return hdr
}

// minValidator wants {"min": a number} and cleans it to an integer.
func minValidator(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
	var v struct{ Min *float64 }
	if json.Unmarshal(kw, &v) != nil || v.Min == nil {
		return nil, map[string]any{"min": []string{"A valid number is required."}}, nil
	}
	b, _ := json.Marshal(map[string]int{"min": int(*v.Min)})
	return b, nil, nil
}

// extensions registers, as a plugin would, the filters "big" (amount >=
// min), "broken" (always fails, no validator), "trapping" (its validator
// fails) and "deepening" (its validator nests the kwargs 8 deep),
// and the transforms "envelope" (wraps the body, adds X-Shape), "cancel",
// "bad-header" (sets a protected header) and "fail".
func extensions(t *testing.T) (*filter.Registry, *transform.Registry) {
	t.Helper()
	fr, tr := &filter.Registry{}, &transform.Registry{}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fr.Register("test", "big", webhook.Filter{
		Match: func(_ context.Context, kw json.RawMessage, _ string, payload json.RawMessage) (bool, error) {
			var k struct{ Min float64 }
			var p struct{ Amount float64 }
			_ = json.Unmarshal(kw, &k)
			if err := json.Unmarshal(payload, &p); err != nil {
				return false, err
			}
			return p.Amount >= k.Min, nil
		},
		Validate: minValidator,
	}))
	must(fr.Register("test", "broken", webhook.Filter{
		Match: func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) {
			return false, errors.New("trap: unreachable")
		},
	}))
	must(fr.Register("test", "trapping", webhook.Filter{
		Match: func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) { return true, nil },
		Validate: func(context.Context, json.RawMessage) (json.RawMessage, map[string]any, error) {
			return nil, nil, errors.New("trap")
		},
	}))
	must(fr.Register("test", "deepening", webhook.Filter{
		Match: func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) { return false, nil },
		// Cleans any kwargs to 8 levels: storable kwargs, but a filter
		// document 9 deep.
		Validate: func(context.Context, json.RawMessage) (json.RawMessage, map[string]any, error) {
			return json.RawMessage(strings.Repeat(`{"a":`, 8) + `1` + strings.Repeat(`}`, 8)), nil, nil
		},
	}))
	must(tr.Register("test", "envelope", webhook.Transform{
		Apply: func(_ context.Context, kw json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
			var k struct{ Shape string }
			_ = json.Unmarshal(kw, &k)
			body := append(append([]byte(`{"wrapped":`), in.Body...), '}')
			return webhook.TransformResult{Body: body, Headers: map[string]string{"X-Shape": k.Shape}}, nil
		},
		Validate: func(_ context.Context, kw json.RawMessage) (json.RawMessage, map[string]any, error) {
			var k struct{ Shape string }
			if json.Unmarshal(kw, &k) != nil || k.Shape == "" {
				return nil, map[string]any{"shape": []string{"This field is required."}}, nil
			}
			return kw, nil, nil
		},
	}))
	must(tr.Register("test", "cancel", webhook.Transform{
		Apply: func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Cancel: true}, nil
		},
	}))
	must(tr.Register("test", "bad-header", webhook.Transform{
		Apply: func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Headers: map[string]string{"webhook_signature": "v1,forged"}}, nil
		},
	}))
	return fr, tr
}

// bigEnvelope is a hook body with the plugin filter big (kwargs min) and
// the transform envelope (shape v2).
func bigEnvelope(target string, min float64) map[string]any {
	b := hookBody(target)
	b["filter"] = map[string]any{"plugin": "big", "kwargs": map[string]any{"min": min}}
	b["transform"] = map[string]any{"name": "envelope", "kwargs": map[string]any{"shape": "v2"}}
	return b
}

func extensionEnv(t *testing.T, s *store.Store) *env {
	fr, tr := extensions(t)
	return newEnvDeps(t, s, api.Config{}, s, func(d *api.Deps) {
		d.Filters, d.Transforms, d.Preview = fr, tr, preview(tr)
	})
}

// Plugin filters and transforms are validated at save: the name must be
// registered, the kwargs pass the plugin's validator (cleaned as it
// returns them), and every hostile shape is a 400 naming the field.
func TestHookPluginFilterAndTransformFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := extensionEnv(t, s)
		h := e.createHook(e.alice, bigEnvelope("https://recv.example/ok", 99.5))
		if f, _ := json.Marshal(h["filter"]); string(f) != `{"kwargs":{"min":99},"plugin":"big"}` {
			t.Fatalf("filter stored as %s", f)
		}
		if tf, _ := json.Marshal(h["transform"]); string(tf) != `{"kwargs":{"shape":"v2"},"name":"envelope"}` {
			t.Fatalf("transform stored as %s", tf)
		}
		// Absent kwargs are {}; null removes the transform.
		b := hookBody("https://recv.example/nokw")
		b["filter"] = map[string]any{"plugin": "broken"}
		b["transform"] = map[string]any{"name": "cancel"}
		h = e.createHook(e.alice, b)
		if f, _ := json.Marshal(h["filter"]); string(f) != `{"kwargs":{},"plugin":"broken"}` {
			t.Fatalf("filter without kwargs: %s", f)
		}
		r := e.do("PATCH", idPath("/whisperer/hooks/", h["id"]), e.alice, map[string]any{"transform": nil})
		want(t, r, http.StatusOK, "")
		if r.obj(t)["transform"] != nil {
			t.Fatalf("transform not removed: %s", r.raw)
		}

		mb := strings.Repeat("x", 1_000_000)
		for _, c := range []struct {
			field string
			value any
			doc   string
		}{
			{"filter", "paid", `{"filter": ["A filter must be a JSON object, got a string."]}`},
			{"filter", map[string]any{"payload.x": map[string]any{"$regex": "a"}}, `{"filter": ["payload.x: Unknown operator \"$regex\"."]}`},
			{"filter", map[string]any{"plugin": 5}, `{"filter": ["\"plugin\" must be the name of a plugin filter (a string), got a number."]}`},
			{"filter", map[string]any{"plugin": "nope"}, `{"filter": {"plugin": ["\"nope\" is not a valid choice."]}}`},
			{"filter", map[string]any{"plugin": "big", "kwargs": []int{1}}, `{"filter": ["\"kwargs\" must be a JSON object, got a list."]}`},
			{"filter", map[string]any{"plugin": "big", "kwargs": map[string]any{}}, `{"filter": {"kwargs": {"min": ["A valid number is required."]}}}`},
			{"filter", map[string]any{"plugin": "trapping"}, `{"filter": {"kwargs": ["The validator of filter \"trapping\" failed on these kwargs."]}}`},
			{"filter", map[string]any{"plugin": "big", "kwargs": map[string]any{"x": mb}}, `{"filter": ["Ensure this value has no more than 16384 bytes as compact JSON."]}`},
			// Kwargs over a countdown's bound (4 KiB) but within a filter's
			// (16 KiB) are the client's: refused before any validator.
			{"filter", map[string]any{"plugin": "broken", "kwargs": map[string]any{"x": strings.Repeat("x", 5000)}},
				`{"filter": {"kwargs": ["Ensure this value has no more than 4096 bytes as compact JSON (it has 5008)."]}}`},
			{"filter", map[string]any{"plugin": "big", "kwargs": map[string]any{"min": 1, "x": strings.Repeat("x", 10000)}},
				`{"filter": {"kwargs": ["Ensure this value has no more than 4096 bytes as compact JSON (it has 10016)."]}}`},
			// Cleaned kwargs that make the stored document uncompilable.
			{"filter", map[string]any{"plugin": "deepening"},
				`{"filter": {"kwargs": ["The validator of filter \"deepening\" returned kwargs that make the filter unusable: Ensure this value is nested no more than 8 levels deep (it has 9)."]}}`},
			{"transform", "envelope", `{"transform": {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}}`},
			{"transform", map[string]any{"name": "nope"}, `{"transform": {"name": ["\"nope\" is not a valid choice."]}}`},
			{"transform", map[string]any{"kwargs": map[string]any{}}, `{"transform": {"name": ["This field is required."]}}`},
			{"transform", map[string]any{"name": "envelope", "url": "https://elsewhere"}, `{"transform": {"url": ["Unknown field."]}}`},
			{"transform", map[string]any{"name": "envelope", "kwargs": "x"}, `{"transform": {"kwargs": ["Expected a dictionary of items but got type \"str\"."]}}`},
			{"transform", map[string]any{"name": "envelope", "kwargs": map[string]any{}}, `{"transform": {"kwargs": {"shape": ["This field is required."]}}}`},
			{"transform", map[string]any{"name": "envelope", "kwargs": map[string]any{"shape": mb}}, `{"transform": {"kwargs": ["Ensure this value has no more than 4096 bytes as compact JSON (it has 1000012)."]}}`},
		} {
			b := hookBody("https://recv.example/bad")
			b[c.field] = c.value
			r := e.do("POST", "/whisperer/hooks/", e.alice, b)
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s %v: %d %.300s", c.field, c.value, r.status, r.raw)
			}
			if !strings.HasPrefix(c.doc, `{"filter": ["Ensure`) {
				want(t, r, http.StatusBadRequest, c.doc)
			} else if !strings.Contains(string(r.raw), "Ensure this value has no more than 16384 bytes") {
				t.Fatalf("1 MB filter: %.300s", r.raw)
			}
		}
		// 10,000 levels deep, in a plugin filter's kwargs and a transform's.
		deep := strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000)
		for _, field := range []string{`"filter": {"plugin": "big", "kwargs": ` + deep + `}`,
			`"transform": {"name": "envelope", "kwargs": ` + deep + `}`} {
			raw := `{"event_type": "` + eventType + `", "target_url": "https://recv.example/deep", ` + field + `}`
			if r := e.do("POST", "/whisperer/hooks/", e.alice, raw); r.status != http.StatusBadRequest {
				t.Fatalf("10,000 deep: %d %.300s", r.status, r.raw)
			}
		}
	})
}

// The dry run runs the plugin filter and the transform: the verdict, the
// transformed body and headers, signatures over the transformed bytes,
// and a failing or cancelling transform reported with no request.
func TestHookDryRunPlugins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := extensionEnv(t, s)
		h := e.createHook(e.alice, bigEnvelope("https://recv.example/a", 100))
		path := idPath("/whisperer/hooks/", h["id"]) + "test/"
		before, _, _ := s.ListEvents(context.Background(), scopeAll, webhook.EventFilter{}, pageAll)

		r := e.do("POST", path, e.alice, map[string]any{"payload": map[string]any{"amount": 150}})
		want(t, r, http.StatusOK, "")
		res := r.obj(t)
		if res["deliver"] != true || res["filter_error"] != nil {
			t.Fatalf("passing event: %s", r.raw)
		}
		req := res["request"].(map[string]any)
		hdr := dryRunHeader(req)
		body := req["body"].(string)
		if !strings.HasPrefix(body, `{"wrapped":{`) || hdr.Get("X-Shape") != "v2" {
			t.Fatalf("not transformed: %s", r.raw)
		}
		wh, _ := standardwebhooks.NewWebhookRaw([]byte("s3cret"))
		if err := wh.Verify([]byte(body), hdr); err != nil {
			t.Fatalf("the signature does not cover the transformed body: %v", err)
		}

		r = e.do("POST", path, e.alice, map[string]any{"payload": map[string]any{"amount": 5}})
		if res = r.obj(t); res["deliver"] != false || res["filtered_by"] != `{"plugin":"big","kwargs":{"min":100}}` ||
			!strings.Contains(res["reason"].(string), "plugin filter big refuses") {
			t.Fatalf("filtered event: %s", r.raw)
		}

		for name, wantMsg := range map[string]string{
			"cancel":     `cancelled by transform \"cancel\"`,
			"bad-header": `it sets \"webhook_signature\", which is protected`,
		} {
			b := hookBody("https://recv.example/" + name)
			b["filter"] = map[string]any{"plugin": "broken"}
			b["transform"] = map[string]any{"name": name}
			h := e.createHook(e.alice, b)
			r := e.do("POST", idPath("/whisperer/hooks/", h["id"])+"test/", e.alice, map[string]any{"payload": 1})
			want(t, r, http.StatusOK, "")
			res := r.obj(t)
			if res["deliver"] != true || res["filter_error"] != "trap: unreachable" || res["request"] != nil ||
				!bytes.Contains(r.raw, []byte(wantMsg)) || res["transform"].(map[string]any)["cancelled"] != (name == "cancel") {
				t.Fatalf("%s: %s", name, r.raw)
			}
		}
		after, _, _ := s.ListEvents(context.Background(), scopeAll, webhook.EventFilter{}, pageAll)
		if len(after) != len(before) {
			t.Fatalf("the dry run wrote %d rows", len(after)-len(before))
		}
	})
}

// While the plugins load, a hook naming a plugin filter or a transform
// nobody registers yet is a 503 with Retry-After, not a 400.
func TestHookExtensionsWhilePluginsLoad(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	fr, tr := extensions(t)
	var asked []string
	e := newEnvDeps(t, s, api.Config{}, s, func(d *api.Deps) {
		d.Filters, d.Transforms = fr, tr
		d.AwaitsExtensions = func(f, tf string) bool {
			asked = append(asked, f+"|"+tf)
			return f == "later" || tf == "later"
		}
	})
	for _, field := range []map[string]any{
		{"filter": map[string]any{"plugin": "later"}},
		{"transform": map[string]any{"name": "later"}},
	} {
		b := hookBody("https://recv.example/later")
		for k, v := range field {
			b[k] = v
		}
		if r := e.do("POST", "/whisperer/hooks/", e.alice, b); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("%v: %d %s", field, r.status, r.raw)
		}
	}
	if strings.Join(asked, ",") != "later|,|later" {
		t.Fatalf("asked about %q", asked)
	}
}
