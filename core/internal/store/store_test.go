package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// The behaviour suite: every test runs on SQLite and on PostgreSQL.

var ctx = context.Background()

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, tok := storetest.User(t, s, "alice", webhook.RolePublisher)
		if len(tok) != 40 {
			t.Fatalf("token %q: want 40 hex chars", tok)
		}
		got, err := s.Authenticate(ctx, tok)
		if err != nil || got.ID != u.ID || got.Role != webhook.RolePublisher {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		var stored int
		if err := s.DB().NewRaw("SELECT count(*) FROM api_tokens WHERE key_hash = ?", tok).Scan(ctx, &stored); err != nil || stored != 0 {
			t.Fatalf("token stored in clear (%d rows, %v)", stored, err)
		}
		if _, err := s.Authenticate(ctx, "nope"); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("bad token: %v", err)
		}
		if _, err := s.RevokeToken(ctx, tok[:8]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("revoked token still works: %v", err)
		}
		if _, err := s.RevokeToken(ctx, tok); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		if _, err := s.CreateUser(ctx, "alice", webhook.RoleUser); !errors.Is(err, webhook.ErrAlreadyExists) {
			t.Fatalf("duplicate user: %v", err)
		}
	})
}

func TestEventTypes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := s.AddEventTypes(ctx, "b", "a", "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddEventTypes(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		// The operational namespace is Whisperer's: refused, and nothing of
		// the call is written.
		for _, n := range []string{webhook.EventGivenUp, "whisperer.mine"} {
			if err := s.AddEventTypes(ctx, "c", n); err == nil || !strings.Contains(err.Error(), "reserved") {
				t.Errorf("AddEventTypes(%q) = %v, want reserved", n, err)
			}
		}
		names, err := s.EventTypes(ctx)
		if err != nil || fmt.Sprint(names) != "[a b]" {
			t.Fatalf("EventTypes = %v, %v", names, err)
		}
		if err := s.AddOpsEventTypes(ctx); err != nil {
			t.Fatal(err)
		}
		if names, _ := s.EventTypes(ctx); !slices.Contains(names, webhook.EventGivenUp) || slices.Contains(names, "c") {
			t.Errorf("after AddOpsEventTypes: %v", names)
		}
	})
}

func TestWebhookCRUDAndIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		b, _ := storetest.User(t, s, "b", webhook.RoleUser)
		h := storetest.Hook(t, s, a.ID, "order-created", "https://example.com/x", func(w *webhook.Webhook) {
			w.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p"}, "big": json.Number("9007199254740993")}
			w.AdditionalHeaders = map[string]string{"X-A": "1"}
		})
		sa, sb := webhook.Scope{UserID: a.ID}, webhook.Scope{UserID: b.ID}

		got, err := s.Webhook(ctx, sa, h.ID)
		if err != nil || got.TargetURL != h.TargetURL || got.AdditionalHeaders["X-A"] != "1" {
			t.Fatalf("Webhook = %+v, %v", got, err)
		}
		if ba, ok := got.BasicAuth(); !ok || ba.Password != "p" {
			t.Fatalf("basic auth lost: %+v", got.Config)
		}
		if big, _ := json.Marshal(got.Config["big"]); string(big) != "9007199254740993" {
			t.Fatalf("config integer above 2^53 came back as %s", big)
		}
		if _, err := s.Webhook(ctx, sb, h.ID); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("b sees a's hook: %v", err)
		}
		if _, err := s.Webhook(ctx, webhook.Scope{All: true}, h.ID); err != nil {
			t.Fatalf("admin scope: %v", err)
		}
		// Same user + url + type again: refused. Another user may.
		dup := h
		if _, err := s.CreateWebhook(ctx, dup); !errors.Is(err, webhook.ErrAlreadyExists) {
			t.Fatalf("duplicate: %v", err)
		}
		dup.UserID = b.ID
		if _, err := s.CreateWebhook(ctx, dup); err != nil {
			t.Fatalf("b registering the same url: %v", err)
		}
		h.Callback = "cb"
		if _, err := s.UpdateWebhook(ctx, sb, h, false); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("b updates a's hook: %v", err)
		}
		upd, err := s.UpdateWebhook(ctx, sa, h, false)
		if err != nil || upd.Callback != "cb" || !upd.ModifiedAt.After(h.CreatedAt.Add(-time.Second)) {
			t.Fatalf("UpdateWebhook = %+v, %v", upd, err)
		}
		if err := s.DeactivateWebhook(ctx, sb, h.ID); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("b deactivates a's hook: %v", err)
		}
		if err := s.DeactivateWebhook(ctx, sa, h.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Webhook(ctx, sa, h.ID); got.IsActive {
			t.Fatal("still active after deactivate")
		}
	})
}

func TestListWebhooksFiltersAndPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		b, _ := storetest.User(t, s, "b", webhook.RoleUser)
		for i := range 5 {
			storetest.Hook(t, s, a.ID, "order-created", fmt.Sprintf("https://Example.com/%d", i))
		}
		storetest.Hook(t, s, a.ID, "package-created", "https://exämple.com/Ä")
		storetest.Hook(t, s, b.ID, "order-created", "https://example.com/0")
		sa := webhook.Scope{UserID: a.ID}

		list := func(f webhook.HookFilter, p webhook.Page) ([]webhook.Webhook, webhook.PageInfo) {
			t.Helper()
			hs, info, err := s.ListWebhooks(ctx, sa, f, p)
			if err != nil {
				t.Fatal(err)
			}
			return hs, info
		}
		if hs, _ := list(webhook.HookFilter{}, webhook.Page{}); len(hs) != 6 {
			t.Fatalf("a sees %d hooks, want 6", len(hs))
		}
		if hs, _ := list(webhook.HookFilter{TargetURL: "https://example.COM/3"}, webhook.Page{}); len(hs) != 1 {
			t.Fatalf("iexact target_url: %d", len(hs))
		}
		if hs, _ := list(webhook.HookFilter{EventType: "PACKAGE-created"}, webhook.Page{}); len(hs) != 1 {
			t.Fatalf("iexact event_type: %d", len(hs))
		}
		// Beyond ASCII too, on SQLite as on PostgreSQL.
		if hs, _ := list(webhook.HookFilter{TargetURL: "HTTPS://EXÄMPLE.COM/ä"}, webhook.Page{}); len(hs) != 1 {
			t.Fatalf("iexact non-ASCII target_url: %d", len(hs))
		}
		inactive := false
		if hs, _ := list(webhook.HookFilter{IsActive: &inactive}, webhook.Page{}); len(hs) != 0 {
			t.Fatalf("is_active=false: %d", len(hs))
		}
		// Walk forward two at a time, then back.
		p1, i1 := list(webhook.HookFilter{}, webhook.Page{Limit: 4})
		if len(p1) != 4 || !i1.HasNext || i1.HasPrev || p1[0].ID < p1[1].ID {
			t.Fatalf("page 1: %d %+v", len(p1), i1)
		}
		p2, i2 := list(webhook.HookFilter{}, webhook.Page{Limit: 4, Before: p1[3].ID})
		if len(p2) != 2 || i2.HasNext || !i2.HasPrev {
			t.Fatalf("page 2: %d %+v", len(p2), i2)
		}
		back, ib := list(webhook.HookFilter{}, webhook.Page{Limit: 4, After: p2[0].ID})
		if len(back) != 4 || back[0].ID != p1[0].ID || ib.HasPrev || !ib.HasNext {
			t.Fatalf("back: %v %+v", back, ib)
		}
	})
}

func TestPublishFansOutToActiveHooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		b, _ := storetest.User(t, s, "b", webhook.RoleUser)
		h1 := storetest.Hook(t, s, a.ID, "order-created", "https://a.example/")
		storetest.Hook(t, s, b.ID, "order-created", "https://b.example/")
		off := storetest.Hook(t, s, a.ID, "order-created", "https://off.example/")
		storetest.Hook(t, s, a.ID, "other", "https://a.example/")
		if err := s.DeactivateWebhook(ctx, webhook.Scope{All: true}, off.ID); err != nil {
			t.Fatal(err)
		}
		evs := storetest.Publish(t, s, "order-created", `{"id": 1,  "name": "ü"}`)
		if len(evs) != 2 {
			t.Fatalf("fan-out to %d hooks, want 2", len(evs))
		}
		if evs[0].WebhookID != h1.ID || len(evs[0].UUID) != 32 || evs[0].UUID == evs[1].UUID || evs[0].State != webhook.StatePending {
			t.Fatalf("events: %+v", evs)
		}
		if string(evs[0].Payload) != `{"id":1,"name":"ü"}` {
			t.Fatalf("payload %s", evs[0].Payload)
		}
		_, err := s.Publish(ctx, webhook.PublishRequest{EventType: "nope", Payload: json.RawMessage(`{}`)})
		var unknown *webhook.UnknownEventTypeError
		if !errors.As(err, &unknown) || unknown.EventType != "nope" {
			t.Fatalf("unknown event type: %v", err)
		}
		if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "order-created", Payload: json.RawMessage(`{`)}); !errors.Is(err, webhook.ErrInvalidPayload) {
			t.Fatalf("bad payload: %v", err)
		}
		// Listing is scoped and newest first; filters by uuid and webhook.
		jobs, _, err := s.ListEvents(ctx, webhook.Scope{UserID: a.ID}, webhook.EventFilter{}, webhook.Page{})
		if err != nil || len(jobs) != 1 || jobs[0].Webhook.ID != h1.ID {
			t.Fatalf("a's events: %+v, %v", jobs, err)
		}
		if _, err := s.Event(ctx, webhook.Scope{UserID: b.ID}, evs[0].UUID); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("b reads a's event: %v", err)
		}
		dashed := evs[0].UUID[:8] + "-" + evs[0].UUID[8:12] + "-" + evs[0].UUID[12:16] + "-" + evs[0].UUID[16:20] + "-" + evs[0].UUID[20:]
		if j, err := s.Event(ctx, webhook.Scope{UserID: a.ID}, dashed); err != nil || j.Event.ID != evs[0].ID {
			t.Fatalf("event by dashed uuid: %v", err)
		}
		today := time.Now().UTC()
		jobs, _, _ = s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{CreatedDate: today, EventType: "order-created"}, webhook.Page{})
		if len(jobs) != 2 {
			t.Fatalf("created_date filter: %d", len(jobs))
		}
	})
}

func TestPublishIdempotencyKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		storetest.Hook(t, s, a.ID, "e", "https://a.example/")
		req := webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`1`), PublisherID: a.ID, IdempotencyKey: "k1"}
		first, err := s.Publish(ctx, req)
		if err != nil || first.Replayed {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				again, err := s.Publish(ctx, req)
				if err != nil || !again.Replayed || again.Events[0].UUID != first.Events[0].UUID {
					t.Errorf("replay: %+v %v", again, err)
				}
			}()
		}
		wg.Wait()
		c, _ := s.Counts(ctx)
		if c[webhook.StatePending] != 1 {
			t.Fatalf("fanned out more than once: %v", c)
		}
	})
}

// clock is a settable fake time for the queue tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// elapse moves every queue time d into the past: on PostgreSQL queue times
// follow the database's clock, which a test cannot set, so time passes for
// the queue this way on both backends.
func elapse(t *testing.T, s *store.Store, d time.Duration) {
	t.Helper()
	if _, err := s.DB().ExecContext(ctx, "UPDATE webhook_events SET next_attempt_at = next_attempt_at - ?, lease_until = lease_until - ?",
		d.Microseconds(), d.Microseconds()); err != nil {
		t.Fatal(err)
	}
}

func TestClaimCompleteRetryGiveUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, a.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{"n":1}`)[0]

		jobs, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(jobs) != 1 || jobs[0].Event.ID != ev.ID || string(jobs[0].Event.Payload) != `{"n":1}` || jobs[0].Webhook.TargetURL != "https://a.example/" {
			t.Fatalf("Claim = %+v, %v", jobs, err)
		}
		if again, _ := s.Claim(ctx, "n2", 10, time.Minute); len(again) != 0 {
			t.Fatal("leased event claimed twice")
		}
		// A failed attempt, retry in 5s.
		fail := webhook.Result{EventID: ev.ID, Lease: jobs[0].Lease, RetryCount: 1, State: webhook.StatePending, NextAttemptAt: clk.now().Add(5 * time.Second),
			Attempt: webhook.Attempt{AttemptedAt: clk.now(), Duration: 3 * time.Millisecond, Status: 500, Body: "oops"}}
		if err := s.Complete(ctx, []webhook.Result{fail}); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.Claim(ctx, "n1", 10, time.Minute); len(due) != 0 {
			t.Fatal("claimed before its retry time")
		}
		clk.add(5 * time.Second) // for created_at and modified_at
		elapse(t, s, 5*time.Second)
		jobs, _ = s.Claim(ctx, "n1", 10, time.Minute)
		if len(jobs) != 1 || jobs[0].Event.RetryCount != 1 {
			t.Fatalf("retry claim: %+v", jobs)
		}
		ok := webhook.Result{EventID: ev.ID, Lease: jobs[0].Lease, RetryCount: 2, State: webhook.StateDelivered,
			Attempt: webhook.Attempt{AttemptedAt: clk.now(), Status: 200, Body: "fine"}}
		if err := s.Complete(ctx, []webhook.Result{ok}); err != nil {
			t.Fatal(err)
		}
		j, err := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if err != nil {
			t.Fatal(err)
		}
		e := j.Event
		if !e.Delivered || e.State != webhook.StateDelivered || e.RetryCount != 2 || *e.ResponseHTTPStatus != 200 || e.ResponseContent != "fine" {
			t.Fatalf("after delivery: %+v", e)
		}
		if len(e.Attempts) != 2 || e.Attempts[0].Status != 200 || e.Attempts[1].Status != 500 || e.Attempts[1].Duration != 3*time.Millisecond {
			t.Fatalf("attempts (newest first): %+v", e.Attempts)
		}
		// Redeliver: refused unless forced, then a new series.
		var evErr *webhook.EventError
		if _, err := s.Redeliver(ctx, webhook.Scope{UserID: a.ID}, ev.UUID, false); !errors.As(err, &evErr) || evErr.UUID != ev.UUID || !errors.Is(err, webhook.ErrDelivered) {
			t.Fatalf("redeliver delivered: %v", err)
		}
		j, err = s.Redeliver(ctx, webhook.Scope{UserID: a.ID}, ev.UUID, true)
		if err != nil || j.Event.State != webhook.StatePending || j.Event.RetryBase != 2 {
			t.Fatalf("forced redeliver: %+v, %v", j.Event, err)
		}
		jobs, _ = s.Claim(ctx, "n1", 10, time.Minute)
		if len(jobs) != 1 {
			t.Fatal("redelivered event not due")
		}
		gu := webhook.Result{EventID: ev.ID, Lease: jobs[0].Lease, RetryCount: 3, State: webhook.StateGivenUp, Attempt: webhook.Attempt{AttemptedAt: clk.now(), Error: "refused"}}
		if err := s.Complete(ctx, []webhook.Result{gu}); err != nil {
			t.Fatal(err)
		}
		j, _ = s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if j.Event.State != webhook.StateGivenUp || j.Event.Delivered || j.Event.ResponseHTTPStatus != nil {
			t.Fatalf("given up: %+v", j.Event)
		}
		n, err := s.RedeliverFailed(ctx, webhook.Scope{UserID: a.ID}, webhook.RedeliverFilter{Since: clk.now().Add(-time.Hour)})
		if err != nil || n != 1 {
			t.Fatalf("RedeliverFailed = %d, %v", n, err)
		}
	})
}

func TestLeaseExpiryAndStaleComplete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, a.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `1`)[0]
		dead, _ := s.Claim(ctx, "dead", 10, time.Minute)
		if len(dead) != 1 {
			t.Fatal("claim")
		}
		elapse(t, s, 61*time.Second) // the node died; its lease ran out
		jobs, _ := s.Claim(ctx, "alive", 10, time.Minute)
		if len(jobs) != 1 {
			t.Fatal("expired lease not reclaimed")
		}
		// The dead node's late result is ignored; the live one's counts.
		late := webhook.Result{EventID: ev.ID, Lease: dead[0].Lease, RetryCount: 1, State: webhook.StateGivenUp, Attempt: webhook.Attempt{AttemptedAt: clk.now()}}
		if err := s.Complete(ctx, []webhook.Result{late}); err != nil {
			t.Fatal(err)
		}
		j, _ := s.Event(ctx, webhook.Scope{All: true}, ev.UUID)
		if j.Event.State != webhook.StatePending || len(j.Event.Attempts) != 0 {
			t.Fatalf("stale result applied: %+v", j.Event)
		}
		// Release makes it due at once for anyone.
		if err := s.Release(ctx, []webhook.LeaseRef{dead[0].LeaseRef()}); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.ClaimEvents(ctx, "inline", []int64{ev.ID}, time.Minute); len(again) != 0 {
			t.Fatal("a stale lease released the live one")
		}
		if err := s.Release(ctx, []webhook.LeaseRef{jobs[0].LeaseRef()}); err != nil {
			t.Fatal(err)
		}
		if jobs, _ := s.ClaimEvents(ctx, "inline", []int64{ev.ID}, time.Minute); len(jobs) != 1 {
			t.Fatal("released event not claimable")
		}
		if jobs, _ := s.ClaimEvents(ctx, "other", []int64{ev.ID}, time.Minute); len(jobs) != 0 {
			t.Fatal("ClaimEvents took a leased event")
		}
	})
}

// Concurrent claimers never get the same event (FOR UPDATE SKIP LOCKED on
// PostgreSQL, the single writer on SQLite).
func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		for i := range 20 {
			storetest.Hook(t, s, a.ID, "e", fmt.Sprintf("https://a.example/%d", i))
		}
		for range 10 {
			storetest.Publish(t, s, "e", `1`)
		}
		var mu sync.Mutex
		seen := map[int64]string{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprint("n", w)
				for {
					jobs, err := s.Claim(ctx, owner, 7, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(jobs) == 0 {
						return
					}
					mu.Lock()
					for _, j := range jobs {
						if prev, dup := seen[j.Event.ID]; dup {
							t.Errorf("event %d claimed by %s and %s", j.Event.ID, prev, owner)
						}
						seen[j.Event.ID] = owner
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 200 {
			t.Fatalf("claimed %d of 200", len(seen))
		}
	})
}

func TestListenWakesOnPublish(t *testing.T) {
	// s listens; other is another node on the same database. A store's
	// own publishes do not wake its listener (their publisher wakes its
	// dispatcher in process).
	u := storetest.URL(t, store.Postgres)
	s, other := storetest.Open(t, u, store.Options{}), storetest.Open(t, u, store.Options{})
	a, _ := storetest.User(t, s, "a", webhook.RoleUser)
	storetest.Hook(t, s, a.ID, "e", "https://a.example/")
	started := time.Now()
	lctx, cancel := context.WithCancel(ctx)
	woke := make(chan struct{}, 16)
	lost := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(lctx, func() { woke <- struct{}{} }, func(err error) { lost <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	wake := func(what string) {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}
	wake("listener never started") // the catch-up call after LISTEN
	storetest.Publish(t, other, "e", `1`)
	wake("no notification after another node's publish")

	// A lost connection is reported, not dropped, and the listener comes
	// back (catching up at once) and is woken by the next publish. Other
	// listeners started since this test began may be cut too: they
	// reconnect the same way.
	if _, err := s.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND backend_start >= ? AND pid <> pg_backend_pid()`, started.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if err == nil {
			t.Error("the listener reported a nil error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lost connection was not reported")
	}
	wake("no catch-up after reconnecting")
	storetest.Publish(t, other, "e", `2`)
	wake("no notification after reconnecting")
}

func TestAuthCache(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			open := func(ttl time.Duration) *store.Store {
				s, err := store.Open(ctx, storetest.URL(t, backend), store.Options{AuthCacheTTL: ttl})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				if backend == store.Postgres && ttl > 0 {
					// The cache is used only while revocations are watched.
					wctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- s.WatchRevocations(wctx, nil) }()
					t.Cleanup(func() { cancel(); <-done })
					poll.Until(t, 10*time.Second, "revocations to be watched", s.RevocationsWatched)
				}
				return s
			}
			// An UPDATE on the store's own connection, without a
			// notification: nothing the cache can see.
			revokeBehindItsBack := func(s *store.Store) {
				if _, err := s.DB().NewRaw("UPDATE api_tokens SET revoked_at = created_at").Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// Cached: a revocation the cache cannot see is seen only after the TTL.
			s := open(time.Hour)
			_, tok := storetest.User(t, s, "a", webhook.RoleUser)
			if _, err := s.Authenticate(ctx, tok); err != nil {
				t.Fatal(err)
			}
			revokeBehindItsBack(s)
			if _, err := s.Authenticate(ctx, tok); err != nil {
				t.Fatalf("cached token refused: %v", err)
			}
			// A revocation through this store takes effect at once.
			_, tok2 := storetest.User(t, s, "b", webhook.RoleUser)
			if _, err := s.Authenticate(ctx, tok2); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeToken(ctx, tok2); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Authenticate(ctx, tok2); !errors.Is(err, webhook.ErrUnauthenticated) {
				t.Fatalf("revoked token still accepted: %v", err)
			}
			// An expired entry asks the database again.
			s = open(time.Nanosecond)
			_, tok3 := storetest.User(t, s, "c", webhook.RoleUser)
			if _, err := s.Authenticate(ctx, tok3); err != nil {
				t.Fatal(err)
			}
			revokeBehindItsBack(s)
			if _, err := s.Authenticate(ctx, tok3); !errors.Is(err, webhook.ErrUnauthenticated) {
				t.Fatalf("expired cache entry served: %v", err)
			}
		})
	}
}

// ClaimEvents (the inline "async": false path) takes only events with no
// attempt in their current series: one the claim loop attempted and that
// waits for its retry is left to its countdown, not sent again at once. A
// redelivered event starts a new series and is claimable again.
func TestClaimEventsSkipsAttemptedEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RoleUser)
		storetest.Hook(t, s, a.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `1`)[0]
		jobs, _ := s.Claim(ctx, "loop", 10, time.Minute)
		if len(jobs) != 1 {
			t.Fatal("claim")
		}
		fail := webhook.Result{EventID: ev.ID, Lease: jobs[0].Lease, RetryCount: 1, State: webhook.StatePending,
			NextAttemptAt: time.Now().Add(time.Hour), Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 500}}
		if err := s.Complete(ctx, []webhook.Result{fail}); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.ClaimEvents(ctx, "inline", []int64{ev.ID}, time.Minute); len(again) != 0 {
			t.Fatal("ClaimEvents took an event waiting for its retry")
		}
		if _, err := s.Redeliver(ctx, webhook.Scope{All: true}, ev.UUID, false); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.ClaimEvents(ctx, "inline", []int64{ev.ID}, time.Minute); len(again) != 1 {
			t.Fatal("ClaimEvents skipped a redelivered event")
		}
	})
}

// A SQLite path whose directory is missing says so, naming both, once.
func TestOpenSQLiteMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "w.db"), store.Options{})
	if err == nil || !strings.Contains(err.Error(), "its directory "+dir+" does not exist") ||
		strings.Count(err.Error(), filepath.Join(dir, "w.db")) != 1 {
		t.Fatalf("Open = %v", err)
	}
}

// SQLite's event uuids are version 7: time-ordered, so that a new one goes
// to the right edge of the uuid index (BENCHMARKS.md, a million rows
// preloaded), and still 32 hex digits with the variant bits set.
func TestSQLiteUUIDsAreTimeOrdered(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	a, _ := storetest.User(t, s, "a", webhook.RoleUser)
	storetest.Hook(t, s, a.ID, "e", "https://a.example/1")
	storetest.Hook(t, s, a.ID, "e", "https://a.example/2")
	var prev string
	for i := range 3 {
		if i > 0 {
			time.Sleep(2 * time.Millisecond) // the uuid's time is in ms
		}
		evs := storetest.Publish(t, s, "e", `{}`)
		if len(evs) != 2 || evs[0].UUID == evs[1].UUID {
			t.Fatalf("events %+v", evs)
		}
		for _, ev := range evs {
			u := ev.UUID
			if len(u) != 32 || strings.Trim(u, "0123456789abcdef") != "" || u[12] != '7' || !strings.ContainsRune("89ab", rune(u[16])) {
				t.Fatalf("uuid %q is not a version 7 uuid in 32 lowercase hex digits", u)
			}
			if u[:12] < prev {
				t.Fatalf("uuid %q is older than %q, published before it", u, prev)
			}
		}
		prev = evs[0].UUID[:12]
	}
}
