package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// failures records the reported plugin filter failures.
type failures struct {
	mu  sync.Mutex
	got []string
}

func (f *failures) add(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, name+": "+err.Error())
}

func (f *failures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// Plugin filters run at fan-out, before any row is written: a refused
// event gets no row; a filter that errors, panics or is not registered
// delivers and is reported; a declarative filter beside them still works.
func TestPublishRunsPluginFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		reg := &filter.Registry{}
		var seen sync.Map
		for name, fn := range map[string]webhook.FilterFunc{
			"big": func(_ context.Context, kw json.RawMessage, typ string, payload json.RawMessage) (bool, error) {
				seen.Store(typ+string(kw), true)
				var k struct{ Min float64 }
				var p struct{ Amount float64 }
				_ = json.Unmarshal(kw, &k)
				_ = json.Unmarshal(payload, &p)
				return p.Amount >= k.Min, nil
			},
			"broken": func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) {
				return false, errors.New("trap")
			},
			"panics": func(context.Context, json.RawMessage, string, json.RawMessage) (bool, error) { panic("boom") },
		} {
			if err := reg.Register("test", name, webhook.Filter{Match: fn}); err != nil {
				t.Fatal(err)
			}
		}
		var fails failures
		s.SetPluginFilters(reg, fails.add)

		a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
		plain := storetest.Hook(t, s, a.ID, "order", "https://plain.example/")
		big := storetest.Hook(t, s, a.ID, "order", "https://big.example/", withFilter(`{"plugin":"big","kwargs":{"min":100}}`))
		broken := storetest.Hook(t, s, a.ID, "order", "https://broken.example/", withFilter(`{"plugin":"broken","kwargs":{}}`))
		panics := storetest.Hook(t, s, a.ID, "order", "https://panics.example/", withFilter(`{"plugin":"panics","kwargs":{}}`))
		gone := storetest.Hook(t, s, a.ID, "order", "https://gone.example/", withFilter(`{"plugin":"uninstalled","kwargs":{}}`))
		paid := storetest.Hook(t, s, a.ID, "order", "https://paid.example/", withFilter(`{"payload.status":"paid"}`))
		// Saved under older rules ($gt took strings): it no longer compiles,
		// delivers, and is reported.
		old := storetest.Hook(t, s, a.ID, "order", "https://old.example/", withFilter(`{"payload.status":{"$gt":"a"}}`))

		res, errs := s.PublishBatch(ctx, []webhook.PublishRequest{
			{EventType: "order", Payload: json.RawMessage(`{"status": "paid", "amount": 5}`)},
			{EventType: "order", Payload: json.RawMessage(`{"status": "open", "amount": 500}`)},
		})
		want := [][]int64{{plain.ID, broken.ID, panics.ID, gone.ID, paid.ID, old.ID}, {plain.ID, big.ID, broken.ID, panics.ID, gone.ID, old.ID}}
		for i := range want {
			var ids []int64
			for _, e := range res[i].Events {
				ids = append(ids, e.WebhookID)
			}
			if errs[i] != nil || !equalIDs(ids, want[i]) || res[i].Filtered != 1 {
				t.Errorf("request %d: hooks %v filtered %d (%v), want %v and 1", i, ids, res[i].Filtered, errs[i], want[i])
			}
		}
		if _, ok := seen.Load(`order{"min":100}`); !ok {
			t.Error("the plugin filter did not get its kwargs and the event type")
		}
		got := strings.Join(fails.list(), "\n")
		for _, w := range []string{"broken: trap", "panics: panic: boom", "uninstalled: " + filter.ErrUnknownPlugin.Error(),
			fmt.Sprintf(": %v: hook %d: payload.status: $gt expects a number, got a string.", store.ErrUncompilableFilter, old.ID)} {
			if strings.Count(got, w) != 2 {
				t.Errorf("failures %q: want %q twice", got, w)
			}
		}
		jobs, _, err := s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{}, webhook.Page{Limit: 100})
		if err != nil || len(jobs) != 12 {
			t.Fatalf("rows: %d %v", len(jobs), err)
		}
	})
}

// A publish batch's plugin filter calls share store.PluginFilterBudget: a
// call that ignores its context is not followed by others; those deliver
// and are reported.
func TestPluginFilterBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the budget")
	}
	s := storetest.New(t, store.SQLite)
	reg := &filter.Registry{}
	calls := 0
	_ = reg.Register("test", "slow", webhook.Filter{
		Match: func(ctx context.Context, _ json.RawMessage, _ string, _ json.RawMessage) (bool, error) {
			calls++
			<-ctx.Done() // the host's deadline would end it first; here the batch's does
			return false, ctx.Err()
		},
	})
	var fails failures
	s.SetPluginFilters(reg, fails.add)
	a, _ := storetest.User(t, s, "a", webhook.RolePublisher)
	storetest.Hook(t, s, a.ID, "order", "https://one.example/", withFilter(`{"plugin":"slow"}`))
	storetest.Hook(t, s, a.ID, "order", "https://two.example/", withFilter(`{"plugin":"slow"}`))
	res, errs := s.PublishBatch(ctx, []webhook.PublishRequest{
		{EventType: "order", Payload: json.RawMessage(`1`)}, {EventType: "order", Payload: json.RawMessage(`2`)},
	})
	if errs[0] != nil || len(res[0].Events) != 2 || len(res[1].Events) != 2 || calls != 1 {
		t.Fatalf("events %d %d, %d calls, %v", len(res[0].Events), len(res[1].Events), calls, errs)
	}
	if f := fails.list(); len(f) != 4 || !strings.Contains(f[3], "spent its 2s") {
		t.Fatalf("failures: %q", f)
	}
}

// upgraded is storetest.Legacy's database (rows in every state) migrated
// to version from (a previous release), then to the latest.
func upgraded(t *testing.T, backend string, from int) *store.Store {
	t.Helper()
	s, err := store.Open(ctx, storetest.Legacy(t, backend), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateTo(ctx, from); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// A database of the previous releases (rows in every state, migrated to
// 008, the last before the transform column) migrates in place: every
// hook has no transform and its events are claimed as before; a
// transform set afterwards is read back by the claim.
func TestTransformMigrationFromPreviousRelease(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := upgraded(t, backend, 8)
			all := webhook.Scope{All: true}
			for _, id := range []int64{1, 2} {
				if h, err := s.Webhook(ctx, all, id); err != nil || h.Transform != nil {
					t.Fatalf("hook %d: transform %v, %v", id, h.Transform, err)
				}
			}
			h, _ := s.Webhook(ctx, all, 1)
			h.Transform = &webhook.TransformConfig{Name: "envelope", Kwargs: json.RawMessage(`{"shape":"v2"}`)}
			if _, err := s.UpdateWebhook(ctx, all, h, false); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Publish(ctx, webhook.PublishRequest{EventType: "order-created", Payload: json.RawMessage(`{"n":2}`)}); err != nil {
				t.Fatal(err)
			}
			jobs, err := s.Claim(ctx, "node", 100, time.Minute)
			if err != nil || len(jobs) == 0 {
				t.Fatalf("claim: %d %v", len(jobs), err)
			}
			found := false
			for _, j := range jobs {
				tf := j.Webhook.Transform
				found = found || j.Webhook.ID == 1
				switch {
				case j.Webhook.ID == 1 && (tf == nil || tf.Name != "envelope" || string(tf.Kwargs) != `{"shape":"v2"}`):
					t.Errorf("hook 1's claimed transform: %+v", tf)
				case j.Webhook.ID != 1 && tf != nil:
					t.Errorf("hook %d's claimed transform: %+v", j.Webhook.ID, tf)
				}
			}
			if !found {
				t.Error("no event of hook 1 claimed")
			}
		})
	}
}
