package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A streamed page is byte for byte what rendering the whole page at once
// wrote: every page of both lists, forward and backward, with HTML
// characters, Unicode and numbers the encoder could spell differently.
func TestStreamedPagesAreUnchanged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		srv, err := NewServer(Config{}, Deps{Store: s, Countdowns: countdown.NewRegistry()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, token := storetest.User(t, s, "alice", webhook.RoleUser)
		if err := s.AddEventTypes(ctx, "package-created"); err != nil {
			t.Fatal(err)
		}
		for i := range 2*hookChunk + 3 {
			if _, err := s.CreateWebhook(ctx, webhook.Webhook{UserID: u.ID, EventType: "package-created", IsActive: i%3 > 0,
				TargetURL:         fmt.Sprintf("https://bücher.example/%d?a=1&b=<2>", i),
				AdditionalHeaders: map[string]string{"X-Ünï": "<&>"},
				Config:            map[string]any{"n": 1.5e3, "s": "<script>&amp;</script> é \u2028", "auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p"}},
				RetryCountdown:    webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{ "seconds" : 1e1 }`)},
			}); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "package-created",
				Payload: []byte(`{"html": "<b>&</b>", "n": [1.0, 2e3, -0], "u": "\u00e9\ud83d\ude00"}`)}); err != nil {
				t.Fatal(err)
			}
		}

		get := func(url string) string {
			r := httptest.NewRequest("GET", url, nil)
			r.Header.Set("Authorization", "Token "+token)
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", url, w.Code, w.Body)
			}
			// What the handler wrote before streaming, for the same request.
			p, err := srv.page(r)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			sc := webhook.Scope{UserID: u.ID}
			if r.URL.Path == "/whisperer/hooks/" {
				hooks, info, err := s.ListWebhooks(ctx, sc, webhook.HookFilter{}, p)
				want = wholePage(t, srv, r, hooks, info, err, func(h webhook.Webhook) hookJSON { return renderHook(h, u.ID) }, func(h webhook.Webhook) int64 { return h.ID })
			} else {
				jobs, info, err := s.ListEvents(ctx, sc, webhook.EventFilter{}, p)
				want = wholePage(t, srv, r, jobs, info, err, func(j webhook.Job) eventJSON { return renderEvent(j, u.ID) }, func(j webhook.Job) int64 { return j.Event.ID })
			}
			if got := w.Body.String(); got != string(want) {
				t.Fatalf("GET %s:\n got %.400s\nwant %.400s", url, got, want)
			}
			return w.Body.String()
		}
		for _, list := range []string{"/whisperer/hooks/", "/whisperer/hook_events/"} {
			for _, size := range []string{"1000", "7", "1"} {
				url := list + "?page_size=" + size
				get(url)
				get(list + "?page_size=" + size + "&cursor=" + encodeCursor(1, true))      // the oldest, backward
				get(list + "?page_size=" + size + "&cursor=" + encodeCursor(1<<40, false)) // past the newest
			}
			get(list + "?page_size=5&cursor=" + encodeCursor(200, false)) // past every row: empty
		}
	})
}

// wholePage renders rows as the list handlers did before streaming: the
// whole slice rendered, then written at once.
func wholePage[T, J any](t *testing.T, srv *Server, r *http.Request, rows []T, info webhook.PageInfo, err error,
	render func(T) J, id func(T) int64) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]J, len(rows))
	for i := range rows {
		out[i] = render(rows[i])
	}
	first, last := int64(0), int64(0)
	if len(rows) > 0 {
		first, last = id(rows[0]), id(rows[len(rows)-1])
	}
	b, err := marshal(srv.pageOf(r, out, info, first, last))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
