package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// The requests in dj-whisperer's docs succeed exactly as written.
func TestDocumentedRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		cases := []struct{ name, body, check string }{
			{"basic", `{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/"}`,
				`"retry_countdown_config":{"choice":"exponential","kwargs":{"base":2}}`},
			{"callback and exponential", `{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/a",
				"callback": "foo.bar.app.callback", "retry_countdown_config": {"choice": "exponential", "kwargs": {"base": 2}}}`,
				`"callback":"foo.bar.app.callback","retry_countdown_config":{"choice":"exponential","kwargs":{"base":2}}`},
			{"custom countdown", `{"event_type": "package-created", "secret_key": "<secret>", "target_url": "https://example.com/c",
				"retry_countdown_config": {"choice": "custom", "kwargs": {"factor": 5}}}`,
				`"retry_countdown_config":{"choice":"custom","kwargs":{"factor": 5}}`},
			{"basic auth", `{"event_type": "order-created", "target_url": "https://example.com/order-created/",
				"config": {"auth": {"auth_type": "basic", "username": "username", "password": "password"}}}`,
				`"config":{"auth":{"auth_type":"basic","username":"username"}}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/whisperer/hooks/", e.alice, tc.body)
				want(t, r, http.StatusCreated, "")
				if !strings.Contains(string(r.raw), strings.ReplaceAll(tc.check, ": ", ":")) {
					t.Errorf("response %s lacks %s", r.raw, tc.check)
				}
				if strings.Contains(string(r.raw), "password") {
					t.Errorf("password returned: %s", r.raw)
				}
				h := r.obj(t)
				for _, k := range []string{"id", "target_url", "event_type", "secret_key", "is_active", "callback",
					"retry_countdown_config", "additional_headers", "config", "created_date", "modified_date"} {
					if _, ok := h[k]; !ok {
						t.Errorf("field %s missing from %s", k, r.raw)
					}
				}
				if h["is_active"] != true {
					t.Errorf("is_active = %v", h["is_active"])
				}
				ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
				if !ts.MatchString(h["created_date"].(string)) {
					t.Errorf("created_date %q is not DRF's shape", h["created_date"])
				}
			})
		}
		// The password is stored: the delivery engine reads it.
		hooks, _, err := s.ListWebhooks(t.Context(), scopeAll, filterNone, pageAll)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range hooks {
			if a, ok := h.BasicAuth(); ok {
				found = a.Username == "username" && a.Password == "password"
			}
		}
		if !found {
			t.Error("basic auth credentials were not stored")
		}
	})
}

func TestHookValidation(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 181)
	cases := []struct {
		name, body string
		doc        string // the exact 400 document
	}{
		{"empty", `{}`, `{"target_url":["This field is required."],"event_type":["This field is required."]}`},
		{"empty body", ``, `{"target_url":["This field is required."],"event_type":["This field is required."]}`},
		{"blank", `{"target_url":" ","event_type":""}`, `{"target_url":["This field may not be blank."],"event_type":["This field may not be blank."]}`},
		{"null", `{"target_url":null,"event_type":null}`, `{"target_url":["This field may not be null."],"event_type":["This field may not be null."]}`},
		{"wrong types", `{"target_url":["x"],"event_type":{"a":1},"secret_key":true,"is_active":"maybe","callback":[]}`,
			`{"target_url":["Not a valid string."],"event_type":["Not a valid string."],"secret_key":["Not a valid string."],"is_active":["Must be a valid boolean."],"callback":["Not a valid string."]}`},
		{"relative url", `{"target_url":"/hook","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"ftp url", `{"target_url":"ftp://example.com/","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"javascript url", `{"target_url":"javascript:alert(1)","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"no host", `{"target_url":"http:///x","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"space in url", `{"target_url":"http://exa mple.com/","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"bad port", `{"target_url":"http://example.com:99999/","event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"number url", `{"target_url":12,"event_type":"package-created"}`, `{"target_url":["Enter a valid URL."]}`},
		{"long url", `{"target_url":"` + long + `","event_type":"package-created"}`, `{"target_url":["Ensure this field has no more than 200 characters."]}`},
		{"unknown event type", `{"target_url":"https://example.com/","event_type":"nope"}`, `{"event_type":["\"nope\" is not a valid choice."]}`},
		{"event type is case-sensitive", `{"target_url":"https://example.com/","event_type":"PACKAGE-CREATED"}`, `{"event_type":["\"PACKAGE-CREATED\" is not a valid choice."]}`},
		{"unknown callback", `{"target_url":"https://example.com/","event_type":"package-created","callback":"os.system"}`, `{"callback":["\"os.system\" is not a valid choice."]}`},
		{"unknown choice", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"x","kwargs":{}}}`,
			`{"retry_countdown_config":{"choice":["\"x\" is not a valid choice."]}}`},
		{"missing kwargs", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"fixed"}}`,
			`{"retry_countdown_config":{"kwargs":["This field is required."]}}`},
		{"missing choice", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"kwargs":{}}}`,
			`{"retry_countdown_config":{"choice":["This field is required."]}}`},
		{"bad kwargs", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"exponential","kwargs":{"base":-1}}}`,
			`{"retry_countdown_config":{"kwargs":{"base":["Ensure this value is greater than or equal to 0."]}}}`},
		{"kwargs not int", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"fixed","kwargs":{"seconds":"soon"}}}`,
			`{"retry_countdown_config":{"kwargs":{"seconds":["A valid integer is required."]}}}`},
		{"random order", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"random","kwargs":{"min_value":5,"max_value":1}}}`,
			`{"retry_countdown_config":{"kwargs":{"non_field_errors":["'max_value' must be greater than 'min_value'."]}}}`},
		{"custom kwargs", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":"custom","kwargs":{"factor":0}}}`,
			`{"retry_countdown_config":{"kwargs":{"factor":["Ensure this value is greater than or equal to 1."]}}}`},
		{"countdown not object", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":"fixed"}`,
			`{"retry_countdown_config":{"non_field_errors":["Invalid data. Expected a dictionary, but got str."]}}`},
		{"countdown null", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":null}`,
			`{"retry_countdown_config":["This field may not be null."]}`},
		{"choice not string", `{"target_url":"https://example.com/","event_type":"package-created","retry_countdown_config":{"choice":[1],"kwargs":{}}}`,
			`{"retry_countdown_config":{"choice":["\"[1]\" is not a valid choice."]}}`},
		{"headers list", `{"target_url":"https://example.com/","event_type":"package-created","additional_headers":["a"]}`,
			`{"additional_headers":["Expected a dictionary of items but got type \"list\"."]}`},
		{"header value type", `{"target_url":"https://example.com/","event_type":"package-created","additional_headers":{"X-A":{"b":1}}}`,
			`{"additional_headers":{"X-A":["Not a valid string."]}}`},
		{"header CRLF", `{"target_url":"https://example.com/","event_type":"package-created","additional_headers":{"X-A":"a\r\nX-Evil: 1"}}`,
			`{"additional_headers":{"X-A":["Header values may not contain line breaks."]}}`},
		{"header name", `{"target_url":"https://example.com/","event_type":"package-created","additional_headers":{"X A\r\n":"a"}}`,
			`{"additional_headers":{"X A\r\n":["\"X A\\r\\n\" is not a valid HTTP header name."]}}`},
		{"reserved headers", `{"target_url":"https://example.com/","event_type":"package-created","additional_headers":{"content-type":"a","Authorization":"b","X-Whisperer-Signature":"c","webhook-id":"d","Host":"e"}}`,
			`{"additional_headers":{"content-type":["\"content-type\" is set by Whisperer and cannot be replaced."],"Authorization":["\"Authorization\" is set by Whisperer and cannot be replaced."],"X-Whisperer-Signature":["\"X-Whisperer-Signature\" is set by Whisperer and cannot be replaced."],"webhook-id":["\"webhook-id\" is set by Whisperer and cannot be replaced."],"Host":["\"Host\" is set by Whisperer and cannot be replaced."]}}`},
		{"config list", `{"target_url":"https://example.com/","event_type":"package-created","config":[1]}`,
			`{"config":["Expected a dictionary of items but got type \"list\"."]}`},
		{"auth not object", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":"basic"}}`,
			`{"config":{"auth":{"non_field_errors":["Invalid data. Expected a dictionary, but got str."]}}}`},
		{"auth type", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":{"auth_type":"digest","username":"u","password":"p"}}}`,
			`{"config":{"auth":{"auth_type":["\"digest\" is not a valid choice."]}}}`},
		{"auth fields", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":{"auth_type":"basic","username":5,"password":null}}}`,
			`{"config":{"auth":{"username":["Not a valid string."],"password":["This field may not be null."]}}}`},
		{"auth missing", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":{}}}`,
			`{"config":{"auth":{"auth_type":["This field is required."],"username":["This field is required."]}}}`},
		{"auth no password", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":{"auth_type":"basic","username":"u"}}}`,
			`{"config":{"auth":{"password":["This field is required."]}}}`},
		{"username colon", `{"target_url":"https://example.com/","event_type":"package-created","config":{"auth":{"auth_type":"basic","username":"a:b","password":"p"}}}`,
			`{"config":{"auth":{"username":["A username may not contain \":\"."]}}}`},
		{"rate limit zero", `{"target_url":"https://example.com/","event_type":"package-created","config":{"rate_limit_per_second":0}}`,
			`{"config":{"rate_limit_per_second":["Ensure this value is greater than 0."]}}`},
		{"rate limit negative", `{"target_url":"https://example.com/","event_type":"package-created","config":{"rate_limit_per_second":-2.5}}`,
			`{"config":{"rate_limit_per_second":["Ensure this value is greater than 0."]}}`},
		{"rate limit string", `{"target_url":"https://example.com/","event_type":"package-created","config":{"rate_limit_per_second":"2"}}`,
			`{"config":{"rate_limit_per_second":["A valid number is required."]}}`},
		{"rate limit and auth", `{"target_url":"https://example.com/","event_type":"package-created","config":{"rate_limit_per_second":true,"auth":{"auth_type":"basic"}}}`,
			`{"config":{"auth":{"username":["This field is required."]},"rate_limit_per_second":["A valid number is required."]}}`},
		{"unknown fields", `{"target_url":"https://example.com/","event_type":"package-created","evil":1,"user":5,"id":9}`,
			`{"evil":["Unknown field."]}`},
		{"null characters", `{"target_url":"https://example.com/","event_type":"package-created","secret_key":"a\u0000b"}`,
			`{"secret_key":["Null characters are not allowed."]}`},
		{"long secret", `{"target_url":"https://example.com/","event_type":"package-created","secret_key":"` + strings.Repeat("é", 256) + `"}`,
			`{"secret_key":["Ensure this field has no more than 255 characters."]}`},
		{"sql", `{"target_url":"https://example.com/'; DROP TABLE webhooks;--","event_type":"package-created' OR '1'='1"}`,
			`{"target_url":["Enter a valid URL."],"event_type":["\"package-created' OR '1'='1\" is not a valid choice."]}`},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				want(t, e.do("POST", "/whisperer/hooks/", e.alice, tc.body), http.StatusBadRequest, tc.doc)
			})
		}
		// Nothing was half-written.
		r := e.do("GET", "/whisperer/hooks/", e.root, nil)
		want(t, r, http.StatusOK, `{"next":null,"previous":null,"results":[]}`)
	})
}

func TestHookValuesAccepted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		h := e.createHook(e.alice, map[string]any{
			"target_url": "  https://bücher.example/ünï?q=1#frag  ", "event_type": "Ünïcode-type",
			"is_active": "False", "secret_key": nil, "callback": "",
			"additional_headers":     map[string]any{"X-Tenant": "ακ", "User-Agent": "mine", "X-Num": 5},
			"config":                 map[string]any{"big": json.Number("12345"), "nested": map[string]any{"a": []any{1, "b"}}},
			"retry_countdown_config": map[string]any{"choice": "linear", "kwargs": map[string]any{"base": "3", "limit": nil, "junk": 1}},
			"id":                     77, "created_date": "yesterday",
		})
		want(t, resp{status: 201, body: h}, 201, "")
		if h["target_url"] != "https://bücher.example/ünï?q=1#frag" || h["is_active"] != false {
			t.Errorf("hook %v", h)
		}
		// Unset secret_key and callback are null, as dj-whisperer's
		// nullable columns answer, not "".
		for _, k := range []string{"secret_key", "callback"} {
			if v, ok := h[k]; !ok || v != nil {
				t.Errorf("%s = %#v (present %v), want null", k, v, ok)
			}
		}
		if !jsonEqual(h["additional_headers"], map[string]any{"X-Tenant": "ακ", "User-Agent": "mine", "X-Num": "5"}) {
			t.Errorf("headers %v", h["additional_headers"])
		}
		if !jsonEqual(h["retry_countdown_config"], map[string]any{"choice": "linear", "kwargs": map[string]any{"base": 3, "limit": nil}}) {
			t.Errorf("countdown %v", h["retry_countdown_config"])
		}
		r := e.do("GET", idPath("/whisperer/hooks/", h["id"]), e.alice, nil)
		if !strings.Contains(string(r.raw), `"nested":{"a":[1,"b"]}`) {
			t.Errorf("config not kept: %s", r.raw)
		}
		if h["id"] == float64(77) {
			t.Error("read-only id was taken from the body")
		}
	})
}

func TestDuplicateHook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.createHook(e.alice, hookBody("https://example.com/dup"))
		dup := `{"non_field_errors":["This webhook is already registered: the fields user, target_url, event_type must make a unique set."]}`
		want(t, e.do("POST", "/whisperer/hooks/", e.alice, hookBody("https://example.com/dup")), http.StatusBadRequest, dup)
		// Another user may register the same URL.
		e.createHook(e.bob, hookBody("https://example.com/dup"))
		// An update onto an existing pair is refused the same way.
		other := e.createHook(e.alice, hookBody("https://example.com/other"))
		want(t, e.do("PATCH", idPath("/whisperer/hooks/", other["id"]), e.alice, `{"target_url":"https://example.com/dup"}`),
			http.StatusBadRequest, dup)
	})
}

func TestHookRoundTripAndWriteOnlyPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		body := hookBody("https://example.com/rt")
		body["config"] = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "pw"}, "x": 1}
		body["additional_headers"] = map[string]any{"X-A": "1"}
		body["callback"] = "foo.bar.app.callback"
		h := e.createHook(e.alice, body)
		path := idPath("/whisperer/hooks/", h["id"])

		// GET → PUT of the same document succeeds and changes nothing but
		// modified_date; the password survives though it was never sent back.
		got := e.do("GET", path, e.alice, nil)
		want(t, got, http.StatusOK, "")
		put := e.do("PUT", path, e.alice, got.raw)
		want(t, put, http.StatusOK, "")
		a, b := got.obj(t), put.obj(t)
		delete(a, "modified_date")
		delete(b, "modified_date")
		if !jsonEqual(a, b) {
			t.Errorf("PUT of GET changed the hook:\n%s\n%s", got.raw, put.raw)
		}
		stored := storedHook(t, s, h["id"])
		if auth, _ := stored.BasicAuth(); auth.Password != "pw" || auth.Username != "u" {
			t.Errorf("password lost on PUT: %+v", auth)
		}
		if strings.Contains(string(put.raw), "pw") {
			t.Errorf("password returned: %s", put.raw)
		}

		// PATCH changes the username only; the password is kept.
		want(t, e.do("PATCH", path, e.alice, `{"config":{"auth":{"auth_type":"basic","username":"v"}}}`), http.StatusOK, "")
		if auth, _ := pointer(storedHook(t, s, h["id"])).BasicAuth(); auth.Password != "pw" || auth.Username != "v" {
			t.Errorf("after PATCH: %+v", auth)
		}
		// A new password replaces it.
		want(t, e.do("PATCH", path, e.alice, `{"config":{"auth":{"auth_type":"basic","username":"v","password":"new"}}}`), http.StatusOK, "")
		if auth, _ := pointer(storedHook(t, s, h["id"])).BasicAuth(); auth.Password != "new" {
			t.Errorf("after new password: %+v", auth)
		}
		// null removes the credentials; adding auth again needs a password.
		want(t, e.do("PATCH", path, e.alice, `{"config":{"auth":null}}`), http.StatusOK, "")
		if _, ok := pointer(storedHook(t, s, h["id"])).BasicAuth(); ok {
			t.Error("auth not removed")
		}
		want(t, e.do("PATCH", path, e.alice, `{"config":{"auth":{"auth_type":"basic","username":"v"}}}`),
			http.StatusBadRequest, `{"config":{"auth":{"password":["This field is required."]}}}`)

		// PUT requires target_url and event_type; PATCH does not.
		want(t, e.do("PUT", path, e.alice, `{"is_active":false}`), http.StatusBadRequest,
			`{"target_url":["This field is required."],"event_type":["This field is required."]}`)
		r := e.do("PATCH", path, e.alice, `{"is_active":false,"retry_countdown_config":{"choice":"fixed","kwargs":{"seconds":"5.0"}}}`)
		want(t, r, http.StatusOK, "")
		if m := r.obj(t); m["is_active"] != false || !jsonEqual(m["retry_countdown_config"], map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 5}}) {
			t.Errorf("PATCH result %s", r.raw)
		}
		// A PATCH validates the fields it carries.
		want(t, e.do("PATCH", path, e.alice, `{"event_type":"nope"}`), http.StatusBadRequest, `{"event_type":["\"nope\" is not a valid choice."]}`)
		want(t, e.do("PATCH", path, e.alice, `[]`), http.StatusBadRequest, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`)

		// DELETE deactivates.
		d := e.do("DELETE", path, e.alice, nil)
		want(t, d, http.StatusNoContent, "")
		if len(d.raw) != 0 {
			t.Errorf("DELETE body %q", d.raw)
		}
		if r := e.do("GET", path, e.alice, nil); r.obj(t)["is_active"] != false {
			t.Errorf("after DELETE: %s", r.raw)
		}
	})
}

func TestHookFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.createHook(e.alice, hookBody("https://example.com/A"))
		b := hookBody("https://example.com/b")
		b["event_type"] = "order-created"
		b["is_active"] = false
		e.createHook(e.alice, b)
		e.createHook(e.bob, hookBody("https://example.com/a"))
		count := func(q string) int {
			t.Helper()
			r := e.do("GET", "/whisperer/hooks/"+q, e.alice, nil)
			want(t, r, http.StatusOK, "")
			return len(r.obj(t)["results"].([]any))
		}
		for q, n := range map[string]int{
			"": 2, "?target_url=HTTPS://EXAMPLE.COM/a": 1, "?target_url=https://example.com/": 0,
			"?event_type=ORDER-created": 1, "?event_type=package-created": 1, "?is_active=true": 1,
			"?is_active=False": 1, "?is_active=0": 1, "?is_active=": 2, "?event_type=x%27%20OR%201=1--": 0,
			"?is_active=true&event_type=order-created": 0, "?unknown=1": 2,
		} {
			if got := count(q); got != n {
				t.Errorf("%q: %d hooks, want %d", q, got, n)
			}
		}
		want(t, e.do("GET", "/whisperer/hooks/?is_active=maybe", e.alice, nil), http.StatusBadRequest, `{"is_active":["Enter a valid boolean."]}`)
		want(t, e.do("GET", "/whisperer/hooks/?target_url=%00", e.alice, nil), http.StatusBadRequest, `{"target_url":["Null characters are not allowed."]}`)
		want(t, e.do("GET", "/whisperer/hooks/?target_url=%ff", e.alice, nil), http.StatusBadRequest, `{"target_url":["Null characters are not allowed."]}`)
	})
}

func TestPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		var ids []float64
		for i := range 7 {
			h := e.createHook(e.alice, hookBody("https://example.com/"+string(rune('a'+i))))
			ids = append([]float64{h["id"].(float64)}, ids...) // newest first
		}
		e.createHook(e.bob, hookBody("https://example.com/bob")) // never seen by alice
		page := func(url string) (got []float64, next, prev string) {
			t.Helper()
			r := e.do("GET", url, e.alice, nil)
			want(t, r, http.StatusOK, "")
			m := r.obj(t)
			for _, h := range m["results"].([]any) {
				got = append(got, h.(map[string]any)["id"].(float64))
			}
			next, _ = m["next"].(string)
			prev, _ = m["previous"].(string)
			return
		}
		// Forward to the end.
		var walked []float64
		url := "/whisperer/hooks/?page_size=3&is_active=true"
		var pages []string
		for url != "" {
			pages = append(pages, url)
			got, next, _ := page(url)
			if len(got) > 3 {
				t.Fatalf("page of %d", len(got))
			}
			if next != "" && !strings.HasPrefix(next, "/whisperer/hooks/?") || next != "" && !strings.Contains(next, "is_active=true") {
				t.Fatalf("next %q is not a relative URL keeping the filters", next)
			}
			walked = append(walked, got...)
			url = next
		}
		if !jsonEqual(walked, ids) || len(pages) != 3 {
			t.Fatalf("walked %v in %d pages, want %v", walked, len(pages), ids)
		}
		// And back from the last page.
		got, _, prev := page(pages[2])
		if !jsonEqual(got, ids[6:]) || prev == "" {
			t.Fatalf("last page %v prev %q", got, prev)
		}
		got, next, prev := page(prev)
		if !jsonEqual(got, ids[3:6]) || next == "" || prev == "" {
			t.Fatalf("middle page %v next %q prev %q", got, next, prev)
		}
		got, _, prev = page(prev)
		if !jsonEqual(got, ids[:3]) || prev != "" {
			t.Fatalf("first page %v prev %q", got, prev)
		}
		// The first page has no previous link; bad cursors are DRF's 404.
		if _, _, prev := page("/whisperer/hooks/"); prev != "" {
			t.Errorf("first page has previous %q", prev)
		}
		for _, c := range []string{"nope", "cD0tMQ", "cD14", "%00", "cD0xJnI9Mg"} {
			want(t, e.do("GET", "/whisperer/hooks/?cursor="+c, e.alice, nil), http.StatusNotFound, `{"detail":"Invalid cursor"}`)
		}
		// page_size is capped and a bad one ignored.
		if got, _, _ := page("/whisperer/hooks/?page_size=x"); len(got) != 7 {
			t.Errorf("page_size=x: %d", len(got))
		}
		if got, _, _ := page("/whisperer/hooks/?page_size=99999999999999999999"); len(got) != 7 {
			t.Errorf("huge page_size: %d", len(got))
		}
	})
}
