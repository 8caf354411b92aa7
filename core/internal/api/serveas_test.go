package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// ServeAs serves a request as the given user, ignoring any Authorization
// header, with the API's own authorization: another user's hook is a 404.
func TestServeAs(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	if err := s.AddEventTypes(context.Background(), eventType); err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{}, api.Deps{Store: s, Countdowns: countdown.NewRegistry()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
	bob, bobKey := storetest.User(t, s, "bob", webhook.RoleUser)
	hook := storetest.Hook(t, s, alice.ID, eventType, "https://example.com/a")

	patch := func(u webhook.User, auth string) int {
		req := httptest.NewRequest(http.MethodPatch, "/whisperer/hooks/"+strconv.FormatInt(hook.ID, 10)+"/", strings.NewReader(`{"is_active": false}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Token "+auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeAs(u, rec, req)
		return rec.Code
	}
	// bob's own valid token does not turn the request into bob's.
	if code := patch(alice, bobKey); code != http.StatusOK {
		t.Fatalf("PATCH as alice = %d, want 200", code)
	}
	if code := patch(bob, ""); code != http.StatusNotFound {
		t.Fatalf("PATCH of alice's hook as bob = %d, want 404", code)
	}
	got, err := s.Webhook(context.Background(), webhook.Scope{All: true}, hook.ID)
	if err != nil || got.IsActive {
		t.Fatalf("hook after PATCH as alice: active=%v, %v", got.IsActive, err)
	}
	// Through Handler, no token is still a 401.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/whisperer/hooks/", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("GET hooks without a token = %d, want 401", rec.Code)
	}
}
