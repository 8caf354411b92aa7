package store_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
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
			{EventType: "e", Payload: json.RawMessage(`3`), IdempotencyKey: "k"},
			{EventType: "e", Payload: json.RawMessage(`4`)},
		}
		res, errs := s.PublishBatch(ctx, reqs)
		if errs[0] != nil || len(res[0].Events) != 2 || res[0].Events[0].WebhookID != h1.ID || res[0].Events[1].WebhookID != h2.ID {
			t.Fatalf("request 0: %+v, %v", res[0], errs[0])
		}
		if string(res[0].Events[0].Payload) != `{"n":1}` || len(res[0].Events[0].UUID) != 32 {
			t.Fatalf("request 0 event: %+v", res[0].Events[0])
		}
		var verr *webhook.ValidationError
		if !errors.As(errs[1], &verr) || verr.Fields["event_type"] == nil {
			t.Fatalf("unknown type: %v", errs[1])
		}
		if errs[2] != nil || res[2].Events == nil || len(res[2].Events) != 0 {
			t.Fatalf("no hooks: %+v, %v", res[2], errs[2])
		}
		if !errors.As(errs[3], &verr) || verr.Fields["payload"] == nil {
			t.Fatalf("bad payload: %v", errs[3])
		}
		if errs[4] == nil {
			t.Fatal("idempotency key accepted in a batch")
		}
		if errs[5] != nil || len(res[5].Events) != 2 || res[5].Events[0].UUID == res[0].Events[0].UUID {
			t.Fatalf("request 5: %+v, %v", res[5], errs[5])
		}
		c, err := s.Counts(ctx)
		if err != nil || c[webhook.StatePending] != 4 {
			t.Fatalf("rows: %v, %v", c, err)
		}
		// What the batch wrote is what a claim reads.
		jobs, err := s.Claim(ctx, "n", 10, 60e9)
		if err != nil || len(jobs) != 4 || string(jobs[0].Event.Payload) != `{"n":1}` {
			t.Fatalf("claim after batch: %+v, %v", jobs, err)
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
