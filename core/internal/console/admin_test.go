package console_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/config"
)

// withPlugin copies the plugin file src into the node's plugin directory
// as file.
func withPlugin(t *testing.T, src, file string) func(*config.Config) {
	return func(cfg *config.Config) {
		wasm, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Plugins.Dir, file), wasm, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withBrokenPlugin adds a plugin file that fails to load.
func withBrokenPlugin(t *testing.T) func(*config.Config) {
	return withPlugin(t, filepath.Join("..", "plugin", "testdata", "badmanifest.wasm"), "broken.wasm")
}

// The plugins and event types pages are an admin's: what each plugin file
// registers (countdowns, filters, transforms), its load error, its calls
// by kind; event types listed and added with the CLI's rule. Anyone else
// gets 404. The API reference is everyone's.
func TestAdminPages(t *testing.T) {
	n := startNode(t, withCustomCountdown(t), withBrokenPlugin(t), withPlugin(t, filepath.Join("testdata", "extensions.wasm"), "extensions.wasm"))
	root := n.browser(t)
	root.signIn(n.rootKey)
	root.get("/hooks/preview?choice=custom&kwargs=" + url.QueryEscape(`{"factor": 2}`)) // calls the plugin
	// A hook with the plugin's filter and transform, tried once: a call of
	// each.
	v := hookFormValues(root.csrf("/hooks/new"))
	v.Set("filter_plugin", "all")
	v.Set("transform", "stamp")
	created := root.do(http.MethodPost, "/hooks/new", v)
	m := hookLocation.FindStringSubmatch(created.header.Get("Location"))
	if m == nil {
		t.Fatalf("create = %d %s %.400s", created.status, created.header.Get("Location"), created.body)
	}
	if tried := root.do(http.MethodPost, "/hooks/"+m[1]+"/try", url.Values{"csrf": v["csrf"], "try_payload": {`{"a": 1}`}}); !strings.Contains(tried.body, "X-Stamped") {
		t.Fatalf("try = %d %s", tried.status, tried.body)
	}
	p := root.get("/plugins")
	if p.status != http.StatusOK {
		t.Fatalf("plugins = %d", p.status)
	}
	row := func(file string) string {
		i := strings.Index(p.body, "<td>"+file)
		if i < 0 {
			t.Fatalf("no row for %s: %s", file, p.body)
		}
		return p.body[i : i+strings.Index(p.body[i:], "</tr>")]
	}
	if r := row("custom.wasm"); !strings.Contains(r, "countdowns: custom") || !strings.Contains(r, `class="ok">loaded`) || strings.Contains(r, "<td>0</td>\n  <td>0</td>") {
		t.Errorf("custom.wasm row: %s", r)
	}
	if r := row("extensions.wasm"); !strings.Contains(r, "<div>filters: all</div>") || !strings.Contains(r, "<div>transforms: stamp</div>") ||
		!strings.Contains(r, `<div class="plugin-call">filter: n=1, mean `) || !strings.Contains(r, `<div class="plugin-call">transform: n=1, mean `) ||
		!strings.Contains(r, "<td>2</td>") {
		t.Errorf("extensions.wasm row: %s", r)
	}
	if r := row("broken.wasm"); !strings.Contains(r, "not loaded") || !strings.Contains(r, "plugin-error") {
		t.Errorf("broken.wasm row: %s", r)
	}

	csrf := root.csrf("/event-types")
	if p := root.do(http.MethodPost, "/event-types", url.Values{"csrf": {csrf}, "name": {"order.paid"}}); p.status != http.StatusSeeOther {
		t.Fatalf("add = %d %s", p.status, p.body)
	}
	hostile := `<script>alert(1)</script>`
	if p := root.do(http.MethodPost, "/event-types", url.Values{"csrf": {csrf}, "name": {hostile}}); p.status != http.StatusSeeOther {
		t.Fatalf("add hostile = %d %s", p.status, p.body)
	}
	if p := root.get("/event-types"); !strings.Contains(p.body, "<li>order.paid</li>") || strings.Contains(p.body, hostile) ||
		!strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("event types: %s", p.body)
	}
	p = root.do(http.MethodPost, "/event-types", url.Values{"csrf": {csrf}, "name": {"has space"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="et-error"`) {
		t.Errorf("bad name = %d %s", p.status, p.body)
	}
	if p := root.do(http.MethodPost, "/event-types", url.Values{"name": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("add without csrf = %d", p.status)
	}

	alice := n.browser(t)
	alice.signIn(n.aliceKey)
	for _, path := range []string{"/plugins", "/event-types"} {
		if p := alice.get(path); p.status != http.StatusNotFound {
			t.Errorf("alice GET %s = %d", path, p.status)
		}
	}
	tok := alice.csrf("/hooks")
	if p := alice.do(http.MethodPost, "/event-types", url.Values{"csrf": {tok}, "name": {"alice.type"}}); p.status != http.StatusNotFound {
		t.Errorf("alice adds an event type: %d", p.status)
	}
	if p := alice.get("/hooks"); strings.Contains(p.body, `href="/plugins"`) {
		t.Error("alice's menu has the admin pages")
	}
	docs := alice.get("/api-docs")
	for _, want := range []string{"<code>PATCH /whisperer/hooks/{id}/</code>", `id="schema-HookInput"`, `<a href="#schema-HookInput">HookInput</a>`} {
		if !strings.Contains(docs.body, want) {
			t.Errorf("API reference lacks %s", want)
		}
	}
}
