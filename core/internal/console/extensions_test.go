package console_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// registerExtensions registers into the node's registries, as a plugin
// would, the filter "big" (amount >= kwargs.min) and the transform
// "envelope" (wraps the body).
func registerExtensions(t *testing.T, n *node) {
	t.Helper()
	err := n.App.Filters.Register("test", "big", webhook.Filter{
		Match: func(_ context.Context, kw json.RawMessage, _ string, payload json.RawMessage) (bool, error) {
			var k struct{ Min float64 }
			var p struct{ Amount float64 }
			_ = json.Unmarshal(kw, &k)
			_ = json.Unmarshal(payload, &p)
			return p.Amount >= k.Min, nil
		},
	})
	if err == nil {
		err = n.App.Transforms.Register("test", "envelope", webhook.Transform{
			Apply: func(_ context.Context, _ json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
				return webhook.TransformResult{Body: append(append([]byte(`{"wrapped":`), in.Body...), '}')}, nil
			},
		})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The hook form sets a plugin filter and a transform, shows their API
// errors next to the fields (never a 5xx, whatever is typed), and its
// "try it" panel answers with the dry run.
func TestHookFormFilterTransformTryIt(t *testing.T) {
	n := startNode(t)
	registerExtensions(t, n)
	b := n.browser(t)
	b.signIn(n.aliceKey)
	page := b.get("/hooks/new")
	if !strings.Contains(page.body, `<option value="big">big</option>`) || !strings.Contains(page.body, `<option value="envelope">envelope</option>`) {
		t.Fatalf("the form does not offer the plugin filter and the transform: %s", page.body)
	}
	csrf := csrfField.FindStringSubmatch(page.body)[1]

	big := strings.Repeat("x", 1_000_000)
	for _, c := range []struct {
		set    map[string]string
		id     string // of the error list
		status int
	}{
		{map[string]string{"filter": `"paid"`}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter": `{"payload.x": {"$regex": "a"}}`}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter": `{"payload.x": {"$gt": "a"}, "payload.y": {"$in": 5}}`}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter": strings.Repeat(`{"$not":`, 1000) + "{}" + strings.Repeat("}", 1000)}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter": strings.Repeat(`{"$not":`, 10000) + "{}" + strings.Repeat("}", 10000)}, "", http.StatusBadRequest},
		{map[string]string{"filter": `{"plugin": 5}`}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter_plugin": "nope"}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"filter_plugin": "big", "filter_kwargs": "[1]"}, "filter-errors", http.StatusBadRequest},
		{map[string]string{"transform": "nope"}, "transform-errors", http.StatusBadRequest},
		{map[string]string{"transform": "envelope", "transform_kwargs": `{"a": "` + strings.Repeat("x", 5000) + `"}`}, "transform-errors", http.StatusBadRequest},
		{map[string]string{"filter": `{"payload.x": "` + big + `"}`}, "", http.StatusBadRequest},
	} {
		v := hookFormValues(csrf)
		for k, x := range c.set {
			v.Set(k, x)
		}
		p := b.do(http.MethodPost, "/hooks/new", v)
		if p.status != c.status || c.id != "" && !strings.Contains(p.body, `id="`+c.id+`"`) {
			t.Fatalf("%.200v: %d %.400s", c.set, p.status, p.body)
		}
		if c.id == "" && !strings.Contains(p.body, "This form is too large") {
			t.Fatalf("%.200v: %.400s", c.set, p.body)
		}
	}

	v := hookFormValues(csrf)
	v.Set("filter_plugin", "big")
	v.Set("filter_kwargs", `{"min": 100}`)
	v.Set("transform", "envelope")
	p := b.do(http.MethodPost, "/hooks/new", v)
	m := hookLocation.FindStringSubmatch(p.header.Get("Location"))
	if m == nil {
		t.Fatalf("create = %d %s %.400s", p.status, p.header.Get("Location"), p.body)
	}
	edit := b.get("/hooks/" + m[1] + "/edit")
	if !strings.Contains(edit.body, `<option value="big" selected>`) || !strings.Contains(edit.body, `<option value="envelope" selected>`) ||
		!strings.Contains(edit.body, `id="try-button"`) {
		t.Fatalf("edit page: %s", edit.body)
	}
	try := func(payload string) string {
		p := b.do(http.MethodPost, "/hooks/"+m[1]+"/try", map[string][]string{"csrf": {csrf}, "try_payload": {payload}})
		if p.status != http.StatusOK {
			t.Fatalf("try %s = %d %s", payload, p.status, p.body)
		}
		return html.UnescapeString(p.body)
	}
	if out := try(`{"amount": 150}`); !strings.Contains(out, `id="try-verdict">Delivered`) ||
		!strings.Contains(out, `{"wrapped":{"event":{"type":"`+eventType) || !strings.Contains(out, "Webhook-Signature") {
		t.Fatalf("passing try: %s", out)
	}
	if out := try(`{"amount": 5}`); !strings.Contains(out, `id="try-verdict">Not delivered`) || !strings.Contains(out, "plugin filter big refuses") {
		t.Fatalf("filtered try: %s", out)
	}
	if out := try(`nope`); !strings.Contains(out, `id="try-errors"`) {
		t.Fatalf("bad payload: %s", out)
	}
}
