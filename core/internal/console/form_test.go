package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// hookFormValues is a valid new hook for alice with every field filled.
func hookFormValues(csrf string) url.Values {
	return url.Values{
		"csrf": {csrf}, "target_url": {"https://example.com/receiver"}, "event_type": {eventType},
		"secret_key": {"s3cret-s3cret"}, "is_active": {"yes"}, "callback": {""},
		"choice": {"linear"}, "kw.base": {"7"}, "kw.limit": {"60"},
		"header_name": {"X-Api-Key", "", "X-Other"}, "header_value": {"k-123", "", "v"},
		"auth_username": {"recv"}, "auth_password": {"pw-never-shown"},
		"config": {`{"rate_limit_per_second": 5}`},
	}
}

var hookLocation = regexp.MustCompile(`^/hooks/(\d+)\?done=created$`)

// The form creates a hook through the API with every field; the API's
// field errors come back next to their fields; editing keeps the
// write-only password unless a new one is typed; rotation keeps the old
// secret signing.
func TestHookFormCreateEditRotate(t *testing.T) {
	n := startNode(t)
	b := n.browser(t)
	b.signIn(n.aliceKey)
	page := b.get("/hooks/new")
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="preview-table"`) || !strings.Contains(page.body, `<option value="exponential" selected>`) {
		t.Fatalf("GET /hooks/new = %d %s", page.status, page.body)
	}
	csrf := csrfField.FindStringSubmatch(page.body)[1]

	// The API's errors, each next to its field.
	bad := hookFormValues(csrf)
	bad.Set("target_url", "not a url")
	bad.Set("kw.base", "seven")
	bad["header_name"] = []string{"Bad Name"}
	bad["header_value"] = []string{"v"}
	p := b.do(http.MethodPost, "/hooks/new", bad)
	if p.status != http.StatusBadRequest {
		t.Fatalf("bad form = %d %s", p.status, p.body)
	}
	for id, msg := range map[string]string{
		"target_url-errors":                         "Enter a valid URL.",
		"retry_countdown_config-kwargs-base-errors": "A valid integer is required.",
		"additional_headers-Bad-Name-errors":        "is not a valid HTTP header name",
	} {
		re := regexp.MustCompile(`id="` + id + `"><li>([^<]*)`)
		if m := re.FindStringSubmatch(p.body); m == nil || !strings.Contains(m[1], msg) && !strings.Contains(strings.ReplaceAll(m[1], "&#34;", `"`), msg) {
			t.Errorf("no %q in #%s: %s", msg, id, p.body)
		}
	}
	if !strings.Contains(p.body, `value="not a url"`) || !strings.Contains(p.body, `value="seven"`) {
		t.Error("the form lost what was typed")
	}
	if strings.Contains(p.body, "pw-never-shown") {
		t.Error("the password was rendered back")
	}
	if ids, _, _ := n.Store.WebhookIDs(context.Background(), webhook.Scope{All: true}, webhook.HookFilter{}, webhook.Page{Limit: 10}); len(ids) != 0 {
		t.Fatalf("a refused form stored hooks %v", ids)
	}
	// Config that is not JSON is the console's own error.
	bad = hookFormValues(csrf)
	bad.Set("config", "{nope")
	if p := b.do(http.MethodPost, "/hooks/new", bad); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="config-errors"`) {
		t.Fatalf("config not JSON = %d %s", p.status, p.body)
	}

	p = b.do(http.MethodPost, "/hooks/new", hookFormValues(csrf))
	m := hookLocation.FindStringSubmatch(p.header.Get("Location"))
	if p.status != http.StatusSeeOther || m == nil {
		t.Fatalf("create = %d %q %s", p.status, p.header.Get("Location"), p.body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	ctx := context.Background()
	h, err := n.Store.Webhook(ctx, webhook.Scope{All: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.UserID != n.alice.ID || h.TargetURL != "https://example.com/receiver" || h.EventType != eventType || !h.IsActive ||
		h.SecretKey != "s3cret-s3cret" || h.RetryCountdown.Choice != "linear" || string(h.RetryCountdown.Kwargs) != `{"base":7,"limit":60}` ||
		len(h.AdditionalHeaders) != 2 || h.AdditionalHeaders["X-Api-Key"] != "k-123" {
		t.Fatalf("stored %+v", h)
	}
	auth, _ := h.Config["auth"].(map[string]any)
	if auth["username"] != "recv" || auth["password"] != "pw-never-shown" || h.Config["rate_limit_per_second"] == nil {
		t.Fatalf("stored config %v", h.Config)
	}

	edit := b.get("/hooks/" + m[1] + "/edit")
	if edit.status != http.StatusOK || strings.Contains(edit.body, "pw-never-shown") || strings.Contains(edit.body, "s3cret-s3cret") ||
		!strings.Contains(edit.body, `value="recv"`) || !strings.Contains(edit.body, `value="7"`) || !strings.Contains(edit.body, "(one is stored)") {
		t.Fatalf("edit page = %d %s", edit.status, edit.body)
	}
	// Edit: no password typed keeps it; the countdown changes.
	form := hookFormValues(csrf)
	form.Del("secret_key")
	form.Set("auth_password", "")
	form.Set("choice", "fixed")
	form.Set("kw.seconds", "30")
	form.Del("is_active")
	if p := b.do(http.MethodPost, "/hooks/"+m[1]+"/edit", form); p.status != http.StatusSeeOther {
		t.Fatalf("edit = %d %s", p.status, p.body)
	}
	h, _ = n.Store.Webhook(ctx, webhook.Scope{All: true}, id)
	auth, _ = h.Config["auth"].(map[string]any)
	if h.IsActive || h.RetryCountdown.Choice != "fixed" || string(h.RetryCountdown.Kwargs) != `{"seconds":30}` || auth["password"] != "pw-never-shown" || h.SecretKey != "s3cret-s3cret" {
		t.Fatalf("after edit %+v", h)
	}

	// Rotation: a confirmation page, then the API's rotate.
	rot := b.get("/hooks/" + m[1] + "/rotate")
	if rot.status != http.StatusOK || !strings.Contains(rot.body, `id="confirm-rotate"`) {
		t.Fatalf("rotate page = %d", rot.status)
	}
	if p := b.do(http.MethodPost, "/hooks/"+m[1]+"/rotate", url.Values{"csrf": {csrf}, "secret_key": {"new-secret"}, "keep_old": {"yes"}}); p.status != http.StatusSeeOther {
		t.Fatalf("rotate = %d %s", p.status, p.body)
	}
	h, _ = n.Store.Webhook(ctx, webhook.Scope{All: true}, id)
	if h.SecretKey != "new-secret" || h.PreviousSecretKey != "s3cret-s3cret" || h.PreviousSecretUntil == nil {
		t.Fatalf("after rotation: secret %q, previous %q until %v", h.SecretKey, h.PreviousSecretKey, h.PreviousSecretUntil)
	}
	// Without the token a form changes nothing.
	if p := b.do(http.MethodPost, "/hooks/"+m[1]+"/rotate", url.Values{"secret_key": {"forged"}}); p.status != http.StatusForbidden {
		t.Fatalf("rotate without csrf = %d", p.status)
	}
	// Bob's hook cannot be edited by alice: 404, as the API says.
	bb := n.browser(t)
	bb.signIn(n.bobKey)
	if p := bb.get("/hooks/" + m[1] + "/edit"); p.status != http.StatusNotFound {
		t.Fatalf("bob edits alice's hook: %d", p.status)
	}
	bobCSRF := bb.csrf("/hooks/new")
	if p := bb.do(http.MethodPost, "/hooks/"+m[1]+"/edit", hookFormValues(bobCSRF)); p.status != http.StatusNotFound {
		t.Fatalf("bob posts alice's hook: %d", p.status)
	}
}

// The preview computes the schedule as the dispatcher would, and shows
// the validator's messages for bad kwargs; a plugin's countdown is
// offered and previewed too.
func TestSchedulePreview(t *testing.T) {
	n := startNode(t, withCustomCountdown(t))
	b := n.browser(t)
	b.signIn(n.aliceKey)
	p := b.get("/hooks/preview?choice=linear&kw.base=10&kw.limit=25")
	for _, want := range []string{"<td>2</td><td>0s</td>", "<td>3</td><td>10s</td>", "<td>4</td><td>20s</td>", "<td>5</td><td>25s</td><td>55s</td>", `<svg class="chart"`, "<rect class=\"bar\""} {
		if !strings.Contains(p.body, want) {
			t.Errorf("preview lacks %q: %s", want, p.body)
		}
	}
	if strings.Count(p.body, "<rect") != 17 { // delivery.max_retries 18: 17 waits
		t.Errorf("%d bars", strings.Count(p.body, "<rect"))
	}
	if p := b.get("/hooks/preview?choice=fixed&kw.seconds=-1"); !strings.Contains(p.body, "seconds: Ensure this value is greater than or equal to 0.") {
		t.Errorf("bad kwargs preview: %s", p.body)
	}
	page := b.get("/hooks/new")
	if !strings.Contains(page.body, `<option value="custom">custom (custom.wasm)</option>`) {
		t.Fatalf("the plugin countdown is not offered: %s", page.body)
	}
	if p := b.get("/hooks/countdown?choice=custom"); !strings.Contains(p.body, `id="kwargs-json"`) || strings.Contains(p.body, `name="kw.`) {
		t.Fatalf("plugin countdown fields: %s", p.body)
	}
	if p := b.get("/hooks/preview?choice=custom&kwargs=" + url.QueryEscape(`{"factor": 3}`)); !strings.Contains(p.body, "<td>4</td><td>12s</td>") {
		t.Errorf("custom preview: %s", p.body)
	}
	if p := b.get("/hooks/preview?choice=custom&kwargs=" + url.QueryEscape(`{"factor": 0}`)); !strings.Contains(p.body, "factor: Ensure this value is greater than or equal to 1.") {
		t.Errorf("custom bad kwargs: %s", p.body)
	}
	if p := b.get("/hooks/preview?choice=custom&kwargs=" + url.QueryEscape(`{nope`)); !strings.Contains(p.body, "Enter a JSON object") {
		t.Errorf("custom not JSON: %s", p.body)
	}
	if p := b.get("/hooks/preview?kwargs=%7B%7D&choice=" + url.QueryEscape("<b>nope</b>")); !strings.Contains(p.body, "is not a valid choice") || strings.Contains(p.body, "<b>") {
		t.Errorf("unknown choice: %s", p.body)
	}
	huge := strings.Repeat("1", 5000)
	if p := b.get("/hooks/preview?choice=custom&kwargs=" + huge); !strings.Contains(p.body, "at most 4096 bytes") {
		t.Errorf("huge kwargs: %.300s", p.body)
	}
	// A plugin countdown through the form: stored as the plugin cleaned it.
	csrf := csrfField.FindStringSubmatch(page.body)[1]
	form := hookFormValues(csrf)
	form.Set("choice", "custom")
	form.Set("kwargs", `{"factor": 0}`)
	if p := b.do(http.MethodPost, "/hooks/new", form); p.status != http.StatusBadRequest || !strings.Contains(p.body, "factor: Ensure this value is greater than or equal to 1.") {
		t.Fatalf("custom factor 0 = %d %s", p.status, p.body)
	}
	form.Set("kwargs", `{"factor": 2}`)
	p = b.do(http.MethodPost, "/hooks/new", form)
	m := hookLocation.FindStringSubmatch(p.header.Get("Location"))
	if m == nil {
		t.Fatalf("create with custom = %d %s", p.status, p.body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	h, _ := n.Store.Webhook(context.Background(), webhook.Scope{All: true}, id)
	var kw map[string]int
	if h.RetryCountdown.Choice != "custom" || json.Unmarshal(h.RetryCountdown.Kwargs, &kw) != nil || kw["factor"] != 2 {
		t.Fatalf("stored countdown %s %s", h.RetryCountdown.Choice, h.RetryCountdown.Kwargs)
	}
}

// The event type field offers the registered types; the operational ones
// (whisperer.*) only to whom the API lets subscribe to them: an admin or a
// publisher, for a hook of their own. A plain user who types one anyway
// gets the API's refusal, and still no offer.
func TestHookFormEventTypesReserved(t *testing.T) {
	n := startNode(t)
	offered := func(body string) (plain, reserved bool) {
		i := strings.Index(body, `<datalist id="event-types">`)
		if i < 0 {
			t.Fatalf("no event type list: %s", body)
		}
		list := body[i : i+strings.Index(body[i:], "</datalist>")]
		return strings.Contains(list, `<option value="`+eventType+`">`), strings.Contains(list, `<option value="`+webhook.EventHookDisabled+`">`)
	}
	alice := n.browser(t)
	alice.signIn(n.aliceKey)
	page := alice.get("/hooks/new")
	if plain, reserved := offered(page.body); !plain || reserved {
		t.Errorf("alice's form: plain %v, reserved %v", plain, reserved)
	}
	v := hookFormValues(csrfField.FindStringSubmatch(page.body)[1])
	v.Set("event_type", webhook.EventHookDisabled)
	p := alice.do(http.MethodPost, "/hooks/new", v)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Only admins and publishers may subscribe") {
		t.Fatalf("alice subscribes to %s: %d %.400s", webhook.EventHookDisabled, p.status, p.body)
	}
	if plain, reserved := offered(p.body); !plain || reserved {
		t.Errorf("alice's refused form: plain %v, reserved %v", plain, reserved)
	}
	v.Set("event_type", eventType)
	m := hookLocation.FindStringSubmatch(alice.do(http.MethodPost, "/hooks/new", v).header.Get("Location"))
	if m == nil {
		t.Fatal("alice cannot create a hook")
	}

	root := n.browser(t)
	root.signIn(n.rootKey)
	if plain, reserved := offered(root.get("/hooks/new").body); !plain || !reserved {
		t.Errorf("root's form: plain %v, reserved %v", plain, reserved)
	}
	// root edits alice's hook: the API would refuse the operational types.
	edit := root.get("/hooks/" + m[1] + "/edit")
	if plain, reserved := offered(edit.body); !plain || reserved {
		t.Errorf("root's form for alice's hook: plain %v, reserved %v", plain, reserved)
	}
	ev := hookFormValues(csrfField.FindStringSubmatch(edit.body)[1])
	ev.Set("event_type", webhook.EventGivenUp)
	p = root.do(http.MethodPost, "/hooks/"+m[1]+"/edit", ev)
	if p.status != http.StatusBadRequest {
		t.Fatalf("root moves alice's hook to %s: %d %.400s", webhook.EventGivenUp, p.status, p.body)
	}
	if plain, reserved := offered(p.body); !plain || reserved {
		t.Errorf("root's refused form for alice's hook: plain %v, reserved %v", plain, reserved)
	}
}
