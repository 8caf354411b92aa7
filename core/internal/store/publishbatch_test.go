package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func TestPublishBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		h1 := storetest.Hook(t, s, a.ID, "e", "https://one.example/")
		h2 := storetest.Hook(t, s, a.ID, "e", "https://two.example/")
		if err := s.AddEventTypes(ctx, "quiet"); err != nil {
			t.Fatal(err)
		}
		reqs := []webhook.PublishRequest{
			{EventType: "e", Payload: json.RawMessage(`{"n": 1}`), PublisherID: a.ID},
			{EventType: "nope", Payload: json.RawMessage(`{}`)},
			{EventType: "quiet", Payload: json.RawMessage(`2`)},
			{EventType: "e", Payload: json.RawMessage(`{`)},
			{EventType: "e", Payload: json.RawMessage(`3`), PublisherID: a.ID, IdempotencyKey: "k"},
			{EventType: "e", Payload: json.RawMessage(`4`)},
			{EventType: "e", Payload: json.RawMessage(`5`), PublisherID: a.ID, IdempotencyKey: "k"},
			{EventType: "e", Payload: json.RawMessage(`6`), Hold: time.Hour},
		}
		res, errs := s.PublishBatch(ctx, reqs)
		if errs[0] != nil || len(res[0].Events) != 2 || res[0].Events[0].WebhookID != h1.ID || res[0].Events[1].WebhookID != h2.ID {
			t.Fatalf("request 0: %+v, %v", res[0], errs[0])
		}
		if string(res[0].Events[0].Payload) != `{"n":1}` || len(res[0].Events[0].UUID) != 32 {
			t.Fatalf("request 0 event: %+v", res[0].Events[0])
		}
		var unknown *webhook.UnknownEventTypeError
		if !errors.As(errs[1], &unknown) || unknown.EventType != "nope" {
			t.Fatalf("unknown type: %v", errs[1])
		}
		if errs[2] != nil || res[2].Events == nil || len(res[2].Events) != 0 {
			t.Fatalf("no hooks: %+v, %v", res[2], errs[2])
		}
		if !errors.Is(errs[3], webhook.ErrInvalidPayload) {
			t.Fatalf("bad payload: %v", errs[3])
		}
		if errs[4] != nil || res[4].Replayed || len(res[4].Events) != 2 {
			t.Fatalf("idempotent request: %+v, %v", res[4], errs[4])
		}
		if errs[5] != nil || len(res[5].Events) != 2 || res[5].Events[0].UUID == res[0].Events[0].UUID {
			t.Fatalf("request 5: %+v, %v", res[5], errs[5])
		}
		// The key again in the same batch is a replay of the first.
		if errs[6] != nil || !res[6].Replayed || len(res[6].Events) != 2 || res[6].Events[0].UUID != res[4].Events[0].UUID {
			t.Fatalf("key repeated in the batch: %+v, %v", res[6], errs[6])
		}
		if errs[7] != nil || len(res[7].Events) != 2 || res[7].Events[0].NextAttemptAt.Before(time.Now().Add(50*time.Minute)) {
			t.Fatalf("held request: %+v, %v", res[7], errs[7])
		}
		c, err := s.Counts(ctx)
		if err != nil || c[webhook.StatePending] != 8 {
			t.Fatalf("rows: %v, %v", c, err)
		}
		// What the batch wrote is what a claim reads; the held events are
		// not due.
		jobs, err := s.Claim(ctx, "n", 10, 60e9)
		if err != nil || len(jobs) != 6 || string(jobs[0].Event.Payload) != `{"n":1}` {
			t.Fatalf("claim after batch: %+v, %v", jobs, err)
		}
		// A later batch replays the key whatever its payload or type.
		again, errs := s.PublishBatch(ctx, []webhook.PublishRequest{
			{EventType: "quiet", Payload: json.RawMessage(`7`), PublisherID: a.ID, IdempotencyKey: "k"}})
		if errs[0] != nil || !again[0].Replayed || len(again[0].Events) != 2 || again[0].Events[1].UUID != res[4].Events[1].UUID {
			t.Fatalf("replay: %+v, %v", again[0], errs[0])
		}
	})
}

// TestPublishIdempotentRace: concurrent publishes with one key write one
// message; the others answer with its events.
func TestPublishIdempotentRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		storetest.Hook(t, s, a.ID, "e", "https://one.example/")
		const n = 8
		res := make([]webhook.Published, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = s.Publish(ctx, webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`1`),
					PublisherID: a.ID, IdempotencyKey: "race"})
			}()
		}
		wg.Wait()
		written := 0
		for i := range n {
			if errs[i] != nil || len(res[i].Events) != 1 || res[i].Events[0].UUID != res[0].Events[0].UUID {
				t.Fatalf("publish %d: %+v, %v (first %+v)", i, res[i], errs[i], res[0])
			}
			if !res[i].Replayed {
				written++
			}
		}
		if written != 1 {
			t.Fatalf("%d publishes wrote the message, want 1", written)
		}
	})
}

// TestSQLitePublishBeforeMigrate: the publish statements are prepared on
// first use; a publish before the tables exist is an error, not a cached
// failure, and publishing works once migrated.
func TestSQLitePublishBeforeMigrate(t *testing.T) {
	s, err := store.Open(ctx, storetest.URL(t, store.SQLite), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`1`)}
	if _, err := s.Publish(ctx, req); !errors.Is(err, webhook.ErrUnavailable) {
		t.Fatalf("publish before migrating: %v, want ErrUnavailable", err)
	}
	if _, errs := s.PublishBatch(ctx, []webhook.PublishRequest{req}); !errors.Is(errs[0], webhook.ErrUnavailable) {
		t.Fatalf("batch before migrating: %v, want ErrUnavailable", errs[0])
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
	storetest.Hook(t, s, a.ID, "e", "https://one.example/")
	for range 3 { // the batch path, then the single path, reusing the statements
		if res, errs := s.PublishBatch(ctx, []webhook.PublishRequest{req}); errs[0] != nil || len(res[0].Events) != 1 {
			t.Fatalf("batch after migrating: %+v, %v", res, errs[0])
		}
		if res, err := s.Publish(ctx, req); err != nil || len(res.Events) != 1 {
			t.Fatalf("publish after migrating: %+v, %v", res, err)
		}
	}
}

// TestPublishBatchManyFilteredHooks: a full batch (256 requests) of an
// event type with 40 hooks whose filters all pass writes a row per request
// and hook. On SQLite the passing pairs were one list scanned for every
// joined row (R²·H² comparisons): this batch held the one connection for
// minutes and then failed with "database or disk is full".
func TestPublishBatchManyFilteredHooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		const hooks, batch = 40, 256
		for h := range hooks {
			storetest.Hook(t, s, u.ID, "e", fmt.Sprintf("https://a.example/%d", h), withFilter(`{"payload.n":{"$gte":0}}`))
		}
		reqs := make([]webhook.PublishRequest, batch)
		for i := range reqs {
			reqs[i] = webhook.PublishRequest{EventType: "e", PublisherID: u.ID, Payload: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))}
		}
		res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: 64})
		leased := 0
		for i := range reqs {
			if errs[i] != nil || len(res[i].Events) != hooks {
				t.Fatalf("request %d: %d events, %v; want %d", i, len(res[i].Events), errs[i], hooks)
			}
			leased += len(res[i].Jobs)
		}
		if leased != 64 {
			t.Errorf("%d rows leased, want the limit 64", leased)
		}
	})
}
