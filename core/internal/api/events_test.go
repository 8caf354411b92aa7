package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// attempt records one attempt of every due event as a dispatcher would:
// status 0 is a failure with no response, 2xx delivers, anything else
// fails; a failure with gaveUp set gives the event up.
func attempt(t *testing.T, s *store.Store, status int, gaveUp bool) {
	t.Helper()
	ctx := context.Background()
	jobs, err := s.Claim(ctx, "test", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]webhook.Result, len(jobs))
	for i, j := range jobs {
		res := webhook.Result{EventID: j.Event.ID, Lease: j.Lease, RetryCount: j.Event.RetryCount + 1,
			Attempt: webhook.Attempt{AttemptedAt: time.Now(), Duration: 1500 * time.Microsecond, Status: status, Body: "body"}}
		switch {
		case status >= 200 && status < 300:
			res.State = webhook.StateDelivered
		case gaveUp:
			res.State = webhook.StateGivenUp
		default:
			res.State = webhook.StatePending
			res.NextAttemptAt = time.Now().Add(-time.Second) // due again at once
		}
		if status == 0 {
			res.Attempt.Error = "connection refused"
			res.Attempt.Body = ""
		}
		results[i] = res
	}
	if err := s.Complete(ctx, results); err != nil {
		t.Fatal(err)
	}
}

func TestHookEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		ha := e.createHook(e.alice, hookBody("https://example.com/a"))
		hb := e.createHook(e.bob, hookBody("https://example.com/b"))
		oc := hookBody("https://example.com/o")
		oc["event_type"] = "order-created"
		ho := e.createHook(e.alice, oc)

		ev1 := storetest.Publish(t, s, eventType, `{"n": 1}`) // alice + bob
		attempt(t, s, 0, false)                               // both fail once
		attempt(t, s, 200, false)                             // then deliver
		ev2 := storetest.Publish(t, s, "order-created", `{"n": "ü"}`)
		attempt(t, s, 500, true) // given up
		ev3 := storetest.Publish(t, s, eventType, `[1,2]`)
		_ = ev3

		var aliceEv1 webhook.Event
		for _, ev := range ev1 {
			if ev.UserID == e.aliceID {
				aliceEv1 = ev
			}
		}

		// One event, by id, uuid and dashed uuid.
		u := aliceEv1.UUID
		dashed := u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
		for _, key := range []string{fmt.Sprint(aliceEv1.ID), u, strings.ToUpper(dashed)} {
			r := e.do("GET", "/whisperer/hook_events/"+key+"/", e.alice, nil)
			want(t, r, http.StatusOK, "")
			m := r.obj(t)
			if m["uuid"] != u || m["delivered"] != true || m["state"] != "delivered" || m["retry_count"] != float64(2) ||
				m["response_http_status"] != float64(200) || m["next_attempt_at"] != nil || m["event_type"] != eventType {
				t.Fatalf("event %s", r.raw)
			}
			if m["webhook"].(map[string]any)["id"] != ha["id"] {
				t.Errorf("nested webhook %v", m["webhook"])
			}
			wantPayload := map[string]any{"event": map[string]any{"type": eventType, "uuid": u}, "payload": map[string]any{"n": 1}}
			if !jsonEqual(m["request_payload"], wantPayload) {
				t.Errorf("request_payload %v", m["request_payload"])
			}
			atts := m["attempts"].([]any)
			dts := m["request_datetimes"].([]any)
			if len(atts) != 2 || len(dts) != 2 {
				t.Fatalf("attempts %v", atts)
			}
			newest, oldest := atts[0].(map[string]any), atts[1].(map[string]any)
			if newest["status"] != float64(200) || oldest["status"] != nil || oldest["error"] != "connection refused" ||
				newest["duration_ms"] != 1.5 || newest["attempted_at"] != dts[0] || dts[0].(string) < dts[1].(string) {
				t.Errorf("attempts not newest first or wrong: %v", atts)
			}
		}

		// Lists: own events only, newest first; every filter.
		ids := func(q, token string) []float64 {
			t.Helper()
			r := e.do("GET", "/whisperer/hook_events/"+q, token, nil)
			want(t, r, http.StatusOK, "")
			var out []float64
			for _, ev := range r.obj(t)["results"].([]any) {
				out = append(out, ev.(map[string]any)["id"].(float64))
			}
			return out
		}
		all := ids("", e.alice)
		if len(all) != 3 || all[0] < all[1] || all[1] < all[2] {
			t.Fatalf("alice's events %v", all)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		for q, n := range map[string]int{
			"?uuid=" + u: 1, "?uuid=" + dashed: 1, "?event_type=order-created": 1, "?event_type=" + eventType: 2,
			"?response_http_status=200": 1, "?response_http_status=500": 1, "?response_http_status=404": 0,
			"?delivered=true": 1, "?delivered=false": 2, "?created_date=" + today: 3, "?created_date=2001-01-01": 0,
			"?webhook=" + fmt.Sprint(ho["id"]): 1, "?webhook=" + fmt.Sprint(hb["id"]): 0, "?state=given_up": 1,
			"?state=pending": 1, "?delivered=1&event_type=" + eventType: 1, "?page_size=1": 1,
		} {
			if got := ids(q, e.alice); len(got) != n {
				t.Errorf("%s: %d events, want %d", q, len(got), n)
			}
		}
		for q, doc := range map[string]string{
			"?uuid=xyz":                    `{"uuid":["Enter a valid UUID."]}`,
			"?response_http_status=abc":    `{"response_http_status":["Enter a valid HTTP status code."]}`,
			"?response_http_status=999999": `{"response_http_status":["Enter a valid HTTP status code."]}`,
			"?delivered=perhaps":           `{"delivered":["Enter a valid boolean."]}`,
			"?created_date=2024-13-01":     `{"created_date":["Enter a valid date."]}`,
			"?created_date=yesterday":      `{"created_date":["Enter a valid date."]}`,
			"?webhook=abc":                 `{"webhook":["Select a valid choice. That choice is not one of the available choices."]}`,
			"?state=lost":                  `{"state":["Select a valid choice. lost is not one of the available choices."]}`,
			"?event_type=%00":              `{"event_type":["Null characters are not allowed."]}`,
		} {
			want(t, e.do("GET", "/whisperer/hook_events/"+q, e.alice, nil), http.StatusBadRequest, doc)
		}
		if got := ids("", e.root); len(got) != 5 {
			t.Errorf("admin sees %d events, want 5", len(got))
		}
		if got := ids("", e.bob); len(got) != 2 {
			t.Errorf("bob sees %d events, want 2", len(got))
		}

		// Bad keys are 404s.
		for _, key := range []string{"0", "-1", "abc", "99999999999999999999999", "1.5", "%27%20OR%201=1", strings.Repeat("f", 33)} {
			want(t, e.do("GET", "/whisperer/hook_events/"+key+"/", e.alice, nil), http.StatusNotFound, `{"detail":"Not found."}`)
		}

		// Redelivery of one event by its owner.
		path := "/whisperer/hook_events/" + u + "/redeliver/"
		before := e.notified.Load()
		want(t, e.do("POST", path, e.alice, nil), http.StatusConflict, "")
		if d := e.do("POST", path, e.alice, `{"force": false}`); d.status != http.StatusConflict || !strings.Contains(d.obj(t)["detail"].(string), "already delivered") {
			t.Errorf("redeliver delivered: %d %s", d.status, d.raw)
		}
		want(t, e.do("POST", path, e.alice, `{"force": "yes please"}`), http.StatusBadRequest, `{"force":["Must be a valid boolean."]}`)
		want(t, e.do("POST", path, e.alice, `{"forse": true}`), http.StatusBadRequest, `{"forse":["Unknown field."]}`)
		r := e.do("POST", path, e.alice, `{"force": true}`)
		want(t, r, http.StatusAccepted, "")
		if m := r.obj(t); m["state"] != "pending" || m["next_attempt_at"] == nil || m["uuid"] != u {
			t.Errorf("redelivered %s", r.raw)
		}
		if e.notified.Load() == before {
			t.Error("redelivery did not notify the dispatcher")
		}

		// Redelivery of failed events in a range.
		since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.bob, map[string]any{"since": since}), http.StatusAccepted, `{"redelivered":0}`)
		want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.alice, map[string]any{"since": since, "webhook": hb["id"]}),
			http.StatusBadRequest, fmt.Sprintf(`{"webhook":["Invalid pk \"%v\" - object does not exist."]}`, hb["id"]))
		want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.alice, map[string]any{"since": since, "webhook": ho["id"]}),
			http.StatusAccepted, `{"redelivered":1}`)
		attempt(t, s, 500, true)
		want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.alice, map[string]any{"since": today}),
			http.StatusAccepted, `{"redelivered":3}`) // ev1 (forced, then failed), ev2, ev3
		for body, doc := range map[string]string{
			`{}`:                       `{"since":["This field is required."]}`,
			`{"since":"last tuesday"}`: `{"since":["` + strings.ReplaceAll(msgDatetime, `"`, `\"`) + `"]}`,
			`{"since":"2024-01-02","until":"2024-01-01"}`: `{"until":["Must be later than since."]}`,
			`{"since":"2024-01-02","webhook":"x"}`:        `{"webhook":["Incorrect type. Expected pk value, received str."]}`,
			`{"since":"2024-01-02","webhook":-4}`:         `{"webhook":["Invalid pk \"-4\" - object does not exist."]}`,
			`{"since":"2024-01-02","x":1}`:                `{"x":["Unknown field."]}`,
		} {
			want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.alice, body), http.StatusBadRequest, doc)
		}
		_ = ev2
	})
}

const msgDatetime = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], or YYYY-MM-DD."

// User B can neither see nor touch user A's hooks and events: every
// attempt is a 404 (or absent from a list), never a 403.
func TestIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		h := e.createHook(e.alice, hookBody("https://example.com/a"))
		evs := storetest.Publish(t, s, eventType, `{}`)
		attempt(t, s, 500, true)
		hook := idPath("/whisperer/hooks/", h["id"])
		ev := "/whisperer/hook_events/" + evs[0].UUID + "/"
		evID := fmt.Sprintf("/whisperer/hook_events/%d/", evs[0].ID)
		notFound := `{"detail":"Not found."}`
		for _, tc := range []struct{ method, path, body string }{
			{"GET", hook, ""},
			{"PUT", hook, `{"target_url":"https://evil.example/","event_type":"package-created"}`},
			{"PATCH", hook, `{"is_active":false}`},
			{"PATCH", hook, `{"event_type":"nope"}`}, // 404 before validation
			{"DELETE", hook, ""},
			{"GET", ev, ""},
			{"GET", evID, ""},
			{"POST", ev + "redeliver/", `{"force":true}`},
			{"POST", evID + "redeliver/", ``},
		} {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			want(t, e.do(tc.method, tc.path, e.bob, body), http.StatusNotFound, notFound)
		}
		want(t, e.do("GET", "/whisperer/hooks/", e.bob, nil), http.StatusOK, `{"next":null,"previous":null,"results":[]}`)
		want(t, e.do("GET", "/whisperer/hook_events/", e.bob, nil), http.StatusOK, `{"next":null,"previous":null,"results":[]}`)
		want(t, e.do("GET", "/whisperer/hooks/?target_url=https://example.com/a", e.bob, nil), http.StatusOK, `{"next":null,"previous":null,"results":[]}`)
		want(t, e.do("POST", "/whisperer/hook_events/redeliver/", e.bob, `{"since":"2000-01-01"}`), http.StatusAccepted, `{"redelivered":0}`)

		// Alice's hook is untouched.
		r := e.do("GET", hook, e.alice, nil)
		if m := r.obj(t); m["is_active"] != true || m["target_url"] != "https://example.com/a" {
			t.Errorf("bob changed alice's hook: %s", r.raw)
		}
		if got, _ := s.Event(t.Context(), scopeAll, evs[0].UUID); got.Event.State != webhook.StateGivenUp {
			t.Errorf("bob redelivered alice's event: %s", got.Event.State)
		}

		// The admin sees and changes everything.
		want(t, e.do("GET", hook, e.root, nil), http.StatusOK, "")
		want(t, e.do("GET", ev, e.root, nil), http.StatusOK, "")
		want(t, e.do("PATCH", hook, e.root, `{"callback":"foo.bar.app.callback"}`), http.StatusOK, "")
		want(t, e.do("POST", ev+"redeliver/", e.root, nil), http.StatusAccepted, "")
		r = e.do("GET", "/whisperer/hooks/", e.root, nil)
		if n := len(r.obj(t)["results"].([]any)); n != 1 {
			t.Errorf("admin lists %d hooks", n)
		}
	})
}

func TestPublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		ha := e.createHook(e.alice, hookBody("https://example.com/a"))
		hb := e.createHook(e.bob, hookBody("https://example.com/b"))
		off := hookBody("https://example.com/off")
		off["is_active"] = false
		e.createHook(e.bob, off)

		forbidden := `{"detail":"You do not have permission to perform this action."}`
		want(t, e.do("POST", "/whisperer/events/", e.alice, `{"event_type":"package-created","payload":{}}`), http.StatusForbidden, forbidden)
		want(t, e.do("POST", "/whisperer/events/", e.alice, `not json`), http.StatusForbidden, forbidden)

		before := e.notified.Load()
		r := e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"package-created","payload":{"id":1,"name":"ü"},"async":true,"event_uuid":null}`)
		want(t, r, http.StatusAccepted, "")
		evs := r.obj(t)["events"].([]any)
		if len(evs) != 2 || e.notified.Load() != before+1 {
			t.Fatalf("published %s; notified %d", r.raw, e.notified.Load()-before)
		}
		hooks := map[any]bool{}
		for _, ev := range evs {
			m := ev.(map[string]any)
			hooks[m["webhook"]] = true
			if m["state"] != "pending" || len(m["uuid"].(string)) != 32 || m["id"] == nil {
				t.Errorf("event %v", m)
			}
		}
		if !hooks[ha["id"]] || !hooks[hb["id"]] {
			t.Errorf("fan-out went to %v", hooks)
		}
		// The payload arrives as published.
		got := e.do("GET", "/whisperer/hook_events/"+evs[0].(map[string]any)["uuid"].(string)+"/", e.root, nil)
		if p := got.obj(t)["request_payload"].(map[string]any)["payload"]; !jsonEqual(p, map[string]any{"id": 1, "name": "ü"}) {
			t.Errorf("payload %v", p)
		}

		// Admins publish too; no subscribers is an empty 202.
		want(t, e.do("POST", "/whisperer/events/", e.root, `{"event_type":"Ünïcode-type"}`), http.StatusAccepted, `{"events":[]}`)

		// Idempotency-Key: the replay answers 200 with the first events.
		first := e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"order-created","payload":1}`, "Idempotency-Key", "k-1")
		want(t, first, http.StatusAccepted, "")
		again := e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"order-created","payload":1}`, "Idempotency-Key", "k-1")
		want(t, again, http.StatusOK, string(first.raw))
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Error("replay not marked")
		}
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"order-created"}`, "Idempotency-Key", strings.Repeat("k", 256)),
			http.StatusBadRequest, `{"detail":"The Idempotency-Key header must be at most 255 printable characters."}`)

		// Bad bodies.
		for body, doc := range map[string]string{
			`{}`:                    `{"event_type":["This field is required."]}`,
			`{"event_type":"nope"}`: `{"event_type":["\"nope\" is not a valid choice."]}`,
			`{"event_type":""}`:     `{"event_type":["This field may not be blank."]}`,
			`{"event_type":["a"]}`:  `{"event_type":["Not a valid string."]}`,
			`{"event_type":"package-created","async":"sometimes"}`: `{"async":["Must be a valid boolean."]}`,
			`{"event_type":"package-created","event_uuid":"nope"}`: `{"event_uuid":["Must be a valid UUID."]}`,
			`{"event_type":"package-created","extra":1}`:           `{"extra":["Unknown field."]}`,
		} {
			want(t, e.do("POST", "/whisperer/events/", e.pub, body), http.StatusBadRequest, doc)
		}

		// event_uuid re-delivers: 404 unknown, 409 delivered unless forced.
		uuid := evs[0].(map[string]any)["uuid"].(string)
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_uuid":"`+strings.Repeat("a", 32)+`"}`), http.StatusNotFound, `{"detail":"Not found."}`)
		for range 3 {
			attempt(t, s, 200, false)
		}
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"package-created","event_uuid":"`+uuid+`"}`), http.StatusConflict, "")
		want(t, e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"order-created","event_uuid":"`+uuid+`","force":true}`), http.StatusBadRequest, "")
		before = e.notified.Load()
		r = e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"package-created","event_uuid":"`+uuid+`","force":true}`)
		want(t, r, http.StatusAccepted, "")
		if evs := r.obj(t)["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["uuid"] != uuid || evs[0].(map[string]any)["state"] != "pending" {
			t.Errorf("redelivered %s", r.raw)
		}
		if e.notified.Load() == before {
			t.Error("republish did not notify")
		}

		// Without DeliverNow wired, "async": false still queues the events
		// and says so.
		r = e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"package-created","async":false}`)
		want(t, r, http.StatusAccepted, "")
		if len(r.obj(t)["events"].([]any)) != 2 || r.obj(t)["detail"] == nil {
			t.Errorf("async false without DeliverNow: %s", r.raw)
		}
		var _ = json.Marshal
	})
}

// Redelivery by uuid through publish is for the hook's owner, an admin or
// the publisher of the event's message: any other publisher gets 404, the
// event untouched (it used to be redelivered, whoever asked).
func TestRepublishIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		_, other := storetest.User(t, s, "other-pub", webhook.RolePublisher)
		owner, ownerTok := storetest.User(t, s, "owner-pub", webhook.RolePublisher)
		e.createHook(e.alice, hookBody("https://example.com/a"))
		e.createHook(ownerTok, hookBody("https://example.com/o"))
		r := e.do("POST", "/whisperer/events/", e.pub, `{"event_type":"package-created","payload":{}}`)
		want(t, r, http.StatusAccepted, "")
		var aliceEv, ownerEv string
		for _, ev := range r.obj(t)["events"].([]any) {
			m := ev.(map[string]any)
			if j, _ := s.Event(t.Context(), scopeAll, m["uuid"].(string)); j.Event.UserID == owner.ID {
				ownerEv = m["uuid"].(string)
			} else {
				aliceEv = m["uuid"].(string)
			}
		}
		attempt(t, s, 500, true)
		republish := func(token, uuid string) resp {
			return e.do("POST", "/whisperer/events/", token, `{"event_uuid":"`+uuid+`"}`)
		}
		state := func(uuid string) webhook.State {
			j, err := s.Event(t.Context(), scopeAll, uuid)
			if err != nil {
				t.Fatal(err)
			}
			return j.Event.State
		}

		// Another publisher: 404 for alice's event, whatever the spelling
		// and even with the event's own type; nothing changes.
		notFound := `{"detail":"Not found."}`
		dashed := aliceEv[:8] + "-" + aliceEv[8:12] + "-" + aliceEv[12:16] + "-" + aliceEv[16:20] + "-" + aliceEv[20:]
		want(t, republish(other, aliceEv), http.StatusNotFound, notFound)
		want(t, republish(other, strings.ToUpper(dashed)), http.StatusNotFound, notFound)
		want(t, e.do("POST", "/whisperer/events/", other, `{"event_uuid":"`+aliceEv+`","event_type":"package-created","force":true}`), http.StatusNotFound, notFound)
		// A wrong type is not a hint either.
		want(t, e.do("POST", "/whisperer/events/", other, `{"event_uuid":"`+aliceEv+`","event_type":"order-created"}`), http.StatusNotFound, notFound)
		if st := state(aliceEv); st != webhook.StateGivenUp {
			t.Fatalf("another publisher redelivered alice's event: %s", st)
		}
		// The owner of one hook cannot reach the other hook's event of
		// the same message.
		want(t, republish(ownerTok, aliceEv), http.StatusNotFound, notFound)

		// The hook's owner, the message's publisher and an admin may.
		want(t, republish(ownerTok, ownerEv), http.StatusAccepted, "")
		want(t, republish(e.pub, aliceEv), http.StatusAccepted, "")
		if st := state(aliceEv); st != webhook.StatePending {
			t.Fatalf("the publisher's redelivery left %s", st)
		}
		attempt(t, s, 500, true)
		want(t, republish(e.root, aliceEv), http.StatusAccepted, "")
		// hook_events stays the owner's: the publisher reads no attempt log.
		want(t, e.do("GET", "/whisperer/hook_events/"+aliceEv+"/", e.pub, nil), http.StatusNotFound, notFound)
	})
}
