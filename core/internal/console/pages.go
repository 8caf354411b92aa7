package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// pager reads ?before=ID / ?after=ID into a Page.
func pager(q url.Values) (webhook.Page, error) {
	p := webhook.Page{Limit: pageSize}
	for name, dst := range map[string]*int64{"before": &p.Before, "after": &p.After} {
		if v := q.Get(name); v != "" {
			id, ok := parseID(v)
			if !ok {
				return p, &badRequest{fmt.Sprintf("%s must be an id.", name)}
			}
			*dst = id
		}
	}
	return p, nil
}

// links are a list's paging links: the query q with before/after set.
type links struct{ Next, Prev string }

func pageLinks(path string, q url.Values, ids []int64, info webhook.PageInfo) links {
	var l links
	q = cloneValues(q)
	q.Del("before")
	q.Del("after")
	if info.HasNext && len(ids) > 0 {
		q.Set("before", strconv.FormatInt(ids[len(ids)-1], 10))
		l.Next = path + "?" + q.Encode()
		q.Del("before")
	}
	if info.HasPrev && len(ids) > 0 {
		q.Set("after", strconv.FormatInt(ids[0], 10))
		l.Prev = path + "?" + q.Encode()
	}
	return l
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// boundedText reads a query value of at most n bytes.
func boundedText(q url.Values, name string, n int) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if len(v) > n || !utf8.ValidString(v) {
		return "", &badRequest{fmt.Sprintf("%s must be at most %d characters of text.", name, n)}
	}
	return v, nil
}

// hookRow is a hook as the pages show it.
type hookRow struct {
	webhook.Webhook
	Owner string
	// Target is the URL without its credentials.
	Target string
	// Headers are the additional headers, values hidden from anyone but
	// the owner (as the API hides them).
	Headers [][2]string
	// Countdown and Config are pretty-printed JSON; Config without the
	// basic-auth password.
	Countdown, Config string
	// Success is the share of the last day's requests that were
	// delivered, "" when none was sent (the hooks list).
	Success string
	// Requests is how many requests that share is of.
	Requests int64
}

// successWindow is the span of the hooks list's success ratio.
const successWindow = 24 * time.Hour

// successRatio writes delivered of attempts as a whole percentage, never
// rounded up to 100% (or down to 0%) when one request went otherwise.
func successRatio(h webhook.HookSuccess) string {
	if h.Attempts == 0 {
		return ""
	}
	pct := h.Delivered * 100 / h.Attempts
	if pct == 0 && h.Delivered > 0 {
		pct = 1
	}
	return fmt.Sprintf("%d%%", pct)
}

func (h *Handler) hookView(w webhook.Webhook, viewer int64, names map[int64]string) hookRow {
	row := hookRow{Webhook: w, Owner: names[w.UserID], Target: webhook.RedactURL(w.TargetURL)}
	for k, v := range w.AdditionalHeaders {
		if w.UserID != viewer {
			v = "(hidden: only the owner sees header values)"
		}
		row.Headers = append(row.Headers, [2]string{k, v})
	}
	slices.SortFunc(row.Headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	row.Countdown = w.RetryCountdown.Choice + " " + pretty(w.RetryCountdown.Kwargs)
	cfg := w.ShownConfig()
	b, _ := json.Marshal(cfg)
	row.Config = pretty(b)
	w.SecretKey, w.PreviousSecretKey = "", "" // never rendered
	row.Webhook = w
	return row
}

// pretty indents JSON, or returns it as it is when it is not JSON.
func pretty(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return buf.String()
}

// excerpt is the first n bytes of s, cut at a character boundary.
func excerpt(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " … (truncated)"
}

func (h *Handler) names(r *http.Request, rq *request) map[int64]string {
	if rq.sess.User.Role != webhook.RoleAdmin {
		return map[int64]string{rq.sess.User.ID: rq.sess.User.Username}
	}
	names, err := h.deps.Store.UserNames(r.Context())
	if err != nil {
		return map[int64]string{}
	}
	return names
}

type hooksData struct {
	Hooks     []hookRow
	EventType string
	Active    string
	Links     links
	CSRF      string
	Query     string
	// Manage shows the buttons that change hooks (a portal may not).
	Manage bool
}

func (h *Handler) hooksPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	var f webhook.HookFilter
	var err error
	if f.EventType, err = boundedText(q, "event_type", 255); err != nil {
		return err
	}
	active := q.Get("active")
	switch active {
	case "":
	case "yes", "no":
		b := active == "yes"
		f.IsActive = &b
	default:
		return &badRequest{"active must be yes or no."}
	}
	p, err := pager(q)
	if err != nil {
		return err
	}
	ids, info, err := h.deps.Store.WebhookIDs(r.Context(), rq.scope, f, p)
	if err != nil {
		return err
	}
	hooks, err := h.deps.Store.WebhooksByID(r.Context(), rq.scope, ids)
	if err != nil {
		return err
	}
	success, err := h.deps.Store.HookSuccess(r.Context(), ids, time.Now().Add(-successWindow))
	if err != nil {
		return err
	}
	names := h.names(r, rq)
	d := hooksData{EventType: f.EventType, Active: active, Links: pageLinks("/hooks", q, ids, info),
		CSRF: rq.sess.CSRF, Query: r.URL.RawQuery, Manage: rq.sess.Can(webhook.CapManageHooks)}
	for _, hk := range hooks {
		row := h.hookView(hk, rq.sess.User.ID, names)
		row.Success, row.Requests = successRatio(success[hk.ID]), success[hk.ID].Attempts
		d.Hooks = append(d.Hooks, row)
	}
	h.render(w, r, rq, http.StatusOK, "hooks", "Hooks", d)
	return nil
}

// pathHook is the hook the path's {id} names, in the requester's scope:
// errNotFound for a malformed id, the store's not found for another's.
func (h *Handler) pathHook(r *http.Request, rq *request) (webhook.Webhook, error) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return webhook.Webhook{}, errNotFound
	}
	return h.deps.Store.Webhook(r.Context(), rq.scope, id)
}

type hookData struct {
	Hook   hookRow
	CSRF   string
	Done   string
	Manage bool
}

func (h *Handler) hookPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	hk, err := h.pathHook(r, rq)
	if err != nil {
		return err
	}
	h.render(w, r, rq, http.StatusOK, "hook", fmt.Sprintf("Hook %d", hk.ID), hookData{
		Hook: h.hookView(hk, rq.sess.User.ID, h.names(r, rq)), CSRF: rq.sess.CSRF, Done: doneMessage(r.URL.Query().Get("done")),
		Manage: rq.sess.Can(webhook.CapManageHooks),
	})
	return nil
}

// doneMessage is the confirmation a redirect after a write asks for; only
// fixed texts, never one from the URL.
func doneMessage(key string) string {
	return map[string]string{
		"enabled":     "The hook is active again.",
		"disabled":    "The hook is deactivated: it gets no new events.",
		"redelivered": "The event is queued for delivery again.",
		"created":     "The hook is registered.",
		"saved":       "The hook is saved.",
		"rotated":     "The hook signs with its new secret.",
	}[key]
}

// setActive is POST /hooks/{id}/active, active=yes|no: PATCH
// hooks/{id}/ {"is_active": …} through the API.
func (h *Handler) setActive(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return errNotFound
	}
	var active bool
	switch r.PostFormValue("active") {
	case "yes":
		active = true
	case "no":
	default:
		return &badRequest{"active must be yes or no."}
	}
	body, _ := json.Marshal(map[string]bool{"is_active": active})
	if err := h.callAPI(r, rq, http.MethodPatch, fmt.Sprintf("hooks/%d/", id), body); err != nil {
		return err
	}
	done := "disabled"
	if active {
		done = "enabled"
	}
	http.Redirect(w, r, withTenant(fmt.Sprintf("/hooks/%d?done=%s", id, done), rq), http.StatusSeeOther)
	return nil
}

func withTenant(u string, rq *request) string {
	if rq.tenant == 0 {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "user=" + strconv.FormatInt(rq.tenant, 10)
}

// stateChoices are the event list's state filter: the stored states, and
// "failed" (pending after a failed attempt).
var stateChoices = []string{"delivered", "failed", "given_up", "pending"}

type eventsData struct {
	Events     []eventRow
	EventTypes []string
	// The filter as entered, to fill the form again.
	State, EventType, Hook, Since, Until, UUID string
	Undelivered                                bool
	Links                                      links
	States                                     []string
	// Refresh is the URL the list polls (the first page only).
	Refresh string
	// Bulk links the undelivered view to redelivering its range (empty
	// when the session may not redeliver).
	Bulk string
}

type eventRow struct {
	webhook.Event
	Target string
	Status string
}

// timeLayouts are what the time range accepts: the datetime-local input's
// forms, RFC 3339, or a date. Times without a zone are UTC.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, time.DateOnly}

func parseTime(q url.Values, name string) (time.Time, string, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, "", nil
	}
	if len(v) <= 40 {
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, v); err == nil {
				return t.UTC(), v, nil
			}
		}
	}
	return time.Time{}, "", &badRequest{fmt.Sprintf("%s must be a time like 2024-05-01T12:00 (UTC) or a date.", name)}
}

func (h *Handler) eventsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	var f webhook.EventFilter
	d := eventsData{States: stateChoices, Undelivered: q.Get("view") == "undelivered"}
	var err error
	if d.EventType, err = boundedText(q, "event_type", 255); err != nil {
		return err
	}
	f.EventType = d.EventType
	d.State = q.Get("state")
	switch d.State {
	case "":
	case "failed":
		f.State, f.Failed = webhook.StatePending, true
	case string(webhook.StateDelivered), string(webhook.StatePending), string(webhook.StateGivenUp):
		f.State = webhook.State(d.State)
	default:
		return &badRequest{"state must be one of " + strings.Join(stateChoices, ", ") + "."}
	}
	if d.Undelivered {
		f.Failed = true
	}
	if d.Hook = q.Get("hook"); d.Hook != "" {
		id, ok := parseID(d.Hook)
		if !ok {
			return &badRequest{"hook must be a hook's id."}
		}
		f.WebhookID = id
	}
	if f.CreatedSince, d.Since, err = parseTime(q, "since"); err != nil {
		return err
	}
	if f.CreatedBefore, d.Until, err = parseTime(q, "until"); err != nil {
		return err
	}
	if d.UUID = strings.TrimSpace(q.Get("uuid")); d.UUID != "" {
		u := strings.ToLower(strings.ReplaceAll(d.UUID, "-", ""))
		if !isHex(u, 32) {
			return &badRequest{"uuid must be an event's uuid (32 hex digits, dashes allowed)."}
		}
		f.UUID = u
	}
	p, err := pager(q)
	if err != nil {
		return err
	}
	ids, info, err := h.deps.Store.EventIDs(r.Context(), rq.scope, f, p)
	if err != nil {
		return err
	}
	jobs, err := h.deps.Store.EventsByID(r.Context(), rq.scope, ids)
	if err != nil {
		return err
	}
	if d.EventTypes, err = h.deps.Store.EventTypes(r.Context()); err != nil {
		return err
	}
	for _, j := range jobs {
		d.Events = append(d.Events, eventRow{Event: j.Event, Target: webhook.RedactURL(j.Webhook.TargetURL), Status: status(j.Event.ResponseHTTPStatus)})
	}
	d.Links = pageLinks("/events", q, ids, info)
	if p.Before == 0 && p.After == 0 {
		d.Refresh = r.URL.RequestURI()
	}
	title := "Events"
	if d.Undelivered {
		title = "Undelivered events"
		if rq.sess.Can(webhook.CapRedeliver) {
			bq := url.Values{}
			for k, v := range map[string]string{"since": d.Since, "until": d.Until, "hook": d.Hook} {
				if v != "" {
					bq.Set(k, v)
				}
			}
			if rq.tenant != 0 {
				bq.Set("user", strconv.FormatInt(rq.tenant, 10))
			}
			d.Bulk = "/events/redeliver-failed"
			if len(bq) > 0 {
				d.Bulk += "?" + bq.Encode()
			}
		}
	}
	h.render(w, r, rq, http.StatusOK, "events", title, d)
	return nil
}

func status(s *int) string {
	if s == nil {
		return "—"
	}
	return strconv.Itoa(*s)
}

type eventData struct {
	Event   webhook.Event
	Hook    hookRow
	Payload string
	// Attempts are newest first, bodies cut to an excerpt.
	Attempts []attemptRow
	CSRF     string
	Done     string
	// Redeliver shows the redeliver button (a portal may not).
	Redeliver bool
}

type attemptRow struct {
	webhook.Attempt
	Excerpt  string
	Duration string
}

// bodyExcerpt is how much of a response body the event page shows.
const bodyExcerpt = 2048

func (h *Handler) loadEvent(r *http.Request, rq *request) (webhook.Job, error) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return webhook.Job{}, errNotFound
	}
	return h.deps.Store.Event(r.Context(), rq.scope, strconv.FormatInt(id, 10))
}

func (h *Handler) eventPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	j, err := h.loadEvent(r, rq)
	if err != nil {
		return err
	}
	d := eventData{Event: j.Event, Hook: h.hookView(j.Webhook, rq.sess.User.ID, h.names(r, rq)),
		Payload: pretty(webhook.RequestBody(j.Event.EventType, j.Event.UUID, j.Event.Payload)),
		CSRF:    rq.sess.CSRF, Done: doneMessage(r.URL.Query().Get("done")), Redeliver: rq.sess.Can(webhook.CapRedeliver)}
	for _, a := range j.Event.Attempts {
		d.Attempts = append(d.Attempts, attemptRow{Attempt: a, Excerpt: excerpt(a.Body, bodyExcerpt),
			Duration: fmt.Sprintf("%.1f ms", float64(a.Duration.Microseconds())/1000)})
	}
	h.render(w, r, rq, http.StatusOK, "event", fmt.Sprintf("Event %d", j.Event.ID), d)
	return nil
}

// confirmRedeliver asks before redelivering: a page with one button, so
// that confirming needs no script.
func (h *Handler) confirmRedeliver(w http.ResponseWriter, r *http.Request, rq *request) error {
	j, err := h.loadEvent(r, rq)
	if err != nil {
		return err
	}
	h.render(w, r, rq, http.StatusOK, "redeliver", "Redeliver?", eventData{Event: j.Event,
		Hook: h.hookView(j.Webhook, rq.sess.User.ID, nil), CSRF: rq.sess.CSRF})
	return nil
}

// redeliver is POST hook_events/{id}/redeliver/ through the API.
func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return errNotFound
	}
	// Confirming the redelivery of a delivered event is the API's force.
	body, _ := json.Marshal(map[string]bool{"force": r.PostFormValue("force") == "yes"})
	if err := h.callAPI(r, rq, http.MethodPost, fmt.Sprintf("hook_events/%d/redeliver/", id), body); err != nil {
		return err
	}
	http.Redirect(w, r, withTenant(fmt.Sprintf("/events/%d?done=redelivered", id), rq), http.StatusSeeOther)
	return nil
}
