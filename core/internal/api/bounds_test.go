package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Every stored hook field is bounded, and what the sender would drop or
// send twice is refused.
func TestHookFieldBounds(t *testing.T) {
	const hook = `"target_url":"https://example.com/","event_type":"package-created"`
	nested := func(depth int) string { // {"a":{"a":…{}…}}, depth objects in all
		return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
	}
	big := strings.Repeat("c", 16<<10)
	sameHeader := `(names are compared ignoring case, with \"_\" as \"-\").`
	cases := []struct {
		name, body string
		doc        string // the exact 400 document
	}{
		{"credentials in url", `{"target_url":"http://user:pw@example.com/","event_type":"package-created"}`,
			`{"target_url":["Enter a URL without credentials: set them in config.auth, whose password is write-only."]}`},
		{"user in url", `{"target_url":"https://token@example.com/","event_type":"package-created"}`,
			`{"target_url":["Enter a URL without credentials: set them in config.auth, whose password is write-only."]}`},
		{"headers the sender drops", `{` + hook + `,"additional_headers":{"Content-Encoding":"gzip","expect":"100-continue","Proxy-Anything":"x"}}`,
			`{"additional_headers":{"Content-Encoding":["\"Content-Encoding\" is set by Whisperer and cannot be replaced."],` +
				`"expect":["\"expect\" is set by Whisperer and cannot be replaced."],` +
				`"Proxy-Anything":["\"Proxy-Anything\" is set by Whisperer and cannot be replaced."]}}`},
		{"underscore spellings", `{` + hook + `,"additional_headers":{"X_Whisperer_Signature":"sha256=0","webhook_signature":"v1,x","Content_Type":"a"}}`,
			`{"additional_headers":{"X_Whisperer_Signature":["\"X_Whisperer_Signature\" is read as \"X-Whisperer-Signature\" by many servers, which is set by Whisperer and cannot be replaced."],` +
				`"webhook_signature":["\"webhook_signature\" is read as \"Webhook-Signature\" by many servers, which is set by Whisperer and cannot be replaced."],` +
				`"Content_Type":["\"Content_Type\" is read as \"Content-Type\" by many servers, which is set by Whisperer and cannot be replaced."]}}`},
		{"case variants", `{` + hook + `,"additional_headers":{"X-Dup":"a","x-dup":"b","X-DUP":"c"}}`,
			`{"additional_headers":{"x-dup":["\"x-dup\" is the same header as \"X-DUP\" to a receiver ` + sameHeader + `"],` +
				`"X-Dup":["\"X-Dup\" is the same header as \"X-DUP\" to a receiver ` + sameHeader + `"]}}`},
		{"underscore variant", `{` + hook + `,"additional_headers":{"X-Trace":"a","X_Trace":"b"}}`,
			`{"additional_headers":{"X_Trace":["\"X_Trace\" is the same header as \"X-Trace\" to a receiver ` + sameHeader + `"]}}`},
		{"headers total", `{` + hook + `,"additional_headers":{"X-A":"` + strings.Repeat("a", 8000) + `","X-B":"` +
			strings.Repeat("b", 8000) + `","X-C":"` + strings.Repeat("c", 400) + `"}}`,
			`{"additional_headers":["Ensure the header names and values total no more than 16384 bytes."]}`},
		{"config size", `{` + hook + `,"config":{"fill":"` + big + `"}}`,
			fmt.Sprintf(`{"config":["Ensure this value has no more than 16384 bytes as compact JSON (it has %d)."]}`, len(big)+11)},
		{"config escapes count as sent", `{` + hook + `,"config":{"fill":"` + strings.Repeat(`\u0041`, 3000) + `"}}`,
			`{"config":["Ensure this value has no more than 16384 bytes as compact JSON (it has 18011)."]}`},
		{"config depth", `{` + hook + `,"config":` + nested(9) + `}`,
			`{"config":["Ensure this value is nested no more than 8 levels deep."]}`},
		{"config depth in a list", `{` + hook + `,"config":{"a":[[[[[[[[1]]]]]]]]}}`,
			`{"config":["Ensure this value is nested no more than 8 levels deep."]}`},
		{"kwargs size", `{` + hook + `,"retry_countdown_config":{"choice":"fixed","kwargs":{"seconds":1,"x":"` + strings.Repeat("k", 4096) + `"}}}`,
			`{"retry_countdown_config":{"kwargs":["Ensure this value has no more than 4096 bytes as compact JSON (it has 4116)."]}}`},
		{"kwargs depth", `{` + hook + `,"retry_countdown_config":{"choice":"fixed","kwargs":` + nested(9) + `}}`,
			`{"retry_countdown_config":{"kwargs":["Ensure this value is nested no more than 8 levels deep."]}}`},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				want(t, e.do("POST", "/whisperer/hooks/", e.alice, tc.body), http.StatusBadRequest, tc.doc)
			})
		}
		want(t, e.do("GET", "/whisperer/hooks/", e.root, nil), http.StatusOK, `{"next":null,"previous":null,"results":[]}`)

		// Updates are bounded as creations are.
		h := e.createHook(e.alice, hookBody("https://example.com/ok"))
		want(t, e.do("PATCH", idPath("/whisperer/hooks/", h["id"]), e.alice, `{"config":{"fill":"`+big+`"}}`),
			http.StatusBadRequest, "")
		want(t, e.do("PATCH", idPath("/whisperer/hooks/", h["id"]), e.alice, `{"target_url":"https://u:p@example.com/"}`),
			http.StatusBadRequest, "")

		// At the limits, and with whitespace and brackets in strings that
		// are not part of the compact size or the nesting, it is accepted.
		fill := strings.Repeat("c", 16<<10-len(`{"fill":"","s":"[[[[[[[[[[{{{{\"}"}`))
		r := e.do("POST", "/whisperer/hooks/", e.alice, `{`+hook+`,
			"config": {  "fill" : "`+fill+`",  "s": "[[[[[[[[[[{{{{\"}"  },
			"additional_headers": {"X-A": "`+strings.Repeat("a", 8000)+`", "X-B": "`+strings.Repeat("b", 8000)+`", "X-Trace": "`+strings.Repeat("c", 384-7-3-3)+`"},
			"retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 1, "a": `+nested(7)+`}}}`)
		want(t, r, http.StatusCreated, "")
	})
}

// limits.hooks_per_user: the next hook is refused with a clear message, for
// that user only; a deactivated hook still counts.
func TestHooksPerUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnvWith(t, s, api.Config{HooksPerUser: 3}, s)
		var first map[string]any
		for i := range 3 {
			h := e.createHook(e.alice, hookBody(fmt.Sprintf("https://example.com/%d", i)))
			if i == 0 {
				first = h
			}
		}
		msg := `{"non_field_errors":["You have 3 webhooks, the most a user may have (limits.hooks_per_user). ` +
			`Deleted (inactive) webhooks count too: change one with PUT or PATCH instead of registering another."]}`
		want(t, e.do("POST", "/whisperer/hooks/", e.alice, hookBody("https://example.com/3")), http.StatusBadRequest, msg)
		want(t, e.do("DELETE", idPath("/whisperer/hooks/", first["id"]), e.alice, nil), http.StatusNoContent, "")
		want(t, e.do("POST", "/whisperer/hooks/", e.alice, hookBody("https://example.com/3")), http.StatusBadRequest, msg)
		// Changing a hook is not registering one.
		want(t, e.do("PATCH", idPath("/whisperer/hooks/", first["id"]), e.alice,
			`{"target_url":"https://example.com/new","is_active":true}`), http.StatusOK, "")
		e.createHook(e.bob, hookBody("https://example.com/0"))
	})
}

// A concurrent burst of registrations cannot pass limits.hooks_per_user.
func TestHooksPerUserBurst(t *testing.T) {
	const limit, burst = 5, 40
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnvWith(t, s, api.Config{HooksPerUser: limit}, s)
		var created, refused atomic.Int64
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", e.srv.URL+"/whisperer/hooks/",
					strings.NewReader(fmt.Sprintf(`{"target_url":"https://example.com/%d","event_type":"package-created"}`, i)))
				req.Header.Set("Authorization", "Token "+e.alice)
				req.Header.Set("Content-Type", "application/json")
				res, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusBadRequest:
					refused.Add(1)
				default:
					t.Errorf("status %d", res.StatusCode)
				}
			})
		}
		wg.Wait()
		n, err := s.CountWebhooks(t.Context(), e.aliceID)
		if err != nil {
			t.Fatal(err)
		}
		if created.Load() != limit || refused.Load() != burst-limit || n != limit {
			t.Errorf("created %d, refused %d, stored %d; want %d, %d, %d", created.Load(), refused.Load(), n, limit, burst-limit, limit)
		}
	})
}

// loadCounter records how many rows the lists load at once.
type loadCounter struct {
	*store.Store
	hooks, events atomic.Int64 // the most ids of one load
	calls         atomic.Int64
	failAfter     atomic.Int64 // fail the loads after this many; 0 never, -1 all
}

func (c *loadCounter) load(max *atomic.Int64, n int) error {
	if int64(n) > max.Load() {
		max.Store(int64(n))
	}
	if k, f := c.calls.Add(1), c.failAfter.Load(); f != 0 && k > f {
		return webhook.ErrUnavailable
	}
	return nil
}

func (c *loadCounter) WebhooksByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Webhook, error) {
	if err := c.load(&c.hooks, len(ids)); err != nil {
		return nil, err
	}
	return c.Store.WebhooksByID(ctx, sc, ids)
}

func (c *loadCounter) EventsByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Job, error) {
	if err := c.load(&c.events, len(ids)); err != nil {
		return nil, err
	}
	return c.Store.EventsByID(ctx, sc, ids)
}

// A page is loaded a few rows at a time, so that its memory does not grow
// with page_size × row size; the answer is the whole page all the same.
func TestListsLoadInChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := &loadCounter{Store: s}
		e := newEnvWith(t, s, api.Config{}, c)
		const n = 120
		for i := range n {
			e.createHook(e.alice, hookBody(fmt.Sprintf("https://example.com/%d", i)))
		}
		if _, err := s.Publish(t.Context(), webhook.PublishRequest{EventType: eventType, Payload: []byte(`{"a":1}`)}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/whisperer/hooks/?page_size=1000", "/whisperer/hook_events/?page_size=1000"} {
			r := e.do("GET", path, e.alice, nil)
			want(t, r, http.StatusOK, "")
			res := r.obj(t)["results"].([]any)
			if len(res) != n {
				t.Fatalf("%s: %d results, want %d", path, len(res), n)
			}
			// Newest first, as one query would have them.
			for i := 1; i < len(res); i++ {
				if res[i-1].(map[string]any)["id"].(float64) <= res[i].(map[string]any)["id"].(float64) {
					t.Fatalf("%s: results out of order at %d", path, i)
				}
			}
		}
		// The budget scripts/memory.sh checks: a worst-case event is a few
		// MiB, a worst-case hook a few hundred KiB decoded.
		if h, ev := c.hooks.Load(), c.events.Load(); h < 1 || h > 100 || ev < 1 || ev > 4 {
			t.Errorf("loaded up to %d hooks and %d events at once; want 1 to 100 and 1 to 4", h, ev)
		}
	})
}

// page_size is capped at MaxPageSize (limits.max_page_size).
func TestPageSizeCap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnvWith(t, s, api.Config{MaxPageSize: 7}, s)
		for i := range 9 {
			e.createHook(e.alice, hookBody(fmt.Sprintf("https://example.com/%d", i)))
		}
		for _, size := range []string{"1000000", "99999999999999999999", "8"} {
			r := e.do("GET", "/whisperer/hooks/?page_size="+size, e.alice, nil)
			if got := len(r.obj(t)["results"].([]any)); got != 7 || r.obj(t)["next"] == nil {
				t.Errorf("page_size=%s with MaxPageSize 7: %d results, next %v", size, got, r.obj(t)["next"])
			}
		}
	})
}

// A load failing after the page has started is a broken response, never a
// well-formed short page; one failing before is an error answer. (Served
// without conform, which buffers whole responses.)
func TestListFailureMidway(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := &loadCounter{Store: s}
		h, err := api.New(api.Config{}, api.Deps{Store: c, Countdowns: countdown.NewRegistry()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		u, token := storetest.User(t, s, "alice", webhook.RoleUser)
		if err := s.AddEventTypes(t.Context(), eventType); err != nil {
			t.Fatal(err)
		}
		for i := range api.HookChunk + 1 {
			if _, err := s.CreateWebhook(t.Context(), webhook.Webhook{UserID: u.ID, EventType: eventType, IsActive: true,
				TargetURL: fmt.Sprintf("https://example.com/%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		get := func() (*http.Response, []byte, error) {
			req, _ := http.NewRequest("GET", srv.URL+"/whisperer/hooks/?page_size=1000", nil)
			req.Header.Set("Authorization", "Token "+token)
			res, err := srv.Client().Do(req)
			if err != nil {
				return nil, nil, err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			return res, b, err
		}
		c.failAfter.Store(1)
		if res, b, err := get(); err == nil {
			t.Errorf("a list whose second chunk failed was read to its end without error: %d %.100s", res.StatusCode, b)
		}

		c.calls.Store(0)
		c.failAfter.Store(-1) // every load fails: the first one too
		res, b, err := get()
		if err != nil || res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("first load failing: %v %v %s", err, res, b)
		}
	})
}
