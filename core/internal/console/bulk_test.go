package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Redeliver all failed in a range: the undelivered view links to a form,
// the confirmation counts exactly what the API then queues again (the
// user's own failed events in the range, nobody else's), the result
// shows the API's count; bad ranges are a 400, another user's hook a
// 404, a portal without "redeliver" a 403, a post without the CSRF token
// a 403 that changes nothing.
func TestBulkRedeliver(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	aliceHook := storetest.Hook(t, n.Store, n.alice.ID, eventType, "https://example.com/a")
	bobHook := storetest.Hook(t, n.Store, n.bob.ID, eventType, "https://example.com/b")
	// One event per hook in each state.
	given := n.attempted(t, eventType, `{"which":"given-up"}`, webhook.StateGivenUp, 500, "oops", "status 500")
	retrying := n.attempted(t, eventType, `{"which":"retrying"}`, webhook.StatePending, 503, "busy", "status 503")
	delivered := n.attempted(t, eventType, `{"which":"delivered"}`, webhook.StateDelivered, 200, "ok", "")
	of := func(evs []webhook.Event, hook int64) int64 {
		for _, e := range evs {
			if e.WebhookID == hook {
				return e.ID
			}
		}
		t.Fatalf("no event of hook %d", hook)
		return 0
	}
	state := func(id int64) webhook.State {
		j, err := n.Store.Event(ctx, webhook.Scope{All: true}, strconv.FormatInt(id, 10))
		if err != nil {
			t.Fatal(err)
		}
		return j.Event.State
	}
	since := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")

	b := n.browser(t)
	b.signIn(n.aliceKey)
	if p := b.get("/events?view=undelivered&since=" + since); p.status != http.StatusOK ||
		!strings.Contains(p.body, `href="/events/redeliver-failed?since=`+url.QueryEscape(since)+`"`) {
		t.Fatalf("undelivered view has no bulk link: %d %s", p.status, p.body)
	}
	if p := b.get("/events/redeliver-failed"); p.status != http.StatusOK || !strings.Contains(p.body, `name="since"`) {
		t.Fatalf("bulk form = %d %s", p.status, p.body)
	}
	confirm := "/events/redeliver-failed?since=" + url.QueryEscape(since)
	p := b.get(confirm)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Deliver <strong>2</strong> failed events") {
		t.Fatalf("confirmation = %d %s", p.status, p.body)
	}
	// Narrowed to the hook and to a range that ended before: fewer.
	if p := b.get(confirm + "&hook=" + strconv.FormatInt(aliceHook.ID, 10)); !strings.Contains(p.body, "<strong>2</strong>") {
		t.Errorf("confirmation for alice's hook: %s", p.body)
	}
	if p := b.get(confirm + "&until=" + url.QueryEscape(time.Now().UTC().Add(-30*time.Minute).Format("2006-01-02T15:04"))); !strings.Contains(p.body, "<strong>0</strong>") ||
		strings.Contains(p.body, `id="confirm-bulk"`) {
		t.Errorf("confirmation of an empty range: %s", p.body)
	}
	for path, want := range map[string]int{
		"/events/redeliver-failed?since=yesterday":                                                           http.StatusBadRequest,
		confirm + "&until=" + url.QueryEscape(time.Now().UTC().Add(-2*time.Hour).Format("2006-01-02T15:04")): http.StatusBadRequest,
		confirm + "&hook=x": http.StatusBadRequest,
		confirm + "&hook=" + strconv.FormatInt(bobHook.ID, 10):                  http.StatusNotFound,
		"/events/redeliver-failed?since=" + url.QueryEscape(since) + "&done=-3": http.StatusBadRequest,
	} {
		if p := b.get(path); p.status != want {
			t.Errorf("GET %s = %d, want %d", path, p.status, want)
		}
	}
	tok := csrfField.FindStringSubmatch(p.body)[1]
	// Without the token: refused, nothing changes.
	if p := b.do(http.MethodPost, "/events/redeliver-failed", url.Values{"since": {since}}); p.status != http.StatusForbidden {
		t.Fatalf("bulk without csrf = %d", p.status)
	}
	if s := state(of(given, aliceHook.ID)); s != webhook.StateGivenUp {
		t.Fatalf("after a refused post the event is %s", s)
	}
	if p := b.do(http.MethodPost, "/events/redeliver-failed", url.Values{"csrf": {tok}}); p.status != http.StatusBadRequest {
		t.Errorf("bulk without since = %d", p.status)
	}
	// Another user's hook: the API's own answer, no row touched.
	if p := b.do(http.MethodPost, "/events/redeliver-failed", url.Values{"csrf": {tok}, "since": {since}, "hook": {strconv.FormatInt(bobHook.ID, 10)}}); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, "does not exist") {
		t.Errorf("bulk on bob's hook = %d %s", p.status, p.body)
	}
	p = b.do(http.MethodPost, "/events/redeliver-failed", url.Values{"csrf": {tok}, "since": {since}})
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.Contains(loc, "done=2") {
		t.Fatalf("bulk = %d %q %s", p.status, loc, p.body)
	}
	if p := b.get(loc); p.status != http.StatusOK || !strings.Contains(p.body, `<strong>2</strong> failed events`) || !strings.Contains(p.body, "queued for delivery again") {
		t.Fatalf("result = %d %s", p.status, p.body)
	}
	for _, c := range []struct {
		id   int64
		want webhook.State
	}{
		{of(given, aliceHook.ID), webhook.StatePending}, {of(retrying, aliceHook.ID), webhook.StatePending},
		{of(delivered, aliceHook.ID), webhook.StateDelivered}, {of(given, bobHook.ID), webhook.StateGivenUp},
	} {
		if s := state(c.id); s != c.want {
			t.Errorf("event %d is %s, want %s", c.id, s, c.want)
		}
	}

	// An admin who picked bob redelivers bob's only.
	root := n.browser(t)
	root.signIn(n.rootKey)
	bobQ := "&user=" + strconv.FormatInt(n.bob.ID, 10)
	p = root.get(confirm + bobQ)
	if !strings.Contains(p.body, "<strong>2</strong>") { // bob's given-up and retrying
		t.Fatalf("root's confirmation for bob: %s", p.body)
	}
	rtok := csrfField.FindStringSubmatch(p.body)[1]
	p = root.do(http.MethodPost, "/events/redeliver-failed?user="+strconv.FormatInt(n.bob.ID, 10), url.Values{"csrf": {rtok}, "since": {since}})
	if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || !strings.Contains(loc, "done=2") || !strings.Contains(loc, "user=") {
		t.Fatalf("root's bulk for bob = %d %q %s", p.status, loc, p.body)
	}
	if s := state(of(given, bobHook.ID)); s != webhook.StatePending {
		t.Errorf("bob's given-up event is %s", s)
	}

	// A portal without "redeliver" sees no link and may not.
	_, pubKey := storetest.User(t, n.Store, "pub", webhook.RolePublisher)
	pb, _ := n.portalClient(t, n.portalLink(t, pubKey, `{"user": "alice"}`))
	if p := pb.get("/events?view=undelivered"); p.status != http.StatusOK || strings.Contains(p.body, "bulk-redeliver") {
		t.Errorf("read-only portal's undelivered view = %d, link shown: %v", p.status, strings.Contains(p.body, "bulk-redeliver"))
	}
	if p := pb.get(confirm); p.status != http.StatusForbidden {
		t.Errorf("read-only portal GET bulk = %d", p.status)
	}
	ptok := csrfField.FindStringSubmatch(pb.get("/hooks").body)[1]
	if p := pb.do(http.MethodPost, "/events/redeliver-failed", url.Values{"csrf": {ptok}, "since": {since}}, "Sec-Fetch-Site", "same-origin"); p.status != http.StatusForbidden {
		t.Errorf("read-only portal POST bulk = %d", p.status)
	}
	rp, _ := n.portalClient(t, n.portalLink(t, pubKey, `{"user": "alice", "capabilities": ["redeliver"]}`))
	// (The dispatcher has tried the redelivered events again by now: the
	// count is whatever failed since, so only the page is checked.)
	if p := rp.get(confirm); p.status != http.StatusOK || !strings.Contains(p.body, "Deliver <strong>") {
		t.Errorf("redeliver portal GET bulk = %d %s", p.status, p.body)
	}
}

// In a browser: from the undelivered view to the range form, its count,
// the confirmation and the result, and the receiver gets the events again.
func TestBrowserBulkRedeliver(t *testing.T) {
	c := newChrome(t)
	n := startNode(t)
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()
	storetest.Hook(t, n.Store, n.alice.ID, eventType, recv.URL+"/hook")
	n.attempted(t, eventType, `{"n": 1}`, webhook.StateGivenUp, 500, "oops", "status 500")
	n.attempted(t, eventType, `{"n": 2}`, webhook.StateGivenUp, 500, "oops", "status 500")

	c.signIn(t, n.url, n.aliceKey)
	c.do(t, "undelivered", chromedp.Navigate(n.url+"/events?view=undelivered"), chromedp.WaitVisible(chromedp.ID("bulk-redeliver")),
		chromedp.Click(chromedp.ID("bulk-redeliver")), chromedp.WaitVisible(chromedp.ID("b-since")),
		chromedp.Click(chromedp.ID("bulk-count-button")), chromedp.WaitVisible(chromedp.ID("bulk-count")))
	if got := c.eval(t, `document.getElementById('bulk-count').innerText`); !strings.Contains(got, "Deliver 2 failed events") {
		t.Fatalf("confirmation: %q", got)
	}
	c.do(t, "confirm", chromedp.Click(chromedp.ID("confirm-bulk")), chromedp.WaitVisible(chromedp.ID("bulk-result")))
	if got := c.eval(t, `document.getElementById('bulk-result').innerText`); !strings.Contains(got, "2 failed events") {
		t.Fatalf("result: %q", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for hits.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hits.Load() < 2 {
		t.Fatalf("the receiver got %d requests, want 2", hits.Load())
	}
	if d := c.dialogs.Load(); d != 0 {
		t.Fatalf("%d JavaScript dialogs opened", d)
	}
}
