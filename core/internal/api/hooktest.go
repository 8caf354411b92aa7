package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// PreviewFunc builds the request a delivery of ev to hook would send at
// now: its exact body and headers after the hook's transform, signatures
// included. err (a *webhook.TransformError) is why the transform left
// nothing to send. core/app passes the sender's own (api does not import
// delivery).
type PreviewFunc func(ctx context.Context, hook *webhook.Webhook, ev *webhook.Event, now time.Time) (body []byte, header http.Header, err error)

// testResult is the answer of POST hooks/{id}/test/.
type testResult struct {
	Hook      int64  `json:"hook"`
	EventType string `json:"event_type"`
	// Deliver says whether a publish of this event would reach the hook.
	Deliver bool `json:"deliver"`
	// Reason says why not: the filter condition that failed (as JSON),
	// another event type, or an inactive hook. Empty when Deliver.
	Reason string `json:"reason"`
	// FilteredBy is the failing filter condition, null otherwise.
	FilteredBy *string `json:"filtered_by"`
	// FilterError is why the hook's plugin filter failed (fan-out then
	// delivers); null otherwise.
	FilterError *string `json:"filter_error"`
	// Transform says what the hook's transform did; null without one.
	Transform *testTransform `json:"transform"`
	// Request is what the receiver would get; null when the transform
	// failed or cancelled the attempt (nothing would be sent).
	Request *testRequest `json:"request"`
}

type testTransform struct {
	Name string `json:"name"`
	// Cancelled: the transform cancels the attempt (the event would be
	// given up). Error: it fails (the attempt would fail and be retried).
	Cancelled bool    `json:"cancelled"`
	Error     *string `json:"error"`
}

type testRequest struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// testHook is POST hooks/{id}/test/ {"event_type", "payload"}: what the
// hook's receiver would get for that event, without sending anything or
// writing a row. The request is shown even when the event would not be
// delivered, so a filter can be tried before it is relaxed.
func (s *Server) testHook(w http.ResponseWriter, r *http.Request) error {
	id, err := hookID(r)
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	errs := &webhook.ValidationError{}
	checkFields(obj, errs, "event_type", "payload")
	var eventType string
	if raw, ok := obj["event_type"]; ok && !isNull(raw) {
		var msg string
		if eventType, msg = decodeString(raw, false, false, maxNameLen); msg != "" {
			errs.Add("event_type", msg)
		}
	}
	var payload bytes.Buffer
	if raw, ok := obj["payload"]; !ok {
		errs.Add("payload", msgRequired)
	} else if err := json.Compact(&payload, raw); err != nil {
		errs.Add("payload", "Not valid JSON.")
	}
	if err := errs.Err(); err != nil {
		return err
	}
	h, err := s.deps.Store.Webhook(r.Context(), scope(r), id)
	if err != nil {
		return err
	}
	if eventType == "" {
		eventType = h.EventType
	}
	var plugins filter.Plugins
	if s.deps.Filters != nil {
		plugins = s.deps.Filters
	}
	v := filter.Check(r.Context(), &h, eventType, payload.Bytes(), plugins)
	out := testResult{Hook: h.ID, EventType: eventType, Deliver: v.Deliver, Reason: v.Reason}
	if v.FilteredBy != "" {
		out.FilteredBy = &v.FilteredBy
	}
	if v.PluginError != "" {
		out.FilterError = &v.PluginError
	}
	if h.Transform != nil {
		out.Transform = &testTransform{Name: h.Transform.Name}
	}
	if s.deps.Preview != nil {
		ev := webhook.Event{UUID: testUUID(), EventType: eventType, Payload: payload.Bytes(), WebhookID: h.ID}
		body, header, err := s.deps.Preview(r.Context(), &h, &ev, time.Now())
		if err != nil {
			var te *webhook.TransformError
			if !errors.As(err, &te) {
				return err
			}
			msg := te.Error()
			out.Transform.Cancelled, out.Transform.Error = te.Cancelled, &msg
			return writeJSON(w, http.StatusOK, out)
		}
		// An admin sees neither the owner's header values nor the
		// signatures: made with the owner's secret over a payload the
		// caller chose, they would let anyone who can read them forge a
		// delivery the owner's receiver accepts.
		if h.UserID != user(r).ID {
			for k := range header {
				if k == "Authorization" || k == webhook.SignatureHeader || k == webhook.StandardSignatureHeader ||
					slices.ContainsFunc(keys(h.AdditionalHeaders), func(n string) bool {
						return http.CanonicalHeaderKey(n) == k
					}) {
					header[k] = []string{hiddenHeaderValue}
				}
			}
		}
		out.Request = &testRequest{Method: http.MethodPost, URL: webhook.RedactURL(h.TargetURL), Headers: header, Body: string(body)}
	}
	return writeJSON(w, http.StatusOK, out)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// testUUID is the event uuid of a dry run: random, like a real one.
func testUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}
