package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A publish batch checked against the rows it wrote: randomized batches
// (fixed seed) and concurrent publishers, on both backends. Written by the
// review of the one-statement SQLite batch.

type publishedRow struct {
	ID, MessageID, WebhookID int64
	UUID                     string
	LeaseOwner               *string
	Payload                  string
	Key                      *string
	Publisher                *int64
}

func publishedRows(t *testing.T, s *store.Store) map[int64]publishedRow {
	rows, err := s.DB().DB.QueryContext(context.Background(), `SELECT e.id, e.message_id, e.webhook_id, e.uuid, e.lease_owner, m.payload, m.idempotency_key, m.publisher_id
		FROM webhook_events e JOIN messages m ON m.id = e.message_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]publishedRow{}
	for rows.Next() {
		var r publishedRow
		if err := rows.Scan(&r.ID, &r.MessageID, &r.WebhookID, &r.UUID, &r.LeaseOwner, &r.Payload, &r.Key, &r.Publisher); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r
	}
	return out
}

// Randomized batches: unknown types, types with no hooks, filters,
// inactive hooks, holds, repeated idempotency keys (in the batch and
// across batches), lease limits; every answer checked against the rows.
func TestPublishBatchRandom(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		b, _ := storetest.User(t, s, "b", webhook.RolePublisher)
		h1 := storetest.Hook(t, s, a.ID, "t1", "https://h1.example/")
		h2 := storetest.Hook(t, s, b.ID, "t1", "https://h2.example/", withFilter(`{"payload.x":1}`))
		h3 := storetest.Hook(t, s, a.ID, "t1", "https://h3.example/", withFilter(`{"payload.x":{"$gte":1}}`))
		storetest.Hook(t, s, a.ID, "t1", "https://off.example/", func(w *webhook.Webhook) { w.IsActive = false })
		h5 := storetest.Hook(t, s, a.ID, "t2", "https://h5.example/", withFilter(`{"payload.x":2}`))
		h6 := storetest.Hook(t, s, b.ID, "t2", "https://h6.example/")
		if err := s.AddEventTypes(ctx, "t3"); err != nil {
			t.Fatal(err)
		}
		expect := func(typ string, x int) []int64 {
			switch typ {
			case "t1":
				out := []int64{h1.ID}
				if x == 1 {
					out = append(out, h2.ID)
				}
				if x >= 1 {
					out = append(out, h3.ID)
				}
				return out
			case "t2":
				out := []int64{}
				if x == 2 {
					out = append(out, h5.ID)
				}
				return append(out, h6.ID)
			}
			return nil
		}
		hookURL := map[int64]string{h1.ID: h1.TargetURL, h2.ID: h2.TargetURL, h3.ID: h3.TargetURL, h5.ID: h5.TargetURL, h6.ID: h6.TargetURL}
		rng := rand.New(rand.NewSource(1))
		nonce := 0
		type pub struct {
			typ string
			x   int
		}
		byKey := map[string][]int64{} // publisher/key: event ids of first publish
		byKeyPub := map[string]pub{}
		types := []string{"t1", "t2", "t3", "nope", "t1", "t1"}
		for round := 0; round < 60; round++ {
			n := 1 + rng.Intn(12)
			reqs := make([]webhook.PublishRequest, n)
			pubs := make([]pub, n)
			for i := range reqs {
				nonce++
				p := pub{types[rng.Intn(len(types))], rng.Intn(4)}
				pubs[i] = p
				reqs[i] = webhook.PublishRequest{EventType: p.typ, Payload: json.RawMessage(fmt.Sprintf(`{"x": %d, "nonce": %d}`, p.x, nonce))}
				if rng.Intn(2) == 0 {
					reqs[i].PublisherID = a.ID
				} else if rng.Intn(2) == 0 {
					reqs[i].PublisherID = b.ID
				}
				if rng.Intn(3) == 0 {
					reqs[i].IdempotencyKey = fmt.Sprintf("k%d", rng.Intn(30))
				}
				if rng.Intn(4) == 0 {
					reqs[i].Hold = time.Minute
				}
			}
			limit := rng.Intn(8)
			before := publishedRows(t, s)
			res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: limit})
			after := publishedRows(t, s)
			newRows := map[int64]publishedRow{}
			for id, r := range after {
				if _, ok := before[id]; !ok {
					newRows[id] = r
				}
			}
			seen := map[int64]bool{}
			leasedOrder := [][2]int64{} // (request, hook) of leased rows answered
			unheldOrder := [][2]int64{} // every new unheld row
			batchFirst := map[string]int{}
			for i, r := range reqs {
				key := ""
				if r.IdempotencyKey != "" && r.PublisherID != 0 {
					key = fmt.Sprintf("%d/%s", r.PublisherID, r.IdempotencyKey)
				}
				if j, ok := batchFirst[key]; ok && key != "" && pubs[j].typ == "nope" {
					var u *webhook.UnknownEventTypeError
					if !errors.As(errs[i], &u) {
						t.Errorf("round %d req %d: repeat of unknown %d: %v", round, i, j, errs[i])
					}
					continue
				} else if !ok && key != "" {
					batchFirst[key] = i
				}
				if prev, ok := byKey[key]; ok && key != "" {
					// replay: events must be the earlier ones
					var got []int64
					for _, e := range res[i].Events {
						got = append(got, e.ID)
					}
					if errs[i] != nil || !res[i].Replayed || !slices.Equal(got, prev) {
						t.Errorf("round %d req %d: replay of %s: got %v (replayed %v, err %v), want %v (first %+v)", round, i, key, got, res[i].Replayed, errs[i], prev, byKeyPub[key])
					}
					continue
				}
				if pubs[i].typ == "nope" {
					var u *webhook.UnknownEventTypeError
					if !errors.As(errs[i], &u) || len(res[i].Events) != 0 {
						t.Errorf("round %d req %d: unknown: %v %+v", round, i, errs[i], res[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("round %d req %d: %v", round, i, errs[i])
					continue
				}
				want := expect(pubs[i].typ, pubs[i].x)
				var got []int64
				var ids []int64
				var msg int64
				for k, e := range res[i].Events {
					got = append(got, e.WebhookID)
					ids = append(ids, e.ID)
					row, ok := newRows[e.ID]
					if !ok {
						t.Errorf("round %d req %d: event %d is not a new row", round, i, e.ID)
						continue
					}
					seen[e.ID] = true
					if k == 0 {
						msg = row.MessageID
					} else if row.MessageID != msg {
						t.Errorf("round %d req %d: events of several messages", round, i)
					}
					var pl map[string]any
					_ = json.Unmarshal([]byte(row.Payload), &pl)
					if int(pl["nonce"].(float64)) != nonceOf(r) || row.UUID != e.UUID || row.WebhookID != e.WebhookID {
						t.Errorf("round %d req %d: event %d answered %+v, row %+v", round, i, e.ID, e, row)
					}
					if (row.LeaseOwner != nil) != slices.ContainsFunc(res[i].Jobs, func(j webhook.Job) bool { return j.Event.ID == e.ID }) {
						t.Errorf("round %d req %d: event %d lease %v, jobs %d", round, i, e.ID, row.LeaseOwner, len(res[i].Jobs))
					}
					if r.Hold == 0 {
						unheldOrder = append(unheldOrder, [2]int64{int64(i), e.WebhookID})
					} else if row.LeaseOwner != nil {
						t.Errorf("round %d req %d: held row leased", round, i)
					}
					if row.LeaseOwner != nil {
						leasedOrder = append(leasedOrder, [2]int64{int64(i), e.WebhookID})
					}
				}
				for _, j := range res[i].Jobs {
					if j.Webhook.ID != j.Event.WebhookID || j.Webhook.TargetURL != hookURL[j.Event.WebhookID] || j.Event.Payload == nil {
						t.Errorf("round %d req %d: job %+v", round, i, j)
					}
				}
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("round %d req %d (%+v): hooks %v, want %v", round, i, pubs[i], got, want)
				}
				if key != "" {
					byKey[key], byKeyPub[key] = ids, pubs[i]
					if ids == nil {
						byKey[key] = nil
					}
				}
			}
			for id := range newRows {
				if !seen[id] {
					t.Errorf("round %d: row %d written, answered to nobody: %+v", round, id, newRows[id])
				}
			}
			wantLeased := unheldOrder[:min(limit, len(unheldOrder))]
			if len(wantLeased) == 0 {
				wantLeased = [][2]int64{}
			}
			if !slices.Equal(leasedOrder, wantLeased) && !(len(leasedOrder) == 0 && len(wantLeased) == 0) {
				t.Errorf("round %d: leased %v, want %v (limit %d)", round, leasedOrder, wantLeased, limit)
			}
		}
		t.Logf("%d published", nonce)
	})
}

func nonceOf(r webhook.PublishRequest) int {
	var pl map[string]any
	_ = json.Unmarshal(r.Payload, &pl)
	return int(pl["nonce"].(float64))
}

// Concurrent publishers: each gets its own events.
func TestPublishConcurrentPublishers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		storetest.Hook(t, s, a.ID, "t1", "https://h1.example/")
		storetest.Hook(t, s, a.ID, "t1", "https://h2.example/")
		if err := s.AddEventTypes(ctx, "t3"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		answered := map[int64]int{} // event id: nonce
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for k := 0; k < 20; k++ {
					reqs := []webhook.PublishRequest{}
					for i := 0; i < 5; i++ {
						n := g*100000 + k*100 + i
						typ := []string{"t1", "nope", "t3", "t1", "t1"}[i]
						reqs = append(reqs, webhook.PublishRequest{EventType: typ, PublisherID: a.ID, IdempotencyKey: fmt.Sprintf("c%d", n%7+g*10+k*1000),
							Payload: json.RawMessage(fmt.Sprintf(`{"nonce": %d}`, n))})
					}
					res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n", Lease: time.Minute, Limit: 3})
					mu.Lock()
					for i := range reqs {
						if errs[i] != nil && reqs[i].EventType != "nope" {
							t.Errorf("%v", errs[i])
						}
						if res[i].Replayed {
							continue
						}
						for _, e := range res[i].Events {
							if prev, ok := answered[e.ID]; ok {
								t.Errorf("event %d answered twice (%d, %d)", e.ID, prev, nonceOf(reqs[i]))
							}
							answered[e.ID] = nonceOf(reqs[i])
						}
					}
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
		rows := publishedRows(t, s)
		for id, n := range answered {
			var pl map[string]any
			_ = json.Unmarshal([]byte(rows[id].Payload), &pl)
			if int(pl["nonce"].(float64)) != n {
				t.Errorf("event %d: answered to nonce %d, row has %s", id, n, rows[id].Payload)
			}
		}
		if len(rows) != len(answered) {
			t.Errorf("%d rows, %d answered", len(rows), len(answered))
		}
		t.Logf("%d rows", len(rows))
	})
}

// Concurrent publishers racing on the same keys: one message per key, and
// every answer for a key names the same events.
func TestPublishConcurrentSameKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		storetest.Hook(t, s, a.ID, "t1", "https://h1.example/")
		storetest.Hook(t, s, a.ID, "t1", "https://h2.example/")
		var wg sync.WaitGroup
		var mu sync.Mutex
		byKey := map[string][]string{}
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for k := 0; k < 30; k++ {
					reqs := []webhook.PublishRequest{
						{EventType: "t1", PublisherID: a.ID, Payload: json.RawMessage(`{}`)},
						{EventType: "nope", PublisherID: a.ID, IdempotencyKey: fmt.Sprintf("n%d", k), Payload: json.RawMessage(`{}`)},
						{EventType: "t1", PublisherID: a.ID, IdempotencyKey: fmt.Sprintf("k%d", k), Payload: json.RawMessage(fmt.Sprintf(`{"g":%d}`, g))},
						{EventType: "t1", PublisherID: a.ID, IdempotencyKey: fmt.Sprintf("k%d", k+1), Payload: json.RawMessage(fmt.Sprintf(`{"g":%d}`, g))},
					}
					res, errs := s.PublishLeased(ctx, reqs, webhook.PublishLease{Owner: "n", Lease: time.Minute, Limit: 2})
					mu.Lock()
					for i := 2; i < 4; i++ {
						if errs[i] != nil {
							t.Errorf("g%d k%d req %d: %v", g, k, i, errs[i])
							continue
						}
						var u []string
						for _, e := range res[i].Events {
							u = append(u, e.UUID)
						}
						key := reqs[i].IdempotencyKey
						if prev, ok := byKey[key]; ok && !slices.Equal(prev, u) {
							t.Errorf("key %s: %v then %v", key, prev, u)
						} else if !ok {
							byKey[key] = u
						}
						if len(u) != 2 {
							t.Errorf("key %s: %d events", key, len(u))
						}
					}
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
		var n int
		if err := s.DB().DB.QueryRow(`SELECT count(*) FROM messages WHERE idempotency_key IS NOT NULL`).Scan(&n); err != nil || n != 31 {
			t.Errorf("%d keyed messages (%v), want 31", n, err)
		}
		if err := s.DB().DB.QueryRow(`SELECT count(*) FROM webhook_events e JOIN messages m ON m.id = e.message_id WHERE idempotency_key IS NOT NULL`).Scan(&n); err != nil || n != 62 {
			t.Errorf("%d keyed rows (%v), want 62", n, err)
		}
	})
}
