package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// frame returns a context for the iframe (an out-of-process frame: it is
// another site) whose URL starts with prefix, once it is there.
func (c *chrome) frame(t *testing.T, prefix string) context.Context {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		targets, err := chromedp.Targets(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range targets {
			if ti.Type == "iframe" && strings.HasPrefix(ti.URL, prefix) {
				ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithTargetID(ti.TargetID))
				t.Cleanup(cancel)
				// The first Run attaches to the target for the context's
				// lifetime: with ctx itself, not one with a deadline.
				if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === 'complete'`)); err != nil {
					t.Fatal(err)
				}
				return ctx
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no iframe at %s", prefix)
	return nil
}

// evalIn evaluates expr in the frame (through Poll, which finds the
// frame's execution context) and returns its value as text; a promise's
// value is awaited.
func evalIn(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	key := "__r" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(Promise.resolve(`+expr+`).then(v => window.`+key+` = String(v)), true)`)); err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Poll[string](`window.`+key))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func pollIn(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
}

// A portal link inside an iframe of the application's page (another
// site): the code is exchanged and removed from the address, the portal
// shows the user's hooks and no buttons that change them, another
// tenant's hook is a 404, a forged POST is refused, and the link works
// once. (The framing headers for other origins are TestPortal's.)
func TestBrowserPortalInIframe(t *testing.T) {
	c := newChrome(t)
	var portalURL atomic.Value
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>The application</title><h1>Your webhooks</h1><iframe id="portal" src="%s" width="900" height="700"></iframe>`, portalURL.Load())
	}))
	defer app.Close()
	// The console at localhost, the application at 127.0.0.1: two sites.
	n := startNode(t, func(cfg *config.Config) { cfg.Console.FrameAncestors = []string{app.URL} })
	portalOrigin := strings.Replace(n.url, "127.0.0.1", "localhost", 1)
	hook := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/alice-receiver")
	bobs := storetest.Hook(t, n.Store, n.bob.ID, eventType, "https://example.com/bob-receiver")

	link := strings.Replace(n.portalLink(t, n.rootKey, `{"user": "alice", "capabilities": ["read"]}`), n.url, portalOrigin, 1)
	portalURL.Store(link)
	c.do(t, "the application's page", chromedp.Navigate(app.URL), chromedp.WaitVisible(chromedp.ID("portal")))
	f := c.frame(t, portalOrigin+"/hooks")
	pollIn(t, f, `document.getElementById('hooks') !== null`)
	if got := evalIn(t, f, `location.href`); got != portalOrigin+"/hooks" {
		t.Errorf("the portal's address is %q: the code is still there", got)
	}
	if got := evalIn(t, f, `document.querySelector('#hooks tbody').innerText`); !strings.Contains(got, "alice-receiver") || strings.Contains(got, "bob-receiver") {
		t.Fatalf("portal hooks: %q", got)
	}
	if got := evalIn(t, f, `document.querySelectorAll('form[action$="/active"], #new-hook, a[href$="/edit"]').length`); got != "0" {
		t.Errorf("a read-only portal shows %s controls that change hooks", got)
	}
	if got := evalIn(t, f, `document.getElementById('portal-user').innerText`); !strings.Contains(got, "alice") {
		t.Errorf("portal user: %q", got)
	}
	// A forged POST from inside the portal (its own origin, the session's
	// token): the capability is missing, so it is refused.
	status := evalIn(t, f, fmt.Sprintf(`(async () => {
		const csrf = document.querySelector('input[name=csrf]').value;
		const r = await fetch('/hooks/%d/active', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'active=no&csrf=' + csrf});
		return r.status; })()`, hook.ID))
	if status != "403" {
		t.Errorf("forged POST in a read-only portal = %s, want 403", status)
	}
	if h, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, hook.ID); !h.IsActive {
		t.Fatal("a read-only portal deactivated the hook")
	}
	// Another tenant's hook: 404 inside the portal.
	c404 := evalIn(t, f, fmt.Sprintf(`(async () => (await fetch('/hooks/%d')).status)()`, bobs.ID))
	if c404 != "404" {
		t.Errorf("bob's hook in alice's portal = %s", c404)
	}
	// The code used, the link is dead: a second frame of it shows so.
	c.do(t, "the link again", chromedp.Navigate(app.URL), chromedp.WaitVisible(chromedp.ID("portal")))
	again := c.frame(t, portalOrigin+"/portal")
	pollIn(t, again, `document.getElementById('portal-status').innerText.includes('already used')`)
	if got := evalIn(t, again, `location.href`); got != portalOrigin+"/portal" {
		t.Errorf("the used link's address is %q", got)
	}
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d dialogs", d)
	}
	// Leave, so that no frame holds a connection while the node stops.
	c.do(t, "leave", chromedp.Navigate("about:blank"))
}
