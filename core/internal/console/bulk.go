package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// countLimit bounds the counts a page shows: the range redelivery's
// (Store.CountFailedUpTo) and each of the queue's phases on the overview
// (Store.QueueDepthUpTo). "1000 or more" costs the same on a million
// events as on a thousand; an exact count of a day of a million events
// (70-1040 ms), or of a backlog of 50,000 (70-170 ms), does not. Past a
// thousand, what an operator acts on is the lag, and the redelivery's
// result page gives the exact number.
const countLimit = 1000

// bulkData is the "redeliver all failed in a range" pages: the form, its
// confirmation (Count set) and the result (Done set).
type bulkData struct {
	// The range as entered, to fill the form again.
	Since, Until, Hook string
	CSRF               string
	// Confirm is true once the range is valid: Count events will go.
	Confirm bool
	Count   int64
	// More is true when Count reached countLimit: at least that many.
	More bool
	// Done is true after the redelivery: Redelivered went back on the queue.
	Done        bool
	Redelivered int64
	// Back is the undelivered list of the same range.
	Back string
	// Tenant is the user an admin picked, 0 for none.
	Tenant int64
}

// bulkRange reads since (required), until and hook from v.
func bulkRange(v url.Values, d *bulkData) (webhook.RedeliverFilter, error) {
	var f webhook.RedeliverFilter
	var err error
	if f.Since, d.Since, err = parseTime(v, "since"); err != nil {
		return f, err
	}
	if f.Until, d.Until, err = parseTime(v, "until"); err != nil {
		return f, err
	}
	if d.Hook = v.Get("hook"); d.Hook != "" {
		id, ok := parseID(d.Hook)
		if !ok {
			return f, &badRequest{"hook must be a hook's id."}
		}
		f.WebhookID = id
	}
	if d.Since == "" {
		return f, &badRequest{"since is required: the redelivery covers the failed events created from then on."}
	}
	if !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, &badRequest{"until must be later than since."}
	}
	q := url.Values{"view": {"undelivered"}, "since": {d.Since}}
	for k, v := range map[string]string{"until": d.Until, "hook": d.Hook} {
		if v != "" {
			q.Set(k, v)
		}
	}
	d.Back = "/events?" + q.Encode()
	return f, nil
}

// bulkScope is who the redelivery acts as: the signed-in user, or, for
// an admin who picked a tenant, that tenant as a plain user, so that the
// API's scope is the picked user's rows and not everyone's (the API's
// bulk redelivery has no user parameter).
func (h *Handler) bulkScope(rq *request) *request {
	if rq.tenant == 0 {
		return rq
	}
	as := *rq
	as.sess.User = webhook.User{ID: rq.tenant, Role: webhook.RoleUser}
	return &as
}

// confirmBulk is GET /events/redeliver-failed: without since, the form;
// with a valid range, how many events it would redeliver and a button;
// with done=N, the result.
func (h *Handler) confirmBulk(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	d := bulkData{CSRF: rq.sess.CSRF, Tenant: rq.tenant}
	if q.Get("since") == "" {
		d.Since = time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:04")
		d.Hook = q.Get("hook")
		h.render(w, r, rq, http.StatusOK, "bulk", "Redeliver failed events", d)
		return nil
	}
	f, err := bulkRange(q, &d)
	if err != nil {
		return err
	}
	d.Back = withTenant(d.Back, rq)
	if raw := q.Get("done"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return &badRequest{"done must be a count."}
		}
		d.Done, d.Redelivered = true, n
		h.render(w, r, rq, http.StatusOK, "bulk", "Failed events redelivered", d)
		return nil
	}
	if f.WebhookID != 0 {
		// Another user's hook is a 404, as everywhere.
		if _, err := h.deps.Store.Webhook(r.Context(), rq.scope, f.WebhookID); err != nil {
			return err
		}
	}
	if d.Count, err = h.deps.Store.CountFailedUpTo(r.Context(), rq.scope, f, countLimit); err != nil {
		return err
	}
	d.More = d.Count >= countLimit
	d.Confirm = true
	h.render(w, r, rq, http.StatusOK, "bulk", "Redeliver failed events?", d)
	return nil
}

// redeliverBulk is POST /events/redeliver-failed: POST
// hook_events/redeliver/ {"since", "until", "webhook"} through the API,
// which answers with the count once the events are back on the queue;
// the browser is sent to the result.
func (h *Handler) redeliverBulk(w http.ResponseWriter, r *http.Request, rq *request) error {
	var d bulkData
	f, err := bulkRange(r.PostForm, &d)
	if err != nil {
		return err
	}
	req := map[string]any{"since": f.Since.Format(time.RFC3339Nano)}
	if !f.Until.IsZero() {
		req["until"] = f.Until.Format(time.RFC3339Nano)
	}
	if f.WebhookID != 0 {
		req["webhook"] = f.WebhookID
	}
	body, _ := json.Marshal(req)
	ans, err := h.callAPIBody(r, h.bulkScope(rq), http.MethodPost, "hook_events/redeliver/", body)
	if err != nil {
		return err
	}
	var res struct {
		Redelivered int64 `json:"redelivered"`
	}
	if err := json.Unmarshal(ans, &res); err != nil {
		return fmt.Errorf("console: the API's redelivery answer: %w", err)
	}
	q := url.Values{"since": {d.Since}, "done": {strconv.FormatInt(res.Redelivered, 10)}}
	for k, v := range map[string]string{"until": d.Until, "hook": d.Hook} {
		if v != "" {
			q.Set(k, v)
		}
	}
	http.Redirect(w, r, withTenant("/events/redeliver-failed?"+q.Encode(), rq), http.StatusSeeOther)
	return nil
}
