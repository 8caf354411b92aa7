package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// chrome is a headless chromium tab that counts the JavaScript dialogs
// (alert, confirm, prompt) the pages open, and dismisses them.
type chrome struct {
	ctx     context.Context
	dialogs atomic.Int64
	last    atomic.Value // the last dialog's message
}

// newChrome starts Debian's chromium, or skips the test when there is
// none (fails instead with WHISPERER_TEST_BROWSER=1, as CI sets).
func newChrome(t *testing.T) *chrome {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("WHISPERER_TEST_BROWSER") == "1" {
			t.Fatal("WHISPERER_TEST_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)")
		}
		t.Skip("no chromium on PATH: the browser tests are skipped (apt-get install -y chromium; WHISPERER_TEST_BROWSER=1 makes this a failure)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	c := &chrome{ctx: ctx}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			c.dialogs.Add(1)
			c.last.Store(ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return c
}

// do runs steps with a deadline, failing t with what was being done.
func (c *chrome) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (c *chrome) eval(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// clear empties the input with id, firing no event.
func (c *chrome) clear(t *testing.T, id string) {
	t.Helper()
	c.eval(t, `(() => { document.getElementById('`+id+`').value = ''; return '' })()`)
}

// waitFor polls the page until the JavaScript expression is true.
func (c *chrome) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		t.Fatalf("%s (%s): %v", what, expr, err)
	}
}

func (c *chrome) status(t *testing.T, url string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	return res.Status
}

func (c *chrome) signIn(t *testing.T, base, key string) {
	t.Helper()
	c.do(t, "sign in",
		chromedp.Navigate(base+"/hooks"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), key),
		chromedp.Click(chromedp.CSS(`form.card button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("hooks")),
	)
}

// The whole path of a delivery, in a browser: sign in, see the hooks,
// publish through the API and watch the event arrive on the events page
// (htmx refreshes it), open its attempts, redeliver it, and find another
// user's hook a 404. htmx runs under the CSP, and the page fits 375 px.
func TestBrowserDeliveryFlow(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "received, thanks")
	}))
	defer recv.Close()
	hook := storetest.Hook(t, n.Store, n.alice.ID, eventType, recv.URL+"/hook")
	bobs := storetest.Hook(t, n.Store, n.bob.ID, "order-created", "https://example.com/bob")

	c.signIn(t, n.url, n.aliceKey)
	if got := c.eval(t, `document.querySelector('#hooks tbody').innerText`); !strings.Contains(got, recv.URL+"/hook") {
		t.Fatalf("hooks page shows %q", got)
	}
	// htmx is a deferred script: wait for it rather than read it at once
	// (a loaded machine ran the check before it was evaluated).
	c.waitFor(t, "htmx under the CSP", `typeof htmx === 'object' && htmx.config.includeIndicatorStyles === false`)
	c.do(t, "375 px", chromedp.EmulateViewport(375, 800), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("hooks")))
	if w := c.eval(t, `String(document.documentElement.scrollWidth)`); w != "375" {
		t.Errorf("at 375 px the page is %s px wide", w)
	}

	c.do(t, "events page", chromedp.Navigate(n.url+"/events"), chromedp.WaitVisible(chromedp.ID("events")))
	n.publish(t, eventType, `{"order": 42}`)
	// No reload: the list polls (htmx) until the delivered event shows.
	c.do(t, "watch the event arrive", chromedp.WaitVisible(chromedp.CSS(`#events td.state-delivered`)))
	c.do(t, "open the event", chromedp.Click(chromedp.CSS(`#events tbody a[href^="/events/"]`)), chromedp.WaitVisible(chromedp.ID("attempts")))
	if got := c.eval(t, `document.querySelector('#attempts tbody').innerText`); !strings.Contains(got, "200") || !strings.Contains(got, "received, thanks") {
		t.Fatalf("attempts: %q", got)
	}
	if got := c.eval(t, `document.getElementById('payload').innerText`); !strings.Contains(got, `"order": 42`) {
		t.Fatalf("payload: %q", got)
	}
	c.do(t, "redeliver", chromedp.Click(chromedp.ID("redeliver")), chromedp.WaitVisible(chromedp.ID("confirm-redeliver")),
		chromedp.Click(chromedp.ID("confirm-redeliver")), chromedp.WaitVisible(chromedp.CSS(`p.done`)))
	if got := c.eval(t, `document.querySelector('p.done').innerText`); !strings.Contains(got, "queued for delivery again") {
		t.Fatalf("after redelivery: %q", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for hits.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hits.Load() < 2 {
		t.Fatalf("the receiver got %d requests, want 2 (delivery and redelivery)", hits.Load())
	}

	// The overview charts the deliveries (server-rendered SVG, under the CSP).
	c.do(t, "overview", chromedp.Navigate(n.url+"/overview"), chromedp.WaitVisible(chromedp.CSS(`#chart-attempts svg`)))
	if got := c.eval(t, `document.getElementById('totals').innerText`); !strings.Contains(got, "Delivered") {
		t.Errorf("overview totals: %q", got)
	}
	if st := c.status(t, n.url+"/hooks/"+strconv.FormatInt(bobs.ID, 10)); st != http.StatusNotFound {
		t.Fatalf("bob's hook in alice's browser = %d, want 404", st)
	}
	if st := c.status(t, n.url+"/hooks/"+strconv.FormatInt(hook.ID, 10)); st != http.StatusOK {
		t.Fatalf("alice's hook = %d", st)
	}
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d JavaScript dialogs opened", d)
	}
}

// A form on another site that posts to the console is refused and changes
// nothing.
func TestBrowserCrossSiteFormPost(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	hook := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/a")
	c.signIn(t, n.url, n.aliceKey)
	target := fmt.Sprintf("%s/hooks/%d/active", n.url, hook.ID)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="active" value="no"><input name="csrf" value="%s"></form>
<script>document.getElementById('f').submit()</script>`, target, strings.Repeat("0", 64))
	}))
	defer evil.Close()
	// localhost is another site than 127.0.0.1.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	c.do(t, "the other site's page", chromedp.Navigate(evilURL), chromedp.WaitVisible(chromedp.ID("error-message")))
	if got := c.eval(t, `location.href + ' ' + document.getElementById('error-message').innerText`); !strings.HasPrefix(got, target) {
		t.Fatalf("after the cross-site post: %q", got)
	}
	if h, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, hook.ID); !h.IsActive {
		t.Fatal("a cross-site form deactivated the hook")
	}
}

// Sign-in attempts are limited per address, with a message that says so.
func TestBrowserSignInRateLimit(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	for i := range 15 {
		c.do(t, "wrong token", chromedp.Navigate(n.url+"/sign-in"), chromedp.WaitVisible(chromedp.ID("token")), chromedp.SetValue(chromedp.ID("token"), "wrong"+strconv.Itoa(i)),
			chromedp.Click(chromedp.CSS(`form.card button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("signin-error")))
		msg := c.eval(t, `document.getElementById('signin-error').innerText`)
		if strings.Contains(msg, "Too many sign-in attempts") {
			if i < 10 {
				t.Fatalf("limited after %d attempts", i)
			}
			return
		}
		if !strings.Contains(msg, "not valid") {
			t.Fatalf("attempt %d: %q", i, msg)
		}
	}
	t.Fatal("15 attempts were never limited")
}

// hostile are strings that would run script if a page rendered them as
// HTML or as a URL.
var hostile = []string{`<script>alert(1)</script>`, `javascript:alert(1)`, `"><img src=x onerror=alert(1)>`}

// Every value a tenant controls (target URL, event type, header values,
// payload, response body, error text) renders as inert text: no dialog
// opens, no element is injected, and the text is shown as it is.
func TestBrowserXSS(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	all := strings.Join(hostile, " ")
	evType := `"><img/src=x/onerror=alert(1)><script>alert(1)</script>`
	hooks := []webhook.Webhook{
		storetest.Hook(t, n.Store, n.alice.ID, evType, "https://example.com/"+hostile[0]+`?q="><img src=x onerror=alert(1)>`,
			func(w *webhook.Webhook) {
				w.AdditionalHeaders = map[string]string{"X-Evil": all}
				w.Config = map[string]any{"note": all}
			}),
		storetest.Hook(t, n.Store, n.alice.ID, evType, hostile[1]),
	}
	payload, _ := json.Marshal(map[string]string{"a": hostile[0], "b": hostile[1], "c": hostile[2]})
	var ids []int64
	for _, e := range n.attempted(t, evType, string(payload), webhook.StateGivenUp, 500, all, "refused: "+all) {
		ids = append(ids, e.ID)
	}

	c.signIn(t, n.url, n.aliceKey)
	pages := []string{"/hooks", "/events", "/events?view=undelivered", "/events?event_type=" + url.QueryEscape(evType)}
	for _, h := range hooks {
		pages = append(pages, "/hooks/"+strconv.FormatInt(h.ID, 10))
	}
	for _, id := range ids {
		pages = append(pages, "/events/"+strconv.FormatInt(id, 10), "/events/"+strconv.FormatInt(id, 10)+"/redeliver")
	}
	for _, h := range hooks {
		pages = append(pages, "/hooks/"+strconv.FormatInt(h.ID, 10)+"/edit", "/hooks/"+strconv.FormatInt(h.ID, 10)+"/rotate")
	}
	for _, p := range pages {
		c.do(t, p, chromedp.Navigate(n.url+p), chromedp.WaitVisible(chromedp.ID("main")))
		injected := c.eval(t, `String(document.querySelectorAll('img').length + document.querySelectorAll('script:not([src])').length +
			document.querySelectorAll('[onerror],[onclick],[onload]').length + document.querySelectorAll('a[href^="javascript"]').length)`)
		if injected != "0" {
			t.Errorf("%s: %s injected elements", p, injected)
		}
		if strings.HasSuffix(p, "/edit") {
			// The form holds the values in its inputs, whole.
			if got := c.eval(t, `document.getElementById('event_type').value`); got != evType {
				t.Errorf("%s: event type input holds %q", p, got)
			}
			if got := c.eval(t, `[...document.querySelectorAll('input[name=header_value]')].map(e => e.value).join('|')`); p == "/hooks/"+strconv.FormatInt(hooks[0].ID, 10)+"/edit" && !strings.Contains(got, all) {
				t.Errorf("%s: header values %q", p, got)
			}
			continue
		}
		text := c.eval(t, `document.getElementById('main').innerText`)
		if !strings.Contains(text, `<script>alert(1)</script>`) && !strings.Contains(text, `"><img/src=x/onerror=alert(1)>`) {
			t.Errorf("%s does not show the hostile text as text:\n%s", p, text)
		}
	}
	// The detail pages show each string whole.
	c.do(t, "hook page", chromedp.Navigate(n.url+"/hooks/"+strconv.FormatInt(hooks[0].ID, 10)), chromedp.WaitVisible(chromedp.ID("hook-headers")))
	for _, s := range hostile {
		if got := c.eval(t, `document.getElementById('hook-headers').innerText`); !strings.Contains(got, s) {
			t.Errorf("header value %q not shown as text: %q", s, got)
		}
	}
	c.do(t, "event page", chromedp.Navigate(n.url+"/events/"+strconv.FormatInt(ids[0], 10)), chromedp.WaitVisible(chromedp.ID("attempts")))
	if got := c.eval(t, `document.getElementById('attempts').innerText`); !strings.Contains(got, "refused: "+all) {
		t.Errorf("error text not shown as text: %q", got)
	}
	if got := c.eval(t, `document.getElementById('event-type').innerText`); got != evType {
		t.Errorf("event type shown as %q", got)
	}
	time.Sleep(200 * time.Millisecond) // not a timing claim: lets a dialog event, had one opened, arrive
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d JavaScript dialogs opened, the last %v", d, c.last.Load())
	}
}

// The hook form in a browser: the retry-schedule preview follows the
// kwargs as they are typed (htmx, under the CSP), a plugin's countdown
// gets a JSON kwargs field and its own schedule, the API's validation
// error shows next to its field, and the corrected form registers the
// hook.
func TestBrowserHookForm(t *testing.T) {
	c := newChrome(t)
	n := startNode(t, withCustomCountdown(t))
	c.signIn(t, n.url, n.aliceKey)
	c.do(t, "new hook", chromedp.Click(chromedp.ID("new-hook")), chromedp.WaitVisible(chromedp.ID("preview-table")))
	// exponential, base 2 → 3: the fourth wait becomes 27 s.
	c.clear(t, "kw-base")
	c.do(t, "type a base", chromedp.SendKeys(chromedp.ID("kw-base"), "3"))
	c.waitFor(t, "the preview follows the base", `document.getElementById('preview-table').innerText.includes('27s')`)
	if got := c.eval(t, `String(document.querySelectorAll('#preview-chart rect').length)`); got != "17" {
		t.Errorf("chart bars: %s", got)
	}
	// The plugin's countdown: its kwargs are JSON, checked by the plugin.
	c.eval(t, `(() => { const s = document.getElementById('choice'); s.value = 'custom'; s.dispatchEvent(new Event('change', {bubbles: true})); return '' })()`)
	c.do(t, "plugin kwargs field", chromedp.WaitVisible(chromedp.ID("kwargs-json")))
	c.do(t, "type kwargs", chromedp.SendKeys(chromedp.ID("kwargs-json"), `{"factor": 0}`))
	c.waitFor(t, "the plugin's message", `document.getElementById('preview').innerText.includes('greater than or equal to 1')`)
	c.clear(t, "kwargs-json")
	c.do(t, "fix kwargs", chromedp.SendKeys(chromedp.ID("kwargs-json"), `{"factor": 3}`))
	c.waitFor(t, "the plugin's schedule", `document.getElementById('preview-table') !== null && document.getElementById('preview-table').innerText.includes('12s')`)

	// A URL the browser takes but the API refuses: the message is inline.
	c.do(t, "submit a bad URL",
		chromedp.SendKeys(chromedp.ID("target_url"), "ftp://example.com/hook"),
		chromedp.SendKeys(chromedp.ID("event_type"), eventType),
		chromedp.SendKeys(chromedp.CSS(`input[name=header_name]`), "X-Api-Key"),
		chromedp.SendKeys(chromedp.CSS(`input[name=header_value]`), "k-1"),
		chromedp.Click(chromedp.ID("save-hook")),
		chromedp.WaitVisible(chromedp.ID("target_url-errors")))
	if got := c.eval(t, `document.getElementById('target_url-errors').innerText`); !strings.Contains(got, "Enter a valid URL.") {
		t.Fatalf("inline error: %q", got)
	}
	if got := c.eval(t, `document.getElementById('target_url').getAttribute('aria-describedby')`); !strings.Contains(got, "target_url-errors") {
		t.Errorf("the error is not tied to its field: %q", got)
	}
	if got := c.eval(t, `document.getElementById('choice').value + ' ' + document.getElementById('kwargs-json').value`); got != `custom {"factor": 3}` {
		t.Errorf("the form lost the countdown: %q", got)
	}
	c.clear(t, "target_url")
	c.do(t, "fix the URL", chromedp.SendKeys(chromedp.ID("target_url"), "https://example.com/hook"),
		chromedp.Click(chromedp.ID("save-hook")), chromedp.WaitVisible(chromedp.CSS(`p.done`)))
	hooks, _, err := n.Store.WebhookIDs(context.Background(), webhook.Scope{UserID: n.alice.ID}, webhook.HookFilter{}, webhook.Page{Limit: 10})
	if err != nil || len(hooks) != 1 {
		t.Fatalf("alice's hooks: %v %v", hooks, err)
	}
	h, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, hooks[0])
	if h.TargetURL != "https://example.com/hook" || h.RetryCountdown.Choice != "custom" || h.AdditionalHeaders["X-Api-Key"] != "k-1" || h.SecretKey == "" {
		t.Fatalf("stored %+v", h)
	}
	// The API reference is plain server-rendered HTML: it works under the CSP.
	c.do(t, "API reference", chromedp.Navigate(n.url+"/api-docs"), chromedp.Click(chromedp.CSS(`a[href="#schema-HookInput"]`)),
		chromedp.WaitVisible(chromedp.ID("schema-HookInput")))
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d dialogs", d)
	}
}

// "Try it" on the edit page: htmx posts the panel under the strict CSP
// and shows the dry run of the saved hook, plugin filter and transform
// included.
func TestBrowserHookTryIt(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	registerExtensions(t, n)
	h := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/try", func(w *webhook.Webhook) {
		w.Filter = json.RawMessage(`{"plugin":"big","kwargs":{"min":100}}`)
		w.Transform = &webhook.TransformConfig{Name: "envelope", Kwargs: json.RawMessage(`{}`)}
	})
	c.signIn(t, n.url, n.aliceKey)
	c.do(t, "edit page", chromedp.Navigate(n.url+"/hooks/"+strconv.FormatInt(h.ID, 10)+"/edit"), chromedp.WaitVisible(chromedp.ID("try-button")))
	c.clear(t, "try_payload")
	c.do(t, "try a big order", chromedp.SendKeys(chromedp.ID("try_payload"), `{"amount": 150}`), chromedp.Click(chromedp.ID("try-button")))
	c.waitFor(t, "the dry run", `document.getElementById('try-body') !== null && document.getElementById('try-body').innerText.startsWith('{"wrapped":')`)
	if got := c.eval(t, `document.getElementById('try-verdict').innerText`); got != "Delivered" {
		t.Errorf("verdict %q", got)
	}
	c.clear(t, "try_payload")
	c.do(t, "try a small order", chromedp.SendKeys(chromedp.ID("try_payload"), `{"amount": 5}`), chromedp.Click(chromedp.ID("try-button")))
	c.waitFor(t, "the filter's verdict", `document.getElementById('try-verdict').innerText.includes('refuses')`)
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d dialogs", d)
	}
}
