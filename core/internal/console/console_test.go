package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/console"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Every console response, pages and assets, carries the security headers;
// the API's do not change.
func TestSecurityHeaders(t *testing.T) {
	n := startNode(t)
	b := n.browser(t)
	for _, path := range []string{"/sign-in", "/assets/console.css", "/assets/htmx.min.js", "/hooks", "/events/1"} {
		p := b.get(path)
		if p.status >= 500 {
			t.Fatalf("GET %s = %d", path, p.status)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": wantCSP, "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := p.header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
			}
		}
		if strings.Contains(p.header.Get("Content-Security-Policy"), "unsafe") {
			t.Errorf("GET %s: the CSP allows something unsafe", path)
		}
	}
	if p := b.get("/assets/htmx.min.js"); !strings.Contains(p.header.Get("Content-Type"), "javascript") {
		t.Errorf("htmx served as %q", p.header.Get("Content-Type"))
	}
	// The API's paths stay the API's: JSON, no console.
	if p := b.get("/whisperer/hooks/"); p.status != http.StatusUnauthorized || p.header.Get("Content-Security-Policy") != "" {
		t.Errorf("GET /whisperer/hooks/ = %d with CSP %q", p.status, p.header.Get("Content-Security-Policy"))
	}
	if p := b.get("/nope"); p.status != http.StatusNotFound || !strings.Contains(p.body, `"detail"`) {
		t.Errorf("GET /nope = %d %s, want the API's JSON 404", p.status, p.body)
	}
	// No page has an inline script or style.
	for _, path := range []string{"/sign-in"} {
		body := b.get(path).body
		if strings.Contains(body, "<style") || strings.Contains(body, "style=") || strings.Contains(body, "<script>") {
			t.Errorf("%s has inline script or style: %s", path, body)
		}
	}
}

// Signing in sets a session cookie with the console's attributes; the
// session lives server-side and sign-out ends it.
func TestSignInAndOut(t *testing.T) {
	n := startNode(t)
	storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/alice-hook")
	b := n.browser(t)
	if p := b.get("/hooks"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/sign-in" {
		t.Fatalf("GET /hooks signed out = %d %q", p.status, p.header.Get("Location"))
	}
	tok := b.csrf("/sign-in")
	p := b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {"0123456789abcdef0123456789abcdef01234567"}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "That token is not valid") {
		t.Fatalf("sign-in with a wrong token = %d %s", p.status, p.body)
	}
	p = b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {n.aliceKey}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign-in = %d %s", p.status, p.body)
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "whisperer_session" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure || sess.Path != "/" ||
		sess.MaxAge < int((12*time.Hour-time.Minute).Seconds()) || sess.MaxAge > int((12*time.Hour).Seconds()) {
		t.Fatalf("session cookie = %+v", sess)
	}
	if strings.Contains(p.header.Get("Set-Cookie"), n.aliceKey) {
		t.Fatal("the API token is in a cookie")
	}
	p = b.get("/hooks")
	if p.status != http.StatusOK || !strings.Contains(p.body, "https://example.com/alice-hook") || !strings.Contains(p.body, "alice") {
		t.Fatalf("GET /hooks = %d %s", p.status, p.body)
	}
	if _, err := n.Store.Session(context.Background(), sess.Value); err != nil {
		t.Fatalf("the session is not in the store: %v", err)
	}
	tok = b.csrf("/hooks")
	p = b.do(http.MethodPost, "/sign-out", url.Values{"csrf": {tok}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out = %d %v", p.status, p.header)
	}
	// Revoked server-side: the old cookie no longer works.
	if _, err := n.Store.Session(context.Background(), sess.Value); err == nil {
		t.Fatal("the session survived sign-out")
	}
	b2 := n.browser(t)
	u, _ := url.Parse(n.url)
	b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: "whisperer_session", Value: sess.Value}})
	if p := b2.get("/hooks"); p.status != http.StatusSeeOther {
		t.Fatalf("GET /hooks with a signed-out cookie = %d", p.status)
	}
}

// Revoking the token a session was made with ends the session.
func TestRevokedTokenEndsSession(t *testing.T) {
	n := startNode(t)
	b := n.browser(t)
	b.signIn(n.bobKey)
	if p := b.get("/hooks"); p.status != http.StatusOK {
		t.Fatalf("GET /hooks = %d", p.status)
	}
	if _, err := n.Store.RevokeToken(context.Background(), n.bobKey); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/hooks"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/sign-in" {
		t.Fatalf("GET /hooks after revocation = %d", p.status)
	}
}

// Every state change needs the session's synchronizer token and a
// same-origin request; the sign-in form its double-submit token.
func TestCSRF(t *testing.T) {
	n := startNode(t)
	h := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/a")
	b := n.browser(t)
	b.signIn(n.aliceKey)
	tok := b.csrf("/hooks")
	path := "/hooks/" + strconv.FormatInt(h.ID, 10) + "/active"
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"no token":           {url.Values{"active": {"no"}}, nil},
		"wrong token":        {url.Values{"active": {"no"}, "csrf": {strings.Repeat("0", 64)}}, nil},
		"cross-site fetch":   {url.Values{"active": {"no"}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "cross-site"}},
		"other origin":       {url.Values{"active": {"no"}, "csrf": {tok}}, []string{"Origin", "https://evil.example"}},
		"same-site, not ori": {url.Values{"active": {"no"}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "same-site"}},
	} {
		p := b.do(http.MethodPost, path, tc.form, tc.headers...)
		if p.status != http.StatusForbidden {
			t.Errorf("%s: POST = %d, want 403", name, p.status)
		}
	}
	if got, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, h.ID); !got.IsActive {
		t.Fatal("a refused form changed the hook")
	}
	p := b.do(http.MethodPost, path, url.Values{"active": {"no"}, "csrf": {tok}}, "Sec-Fetch-Site", "same-origin", "Origin", n.url)
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST with the token = %d %s", p.status, p.body)
	}
	if got, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, h.ID); got.IsActive || got.DisabledReason != "deactivated by its owner" {
		t.Fatalf("hook after deactivation: active=%v reason=%q", got.IsActive, got.DisabledReason)
	}
	if p := b.get("/hooks/" + strconv.FormatInt(h.ID, 10) + "?done=disabled"); !strings.Contains(p.body, "The hook is deactivated") {
		t.Fatalf("hook page after deactivation: %s", p.body)
	}

	// Sign-in: the form's token must match the browser's cookie.
	b2 := n.browser(t)
	p = b2.do(http.MethodPost, "/sign-in", url.Values{"csrf": {strings.Repeat("a", 32)}, "token": {n.aliceKey}})
	if p.status != http.StatusForbidden {
		t.Fatalf("sign-in without the form's cookie = %d", p.status)
	}
	tok2 := b2.csrf("/sign-in")
	p = b2.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok2}, "token": {n.aliceKey}}, "Sec-Fetch-Site", "cross-site")
	if p.status != http.StatusForbidden {
		t.Fatalf("cross-site sign-in = %d", p.status)
	}
}

// Another user's hook or event, or another tenant, is a 404 for a user;
// an admin sees everyone's, or one picked user's.
func TestTenants(t *testing.T) {
	n := startNode(t)
	ha := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/alice-hook")
	hb := storetest.Hook(t, n.Store, n.bob.ID, eventType, "https://example.com/bob-hook")
	evs := storetest.Publish(t, n.Store, eventType, `{"n":1}`)
	var bobEvent int64
	for _, e := range evs {
		if e.WebhookID == hb.ID {
			bobEvent = e.ID
		}
	}
	alice := n.browser(t)
	alice.signIn(n.aliceKey)
	bobID := strconv.FormatInt(n.bob.ID, 10)
	for _, path := range []string{
		"/hooks/" + strconv.FormatInt(hb.ID, 10), "/events/" + strconv.FormatInt(bobEvent, 10),
		"/events/" + strconv.FormatInt(bobEvent, 10) + "/redeliver", "/hooks?user=" + bobID, "/events?user=" + bobID,
		"/hooks/x", "/events/99999999",
	} {
		if p := alice.get(path); p.status != http.StatusNotFound {
			t.Errorf("alice GET %s = %d, want 404", path, p.status)
		}
	}
	tok := alice.csrf("/hooks")
	if p := alice.do(http.MethodPost, "/hooks/"+strconv.FormatInt(hb.ID, 10)+"/active", url.Values{"active": {"no"}, "csrf": {tok}}); p.status != http.StatusNotFound {
		t.Errorf("alice deactivating bob's hook = %d, want 404", p.status)
	}
	if p := alice.do(http.MethodPost, "/events/"+strconv.FormatInt(bobEvent, 10)+"/redeliver", url.Values{"csrf": {tok}}); p.status != http.StatusNotFound {
		t.Errorf("alice redelivering bob's event = %d, want 404", p.status)
	}
	if p := alice.get("/hooks"); strings.Contains(p.body, "bob-hook") || !strings.Contains(p.body, "alice-hook") {
		t.Errorf("alice's hook list: %s", p.body)
	}
	root := n.browser(t)
	root.signIn(n.rootKey)
	if p := root.get("/hooks"); !strings.Contains(p.body, "bob-hook") || !strings.Contains(p.body, "alice-hook") || !strings.Contains(p.body, `<label for="tenant">`) {
		t.Errorf("root's hook list: %s", p.body)
	}
	if p := root.get("/hooks?user=" + bobID); strings.Contains(p.body, "alice-hook") || !strings.Contains(p.body, "bob-hook") {
		t.Errorf("root's list of bob's hooks: %s", p.body)
	}
	if p := root.get("/hooks/" + strconv.FormatInt(ha.ID, 10)); p.status != http.StatusOK {
		t.Errorf("root GET alice's hook = %d", p.status)
	}
	if p := root.get("/hooks?user=424242"); p.status != http.StatusNotFound {
		t.Errorf("root GET an unknown user's hooks = %d", p.status)
	}
}

// Events: the filters map onto the store's list queries, the undelivered
// view shows failed and given-up events, and bad filters are a 400.
func TestEventsPage(t *testing.T) {
	n := startNode(t)
	h := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/a")
	delivered := n.attempted(t, eventType, `{"which":"delivered"}`, webhook.StateDelivered, 200, "thanks", "")[0]
	givenUp := n.attempted(t, eventType, `{"which":"given-up"}`, webhook.StateGivenUp, 500, "oops", "status 500")[0]
	b := n.browser(t)
	b.signIn(n.aliceKey)
	row := func(id int64) string { return `<a href="/events/` + strconv.FormatInt(id, 10) + `">` }
	for path, want := range map[string][2]bool{
		"/events":                                     {true, true},
		"/events?view=undelivered":                    {false, true},
		"/events?state=delivered":                     {true, false},
		"/events?state=given_up":                      {false, true},
		"/events?state=failed":                        {false, false},
		"/events?hook=" + strconv.FormatInt(h.ID, 10): {true, true},
		"/events?uuid=" + givenUp.UUID:                {false, true},
		"/events?since=" + time.Now().UTC().Add(time.Minute).Format("2006-01-02T15:04"):  {false, false},
		"/events?until=" + time.Now().UTC().Add(time.Minute).Format("2006-01-02T15:04"):  {true, true},
		"/events?until=" + time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04"): {false, false},
	} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s = %d", path, p.status)
			continue
		}
		if got := [2]bool{strings.Contains(p.body, row(delivered.ID)), strings.Contains(p.body, row(givenUp.ID))}; got != want {
			t.Errorf("GET %s shows (delivered, given up) = %v, want %v", path, got, want)
		}
	}
	// Pending after a failed attempt: "failed", and undelivered.
	retrying := n.attempted(t, eventType, `{"which":"retrying"}`, webhook.StatePending, 503, "busy", "status 503")[0]
	for path, want := range map[string]bool{"/events?state=failed": true, "/events?view=undelivered": true, "/events?state=delivered": false} {
		if got := strings.Contains(b.get(path).body, row(retrying.ID)); got != want {
			t.Errorf("GET %s shows the retrying event: %v, want %v", path, got, want)
		}
	}
	for _, path := range []string{"/events?state=lost", "/events?uuid=nope", "/events?since=yesterday", "/events?hook=-1",
		"/events?before=x", "/events?event_type=" + strings.Repeat("x", 300)} {
		if p := b.get(path); p.status != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", path, p.status)
		}
	}
	p := b.get("/events/" + strconv.FormatInt(givenUp.ID, 10))
	if p.status != http.StatusOK || !strings.Contains(p.body, "&#34;which&#34;: &#34;given-up&#34;") || !strings.Contains(p.body, "oops") || !strings.Contains(p.body, "status 500") {
		t.Fatalf("event page = %d %s", p.status, p.body)
	}
	// Redeliver, confirmed.
	tok := b.csrf("/events/" + strconv.FormatInt(givenUp.ID, 10) + "/redeliver")
	p = b.do(http.MethodPost, "/events/"+strconv.FormatInt(givenUp.ID, 10)+"/redeliver", url.Values{"csrf": {tok}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("redeliver = %d %s", p.status, p.body)
	}
	if j, _ := n.Store.Event(context.Background(), webhook.Scope{All: true}, strconv.FormatInt(givenUp.ID, 10)); j.Event.State != webhook.StatePending {
		t.Fatalf("after redelivery the event is %s", j.Event.State)
	}
}

// Over TLS the cookies are Secure.
func TestSecureCookiesOverTLS(t *testing.T) {
	n := startNode(t)
	c, err := console.New(console.Config{APIBase: "/whisperer/", MaxRetries: 18}, console.Deps{Store: n.Store, API: func(webhook.User, http.ResponseWriter, *http.Request) {}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(c)
	defer srv.Close()
	b := n.browser(t)
	b.base = srv.URL
	p := b.get("/sign-in")
	if sc := p.header.Get("Set-Cookie"); !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("sign-in form cookie over TLS: %q", sc)
	}
	tok := csrfField.FindStringSubmatch(p.body)[1]
	p = b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {n.aliceKey}})
	if sc := p.header.Values("Set-Cookie"); p.status != http.StatusSeeOther || !strings.Contains(strings.Join(sc, "\n"), "whisperer_session=") ||
		!strings.Contains(sc[len(sc)-1], "; Secure") {
		t.Fatalf("sign-in over TLS = %d, cookies %q", p.status, sc)
	}
}

// Sign-in attempts from one address are limited; the limit says when to
// try again.
func TestSignInRateLimit(t *testing.T) {
	n := startNode(t)
	b := n.browser(t)
	tok := b.csrf("/sign-in")
	limited := 0
	for i := range 12 {
		p := b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {"wrong" + strconv.Itoa(i)}})
		if p.status == http.StatusTooManyRequests {
			limited = i
			if !strings.Contains(p.body, "Too many sign-in attempts from your address") || p.header.Get("Retry-After") == "" {
				t.Fatalf("rate-limited answer: %v %s", p.header, p.body)
			}
			break
		}
	}
	if limited < 10 {
		t.Fatalf("attempt %d was the first limited, want the 11th (index 10)", limited)
	}
	// The right token is refused too while limited.
	if p := b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {n.aliceKey}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("sign-in while limited = %d", p.status)
	}
}
