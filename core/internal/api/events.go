package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// eventJSON is a webhook event as dj-whisperer's WebhookEventSerializer
// writes it, plus Whisperer's state, next attempt and attempt log.
type eventJSON struct {
	ID                 int64           `json:"id"`
	UUID               string          `json:"uuid"`
	Webhook            hookJSON        `json:"webhook"`
	EventType          string          `json:"event_type"`
	RequestPayload     json.RawMessage `json:"request_payload"`
	ResponseContent    string          `json:"response_content"`
	ResponseHTTPStatus *int            `json:"response_http_status"`
	Delivered          bool            `json:"delivered"`
	RetryCount         int             `json:"retry_count"`
	RequestDatetimes   []string        `json:"request_datetimes"`
	// ObjectID and ContentType are dj-whisperer's generic relation to the
	// Django object an event was made from: always null here (Whisperer
	// has no Django models), kept so its clients find the fields.
	ObjectID      *int64        `json:"object_id"`
	ContentType   *string       `json:"content_type"`
	CreatedDate   string        `json:"created_date"`
	ModifiedDate  string        `json:"modified_date"`
	State         webhook.State `json:"state"`
	NextAttemptAt *string       `json:"next_attempt_at"`
	Attempts      []attemptJSON `json:"attempts"`
}

type attemptJSON struct {
	AttemptedAt  string  `json:"attempted_at"`
	DurationMS   float64 `json:"duration_ms"`
	Status       *int    `json:"status"`
	ResponseBody string  `json:"response_body"`
	Error        string  `json:"error"`
}

// renderEvent writes j for viewer (a user id): see renderHook.
func renderEvent(j webhook.Job, viewer int64) eventJSON {
	ev := j.Event
	out := eventJSON{
		ID: ev.ID, UUID: ev.UUID, Webhook: renderHook(j.Webhook, viewer), EventType: ev.EventType,
		RequestPayload:  webhook.RequestBody(ev.EventType, ev.UUID, ev.Payload),
		ResponseContent: ev.ResponseContent, ResponseHTTPStatus: ev.ResponseHTTPStatus,
		Delivered: ev.Delivered, RetryCount: ev.RetryCount,
		RequestDatetimes: make([]string, len(ev.Attempts)),
		CreatedDate:      formatTime(ev.CreatedAt), ModifiedDate: formatTime(ev.ModifiedAt),
		State: ev.State, Attempts: make([]attemptJSON, len(ev.Attempts)),
	}
	if ev.State == webhook.StatePending {
		t := formatTime(ev.NextAttemptAt)
		out.NextAttemptAt = &t
	}
	for i, a := range ev.Attempts {
		out.RequestDatetimes[i] = formatTime(a.AttemptedAt)
		aj := attemptJSON{
			AttemptedAt: formatTime(a.AttemptedAt), DurationMS: float64(a.Duration.Microseconds()) / 1000,
			ResponseBody: a.Body, Error: a.Error,
		}
		if a.Status != 0 {
			st := a.Status
			aj.Status = &st
		}
		out.Attempts[i] = aj
	}
	return out
}

// eventRef is a published event in publish's answer.
type eventRef struct {
	ID        int64         `json:"id"`
	UUID      string        `json:"uuid"`
	WebhookID int64         `json:"webhook"`
	State     webhook.State `json:"state"`
}

// writeRefs answers status with {"events": refs(evs)}, the bytes writeJSON
// writes, appended directly when every string is plain (always, but for a
// uuid or state a future change makes otherwise): a publish's answer,
// on every publish, is then a few appends instead of reflection over a map.
func writeRefs(w http.ResponseWriter, status int, evs []webhook.Event) error {
	b := make([]byte, 0, 16+80*len(evs))
	b = append(b, `{"events":[`...)
	for i, e := range evs {
		if !webhook.JSONPlain(e.UUID) || !webhook.JSONPlain(string(e.State)) {
			return writeJSON(w, status, map[string]any{"events": refs(evs)})
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, e.ID, 10)
		b = append(b, `,"uuid":"`...)
		b = append(b, e.UUID...)
		b = append(b, `","webhook":`...)
		b = strconv.AppendInt(b, e.WebhookID, 10)
		b = append(b, `,"state":"`...)
		b = append(b, e.State...)
		b = append(b, `"}`...)
	}
	writeBody(w, status, append(b, "]}\n"...))
	return nil
}

func refs(evs []webhook.Event) []eventRef {
	out := make([]eventRef, len(evs))
	for i, e := range evs {
		out[i] = eventRef{ID: e.ID, UUID: e.UUID, WebhookID: e.WebhookID, State: e.State}
	}
	return out
}

// outcomeJSON is an Outcome as publish with "async": false answers it.
type outcomeJSON struct {
	ID                 int64         `json:"id"`
	UUID               string        `json:"uuid"`
	WebhookID          int64         `json:"webhook"`
	ResponseHTTPStatus *int          `json:"response_http_status"`
	Delivered          bool          `json:"delivered"`
	Error              string        `json:"error"`
	ErrorClass         string        `json:"error_class"`
	RetryCount         int           `json:"retry_count"`
	State              webhook.State `json:"state"`
	NextAttemptAt      *string       `json:"next_attempt_at"`
}

// renderOutcomes renders os for a requester who may read the full error
// text of the outcomes for which full is true (their own hooks); of the
// others' outcomes, the error is only its class: another user's error text
// tells where their hook points (an address, a certificate name).
func renderOutcomes(os []webhook.Outcome, full func(webhook.Outcome) bool) []outcomeJSON {
	out := make([]outcomeJSON, len(os))
	for i, o := range os {
		oj := outcomeJSON{ID: o.EventID, UUID: o.UUID, WebhookID: o.WebhookID, Delivered: o.Delivered,
			Error: o.Error, ErrorClass: string(o.ErrorClass), RetryCount: o.RetryCount, State: o.State}
		if !full(o) && o.Error != "" {
			oj.Error = cmp.Or(oj.ErrorClass, "failed") // unclassified: never its text
		}
		if o.Status != 0 {
			st := o.Status
			oj.ResponseHTTPStatus = &st
		}
		if o.State == webhook.StatePending && !o.NextAttemptAt.IsZero() {
			t := formatTime(o.NextAttemptAt)
			oj.NextAttemptAt = &t
		}
		out[i] = oj
	}
	return out
}

// eventKey reads the {id} path variable: a numeric id or a uuid (plain or
// dashed). Anything else is a 404 without asking the store.
func eventKey(r *http.Request) (string, error) {
	v := mux.Vars(r)["id"]
	if _, ok := parseID(v); ok {
		return v, nil
	}
	if u, ok := normalizeUUID(v); ok {
		return u, nil
	}
	return "", webhook.ErrNotFound
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	key, err := eventKey(r)
	if err != nil {
		return err
	}
	j, err := s.deps.Store.Event(r.Context(), scope(r), key)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, renderEvent(j, user(r).ID))
}

var validStates = []webhook.State{webhook.StatePending, webhook.StateDelivered, webhook.StateGivenUp}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	var f webhook.EventFilter
	errs := &webhook.ValidationError{}
	params := map[string]string{}
	for _, name := range []string{"uuid", "event_type", "response_http_status", "delivered", "created_date", "webhook", "state"} {
		v, err := queryValue(r, name)
		if err != nil {
			return err
		}
		params[name] = v
	}
	if v := params["uuid"]; v != "" {
		u, ok := normalizeUUID(v)
		if !ok {
			errs.Add("uuid", "Enter a valid UUID.")
		}
		f.UUID = u
	}
	f.EventType = params["event_type"]
	if v := params["response_http_status"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 999 {
			errs.Add("response_http_status", "Enter a valid HTTP status code.")
		}
		f.ResponseHTTPStatus = &n
	}
	if v := params["delivered"]; v != "" {
		b, ok := parseBool(v)
		if !ok {
			errs.Add("delivered", "Enter a valid boolean.")
		}
		f.Delivered = &b
	}
	if v := params["created_date"]; v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			errs.Add("created_date", "Enter a valid date.")
		}
		f.CreatedDate = d
	}
	if v := params["webhook"]; v != "" {
		id, ok := parseID(v)
		if !ok {
			errs.Add("webhook", "Select a valid choice. That choice is not one of the available choices.")
		}
		f.WebhookID = id
	}
	if v := params["state"]; v != "" {
		f.State = webhook.State(v)
		found := false
		for _, st := range validStates {
			found = found || st == f.State
		}
		if !found {
			errs.Add("state", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", v))
		}
	}
	if err := errs.Err(); err != nil {
		return err
	}
	return listPage(s, w, r,
		func(ctx context.Context, sc webhook.Scope, p webhook.Page) ([]int64, webhook.PageInfo, error) {
			return s.deps.Store.EventIDs(ctx, sc, f, p)
		},
		eventChunk, s.deps.Store.EventsByID, func(j webhook.Job, viewer int64) any { return renderEvent(j, viewer) })
}

// checkFields adds an "Unknown field." error for each key of obj not in
// known.
func checkFields(obj map[string]json.RawMessage, errs *webhook.ValidationError, known ...string) {
	for k := range obj {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			errs.Add(k, msgUnknownField)
		}
	}
}

// optBool reads an optional boolean field of obj into *dst.
func optBool(obj map[string]json.RawMessage, name string, dst *bool, errs *webhook.ValidationError) {
	if raw, ok := obj[name]; ok {
		b, msg := decodeBool(raw)
		if msg != "" {
			errs.Add(name, msg)
			return
		}
		*dst = b
	}
}

func (s *Server) notify() {
	if s.deps.Notify != nil {
		s.deps.Notify()
	}
}

// redeliverEvent is POST hook_events/{id}/redeliver/ {"force": false}.
func (s *Server) redeliverEvent(w http.ResponseWriter, r *http.Request) error {
	key, err := eventKey(r)
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	errs := &webhook.ValidationError{}
	checkFields(obj, errs, "force")
	var force bool
	optBool(obj, "force", &force, errs)
	if err := errs.Err(); err != nil {
		return err
	}
	j, err := s.deps.Store.Redeliver(r.Context(), scope(r), key, force)
	if err != nil {
		return err
	}
	s.notify()
	return writeJSON(w, http.StatusAccepted, renderEvent(j, user(r).ID))
}

const msgDatetime = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], or YYYY-MM-DD."

// parseSince reads an RFC 3339 time, one without a zone (taken as UTC), or
// a date (its UTC midnight).
func parseSince(raw json.RawMessage) (time.Time, string) {
	s, msg := decodeString(raw, false, false, 64)
	if msg != "" {
		return time.Time{}, msg
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), ""
		}
	}
	return time.Time{}, msgDatetime
}

// redeliverFailed is POST hook_events/redeliver/ {"since", "until",
// "webhook"}: every failed or given-up event created in the range goes
// back on the queue.
func (s *Server) redeliverFailed(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	errs := &webhook.ValidationError{}
	checkFields(obj, errs, "since", "until", "webhook")
	var f webhook.RedeliverFilter
	var msg string
	if raw, ok := obj["since"]; !ok {
		errs.Add("since", msgRequired)
	} else if f.Since, msg = parseSince(raw); msg != "" {
		errs.Add("since", msg)
	}
	if raw, ok := obj["until"]; ok && !isNull(raw) {
		if f.Until, msg = parseSince(raw); msg != "" {
			errs.Add("until", msg)
		} else if !f.Since.IsZero() && !f.Until.After(f.Since) {
			errs.Add("until", "Must be later than since.")
		}
	}
	if raw, ok := obj["webhook"]; ok && !isNull(raw) {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			errs.Add("webhook", fmt.Sprintf("Incorrect type. Expected pk value, received %s.", pyType(raw)))
		} else if id, ok := parseID(n.String()); !ok {
			errs.Add("webhook", fmt.Sprintf("Invalid pk %q - object does not exist.", n.String()))
		} else if _, err := s.deps.Store.Webhook(r.Context(), scope(r), id); err != nil {
			if !errors.Is(err, webhook.ErrNotFound) {
				return err
			}
			errs.Add("webhook", fmt.Sprintf("Invalid pk %q - object does not exist.", n.String()))
		} else {
			f.WebhookID = id
		}
	}
	if err := errs.Err(); err != nil {
		return err
	}
	n, err := s.deps.Store.RedeliverFailed(r.Context(), scope(r), f)
	if err != nil {
		return err
	}
	if n > 0 {
		s.notify()
	}
	return writeJSON(w, http.StatusAccepted, map[string]int64{"redelivered": n})
}

// msgReservedPublish refuses a client's publish of an operational event
// type: only the server publishes them (a redelivery by event_uuid is not
// a publish).
var msgReservedPublish = fmt.Sprintf("Event types starting with %q are Whisperer's operational events: "+
	"only the server publishes them.", webhook.OpsPrefix)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// publish is POST events/: the successor of dj-whisperer's
// deliver_event(instance, event_type, _async=True, event_uuid=None).
func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	u := user(r)
	if !u.Role.CanPublish() {
		return webhook.ErrForbidden
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey || !utf8.ValidString(key) ||
		strings.ContainsFunc(key, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return &httpError{status: http.StatusBadRequest,
			msg: fmt.Sprintf("The Idempotency-Key header must be at most %d printable characters.", maxIdempotencyKey)}
	}
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	errs := &webhook.ValidationError{}
	checkFields(obj, errs, "event_type", "payload", "async", "event_uuid", "force")
	async, force := true, false
	optBool(obj, "async", &async, errs)
	optBool(obj, "force", &force, errs)
	var eventUUID string
	if raw, ok := obj["event_uuid"]; ok && !isNull(raw) {
		v, msg := decodeString(raw, false, false, 64)
		if msg == "" {
			var ok bool
			if eventUUID, ok = normalizeUUID(v); !ok {
				msg = "Must be a valid UUID."
			}
		}
		if msg != "" {
			errs.Add("event_uuid", msg)
		}
	}
	var eventType string
	if raw, ok := obj["event_type"]; ok {
		var msg string
		if eventType, msg = decodeString(raw, false, false, maxNameLen); msg != "" {
			errs.Add("event_type", msg)
		} else if eventUUID == "" && webhook.Reserved(eventType) {
			errs.Add("event_type", msgReservedPublish)
		}
	} else if eventUUID == "" {
		errs.Add("event_type", msgRequired)
	}
	if err := errs.Err(); err != nil {
		return err
	}

	if eventUUID != "" {
		return s.republish(w, r, eventUUID, eventType, force, async)
	}
	req := webhook.PublishRequest{EventType: eventType, Payload: obj["payload"], PublisherID: u.ID, IdempotencyKey: key}
	if !async && s.deps.DeliverNow != nil {
		// Out of every dispatcher's reach (PostgreSQL's NOTIFY would wake
		// them at commit) until DeliverNow has claimed them.
		req.Hold = s.cfg.InlineHold
	}
	pub, err := s.deps.Store.Publish(r.Context(), req)
	if err != nil {
		return err
	}
	if pub.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		return writeRefs(w, http.StatusOK, pub.Events)
	}
	// Events leased to this node's dispatcher at publish are on their way
	// already: only the others need a claim.
	return s.answerPublished(w, r, pub.Events, async, len(pub.Events) > pub.Leased)
}

// republish re-delivers an existing event: deliver_event's event_uuid.
// The stored payload is sent again; event_type, when given, must be the
// event's.
//
// Only the hook's owner, an admin or the publisher of the event's message
// may: anyone else gets 404, as for an event they cannot see.
func (s *Server) republish(w http.ResponseWriter, r *http.Request, uuid, eventType string, force, async bool) error {
	sc := scope(r)
	sc.Published = true
	j, err := s.deps.Store.Event(r.Context(), sc, uuid)
	if err != nil {
		return err
	}
	if eventType != "" && eventType != j.Event.EventType {
		return webhook.NewValidationError("event_type",
			fmt.Sprintf("Event %s is of type %q, not %q.", j.Event.UUID, j.Event.EventType, eventType))
	}
	var hold time.Duration
	if !async && s.deps.DeliverNow != nil {
		hold = s.cfg.InlineHold // as a publish's: the dispatchers leave it to DeliverNow
	}
	j, err = s.deps.Store.RedeliverHeld(r.Context(), sc, uuid, force, hold)
	if err != nil {
		return err
	}
	return s.answerPublished(w, r, []webhook.Event{j.Event}, async, true)
}

// answerPublished answers 202 with the queued events, or, with "async":
// false, makes their first attempt inline and answers 200 with the
// outcomes. The dispatcher is woken (when wake) after the inline
// attempts, not before, so that it does not claim the events DeliverNow
// is about to.
func (s *Server) answerPublished(w http.ResponseWriter, r *http.Request, evs []webhook.Event, async, wake bool) error {
	if async || len(evs) == 0 {
		if len(evs) > 0 && wake {
			s.notify()
		}
		return writeRefs(w, http.StatusAccepted, evs)
	}
	defer s.notify()
	if s.deps.DeliverNow == nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"events": refs(evs),
			"detail": "Inline delivery is not available on this server; the events are queued."})
	}
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	outcomes, err := s.deps.DeliverNow(r.Context(), ids)
	if err != nil {
		// The events are committed and will be delivered in the
		// background; say so rather than fail a publish that happened.
		s.log.WarnContext(r.Context(), "inline delivery failed", "error", err, "request_id", requestID(r.Context()))
		return writeJSON(w, http.StatusAccepted, map[string]any{"events": refs(evs),
			"detail": "Inline delivery was not possible; the events are queued."})
	}
	// An event DeliverNow did not get (a dispatcher claimed it first, as
	// after a redelivery) is being delivered in the background: answer it
	// as pending rather than leave it out.
	got := make(map[int64]bool, len(outcomes))
	for _, o := range outcomes {
		got[o.EventID] = true
	}
	for _, e := range evs {
		if !got[e.ID] {
			outcomes = append(outcomes, webhook.Outcome{EventID: e.ID, UUID: e.UUID, WebhookID: e.WebhookID,
				RetryCount: e.RetryCount, State: webhook.StatePending})
		}
	}
	// The full error text is the hook owner's (and an admin's) to read.
	u := user(r)
	owner := make(map[int64]int64, len(evs))
	for _, e := range evs {
		owner[e.ID] = e.UserID
	}
	full := func(o webhook.Outcome) bool { return u.Role == webhook.RoleAdmin || owner[o.EventID] == u.ID }
	return writeJSON(w, http.StatusOK, map[string]any{"events": renderOutcomes(outcomes, full)})
}
