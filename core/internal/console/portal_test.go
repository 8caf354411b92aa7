package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/console"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// portalLink asks the API (as the holder of key) for a portal URL.
func (n *node) portalLink(t *testing.T, key, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/whisperer/portal/sessions/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Token "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out struct{ URL string }
	if res.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("portal link = %d %s", res.StatusCode, raw)
	}
	return out.URL
}

var portalCode = regexp.MustCompile(`/portal#code=([0-9a-f]{64})$`)

// portalClient exchanges the link's code as the portal's script does and
// returns a browser carrying the portal cookie (set by hand: Go's cookie
// jar keeps Secure cookies for https only).
func (n *node) portalClient(t *testing.T, link string) (*browser, *http.Cookie) {
	t.Helper()
	m := portalCode.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("link %q", link)
	}
	b := n.browser(t)
	p := b.do(http.MethodPost, "/portal/session", url.Values{"code": {m[1]}}, "Sec-Fetch-Site", "same-origin")
	if p.status != http.StatusNoContent {
		t.Fatalf("exchange = %d %s", p.status, p.body)
	}
	var c *http.Cookie
	for _, ck := range (&http.Response{Header: p.header}).Cookies() {
		if ck.Name == "whisperer_portal" {
			c = ck
		}
	}
	if c == nil {
		t.Fatalf("no portal cookie: %v", p.header)
	}
	b.cookie = c.Name + "=" + c.Value
	return b, c
}

// A portal link opens once; its session sees one user's rows as that
// user, can do only what it was given, and may be framed by the
// configured origins only.
func TestPortal(t *testing.T) {
	n := startNode(t, func(cfg *config.Config) {
		cfg.Console.FrameAncestors = []string{"https://app.example.com", "http://localhost:9999"}
		cfg.Console.AppName = "Acme <Hooks>"
		cfg.Console.AccentColor = "#aa0033"
		cfg.Console.LogoURL = "https://cdn.example.com/logo.png"
	})
	_, pubKey := storetest.User(t, n.Store, "pub", webhook.RolePublisher)
	hook := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/alice")
	bobs := storetest.Hook(t, n.Store, n.bob.ID, eventType, "https://example.com/bob")

	link := n.portalLink(t, pubKey, `{"user": "alice"}`)
	if !strings.HasPrefix(link, n.url+"/portal#code=") {
		t.Fatalf("link %q", link)
	}
	b, c := n.portalClient(t, link)
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteNoneMode || !c.Partitioned || c.MaxAge < 14*60 || c.MaxAge > 15*60 {
		t.Errorf("portal cookie %+v", c)
	}
	// Once only.
	code := portalCode.FindStringSubmatch(link)[1]
	if p := n.browser(t).do(http.MethodPost, "/portal/session", url.Values{"code": {code}}, "Sec-Fetch-Site", "same-origin"); p.status != http.StatusForbidden {
		t.Fatalf("second exchange = %d", p.status)
	}
	// From another site: refused (no session forced on a browser).
	link2 := n.portalLink(t, pubKey, `{"user": "alice"}`)
	code2 := portalCode.FindStringSubmatch(link2)[1]
	if p := n.browser(t).do(http.MethodPost, "/portal/session", url.Values{"code": {code2}}, "Sec-Fetch-Site", "cross-site"); p.status != http.StatusForbidden {
		t.Fatalf("cross-site exchange = %d", p.status)
	}

	p := b.get("/hooks")
	if p.status != http.StatusOK || !strings.Contains(p.body, "https://example.com/alice") || strings.Contains(p.body, "https://example.com/bob") {
		t.Fatalf("portal hooks = %d %s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "frame-ancestors https://app.example.com http://localhost:9999") ||
		!strings.Contains(csp, "img-src 'self' https://cdn.example.com;") || p.header.Get("X-Frame-Options") != "" {
		t.Errorf("portal framing headers: CSP %q, XFO %q", csp, p.header.Get("X-Frame-Options"))
	}
	for _, absent := range []string{"Deactivate", `id="new-hook"`, "/plugins", "Sign out"} {
		if strings.Contains(p.body, absent) {
			t.Errorf("a read-only portal shows %q", absent)
		}
	}
	for _, present := range []string{"Acme &lt;Hooks&gt;", `<img class="logo" src="https://cdn.example.com/logo.png"`, `href="/assets/brand.css"`, "(read only)"} {
		if !strings.Contains(p.body, present) {
			t.Errorf("portal page lacks %q", present)
		}
	}
	if css := b.get("/assets/brand.css"); !strings.Contains(css.body, "--accent: #aa0033;") {
		t.Errorf("brand.css = %q", css.body)
	}
	id := strconv.FormatInt(hook.ID, 10)
	if p := b.get("/hooks/" + strconv.FormatInt(bobs.ID, 10)); p.status != http.StatusNotFound {
		t.Errorf("bob's hook in alice's portal = %d", p.status)
	}
	csrf := csrfField.FindStringSubmatch(p.body)[1]
	for _, path := range []string{"/hooks/" + id + "/active", "/hooks/new", "/hooks/" + id + "/edit", "/hooks/" + id + "/rotate"} {
		if p := b.do(http.MethodPost, path, url.Values{"csrf": {csrf}, "active": {"no"}, "secret_key": {"x"}}); p.status != http.StatusForbidden {
			t.Errorf("read-only portal POST %s = %d", path, p.status)
		}
	}
	for _, path := range []string{"/hooks/new", "/hooks/" + id + "/edit", "/plugins", "/event-types"} {
		if p := b.get(path); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
			t.Errorf("read-only portal GET %s = %d", path, p.status)
		}
	}
	if h, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, hook.ID); !h.IsActive {
		t.Fatal("a read-only portal deactivated the hook")
	}
	// The sign-in pages stay unframeable.
	if p := n.browser(t).get("/sign-in"); !strings.HasSuffix(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("sign-in framing: %v", p.header)
	}

	// A portal of an admin is a plain user's; manage_hooks may change hooks.
	rootHook := storetest.Hook(t, n.Store, n.root.ID, eventType, "https://example.com/root")
	b2, _ := n.portalClient(t, n.portalLink(t, n.rootKey, `{"user": "root", "capabilities": ["manage_hooks"], "ttl": "1h"}`))
	if p := b2.get("/hooks"); strings.Contains(p.body, "https://example.com/alice") || !strings.Contains(p.body, "https://example.com/root") || strings.Contains(p.body, `name="user"`) {
		t.Errorf("root's portal shows others' hooks or the tenant picker: %s", p.body)
	}
	if p := b2.get("/plugins"); p.status != http.StatusNotFound {
		t.Errorf("root's portal GET /plugins = %d", p.status)
	}
	tok := b2.csrf("/hooks")
	if p := b2.do(http.MethodPost, "/hooks/"+strconv.FormatInt(rootHook.ID, 10)+"/active", url.Values{"csrf": {tok}, "active": {"no"}}); p.status != http.StatusSeeOther {
		t.Fatalf("manage_hooks portal deactivates = %d %s", p.status, p.body)
	}
	// Ending it.
	if p := b2.do(http.MethodPost, "/sign-out", url.Values{"csrf": {tok}}); p.status != http.StatusOK {
		t.Fatalf("end = %d", p.status)
	}
	if p := b2.get("/hooks"); p.status != http.StatusForbidden || !strings.Contains(p.body, "portal session has ended") {
		t.Fatalf("after ending = %d %s", p.status, p.body)
	}
}

// The branding and framing settings are checked.
func TestPortalConfig(t *testing.T) {
	for _, c := range []console.Config{
		{AccentColor: "red"}, {AccentColor: "#12345g"}, {LogoURL: "http://cdn.example.com/x.png"},
		{LogoURL: "https://cdn.example.com/x.png'; script-src *"}, {FrameAncestors: []string{"https://app.example.com/path"}},
		{FrameAncestors: []string{"*"}}, {FrameAncestors: []string{"https://a.example.com; script-src *"}},
		{AppName: strings.Repeat("x", 65)}, {AppName: "a\nb"},
	} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v is valid", c)
		}
	}
	ok := console.Config{APIBase: "/whisperer/", MaxRetries: 18,
		AccentColor: "#A0b1C2", LogoURL: "https://cdn.example.com/x.png", FrameAncestors: []string{"https://app.example.com:8443"}}
	if err := ok.WithDefaults().Validate(); err != nil {
		t.Error(err)
	}
}
