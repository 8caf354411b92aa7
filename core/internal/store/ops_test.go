package store_test

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// recordChanges records what Complete reports to s's OnChanges; the
// function returns it so far.
func recordChanges(s *store.Store) func() []webhook.Changes {
	var mu sync.Mutex
	var got []webhook.Changes
	s.OnChanges(func(c webhook.Changes) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	return func() []webhook.Changes {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// Complete reports to OnChanges the given-up results it wrote and the
// hooks it deactivated, and nothing for a stale result (another claim
// holds the event).
func TestCompleteReportsChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		changes := recordChanges(s)
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		gone := storetest.Hook(t, s, alice.ID, "order-created", "https://user:pw@a.example:8443/services/T0/B0/secret-token?key=k#f")
		storetest.Hook(t, s, alice.ID, "order-created", "https://a.example/fine")
		storetest.Publish(t, s, "order-created", `{"n":1}`)
		jobs, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(jobs) != 2 {
			t.Fatalf("claim: %d %v", len(jobs), err)
		}
		var results []webhook.Result
		var goneEvent int64
		for _, j := range jobs {
			if j.Webhook.ID == gone.ID {
				results = append(results, result(j, 410))
				goneEvent = j.Event.ID
			} else {
				results = append(results, result(j, 200))
			}
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		got := changes()
		if len(got) != 1 || len(got[0].GivenUp) != 1 || got[0].GivenUp[0].EventID != goneEvent ||
			len(got[0].Disabled) != 1 || got[0].Disabled[0].ID != gone.ID {
			t.Fatalf("changes %+v", got)
		}
		d := got[0].Disabled[0]
		if d.Reason != store.ReasonGone || d.DisabledAt.IsZero() || d.Last.Status != 410 {
			t.Errorf("disabled %+v", d)
		}
		subs, err := s.DisabledSubjects(ctx, []int64{gone.ID})
		want := []webhook.OpsSubject{{ID: gone.ID, HookID: gone.ID, Owner: "alice", EventType: "order-created",
			TargetURL: "https://a.example:8443"}}
		if err != nil || !reflect.DeepEqual(subs, want) {
			t.Errorf("disabled subjects %+v %v, want %+v", subs, err, want)
		}
		evs, err := s.GivenUpSubjects(ctx, []int64{goneEvent, 999999})
		if err != nil || len(evs) != 1 || evs[0].ID != goneEvent || evs[0].HookID != gone.ID || evs[0].Owner != "alice" ||
			len(evs[0].EventUUID) != 32 {
			t.Errorf("given-up subjects %+v %v", evs, err)
		}
		// The same results again are stale: the leases are gone.
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		if got := changes(); len(got) != 1 {
			t.Fatalf("stale results reported: %+v", got[1:])
		}
		for _, typ := range []string{"order-created", webhook.EventGivenUp} {
			ok, err := s.Subscribed(ctx, typ)
			if err != nil || ok != (typ == "order-created") {
				t.Errorf("subscribed to %s: %v %v", typ, ok, err)
			}
		}
	})
}

// One Complete of a large batch (more rows than a statement's old VALUES
// chunk) that holds, for every event, a stale result of an expired claim
// and the live one — sometimes the stale one first, sometimes the live one
// — as a node sends after a database outage: each event gets the live
// result only, the charts count every result, a hook that answered 410 is
// deactivated by the batch and reported once, and bodies with quotes,
// escapes and non-ASCII text are stored as sent.
func TestCompleteLargeBatchWithStaleResults(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		changes := recordChanges(s)
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		bob, _ := storetest.User(t, s, "bob", webhook.RoleUser)
		ok := storetest.Hook(t, s, alice.ID, "e", "https://a.example/ok")
		gone := storetest.Hook(t, s, alice.ID, "e", "https://a.example/gone")
		failing := storetest.Hook(t, s, bob.ID, "e", "https://b.example/")
		const published = 90 // 270 events
		for i := range published {
			storetest.Publish(t, s, "e", fmt.Sprintf(`{"n":%d}`, i))
		}
		stale, err := s.Claim(ctx, "n1", 1000, time.Minute)
		if err != nil || len(stale) != 3*published {
			t.Fatalf("first claim: %d, %v", len(stale), err)
		}
		elapse(t, s, 61*time.Second)
		live, err := s.Claim(ctx, "n1", 1000, time.Minute)
		if err != nil || len(live) != len(stale) {
			t.Fatalf("second claim: %d, %v", len(live), err)
		}
		for i := 1; i < len(live); i++ {
			if live[i].Event.ID <= live[i-1].Event.ID {
				t.Fatalf("claimed out of due order: event %d after %d", live[i].Event.ID, live[i-1].Event.ID)
			}
		}
		body := "he said \"hi\"\n\t\\ \x01 ü 😀 </x>"
		var results []webhook.Result
		want := map[int64]webhook.Result{}
		for i, j := range live {
			if j.Event.ID != stale[i].Event.ID || j.Webhook.ID != stale[i].Webhook.ID || string(j.Event.Payload) == "" {
				t.Fatalf("job %d: %+v, first claimed %+v", i, j, stale[i])
			}
			var r webhook.Result
			switch j.Webhook.ID {
			case ok.ID:
				r = result(j, 200)
			case gone.ID:
				r = result(j, 410)
			case failing.ID:
				r = result(j, 503)
				if i%2 == 0 { // no answer at all
					r.Attempt.Status, r.Attempt.Error = 0, "connection refused"
				}
			}
			r.Attempt.Body = fmt.Sprintf("%s %d", body, i)
			want[j.Event.ID] = r
			old := result(stale[i], 200)
			if i%2 == 0 {
				results = append(results, old, r)
			} else {
				results = append(results, r, old)
			}
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		for id, r := range want {
			j, err := s.Event(ctx, webhook.Scope{All: true}, fmt.Sprint(id))
			if err != nil {
				t.Fatal(err)
			}
			e := j.Event
			var status *int
			if r.Attempt.Status != 0 {
				status = &r.Attempt.Status
			}
			if e.State != r.State || e.Delivered != (r.State == webhook.StateDelivered) || e.RetryCount != 1 ||
				!reflect.DeepEqual(e.ResponseHTTPStatus, status) || e.ResponseContent != r.Attempt.Body || len(e.Attempts) != 1 {
				t.Fatalf("event %d: %+v, want the result %+v", id, e, r)
			}
			a := e.Attempts[0]
			if a.Status != r.Attempt.Status || a.Body != r.Attempt.Body || a.Error != r.Attempt.Error ||
				!a.AttemptedAt.Equal(r.Attempt.AttemptedAt.Truncate(time.Microsecond)) {
				t.Fatalf("event %d: attempt %+v, want %+v", id, a, r.Attempt)
			}
		}
		// Written once, reported once: the gone hook's events given up and
		// the hook deactivated.
		got := changes()
		if len(got) != 1 || len(got[0].GivenUp) != published || len(got[0].Disabled) != 1 || got[0].Disabled[0].ID != gone.ID ||
			got[0].Disabled[0].Reason != store.ReasonGone {
			t.Fatalf("changes %+v", got)
		}
		for _, g := range got[0].GivenUp {
			if g.WebhookID != gone.ID || want[g.EventID].Lease != g.Lease {
				t.Fatalf("given up %+v", g)
			}
		}
		if h := hookNow(t, s, gone.ID); h.IsActive || h.DisabledReason != store.ReasonGone {
			t.Fatalf("gone hook %+v", h)
		}
		if h := hookNow(t, s, failing.ID); !h.IsActive || h.FailingSince == nil {
			t.Fatalf("failing hook %+v", h)
		}
		if h := hookNow(t, s, ok.ID); !h.IsActive || h.FailingSince != nil {
			t.Fatalf("healthy hook %+v", h)
		}
		// The charts count every result, the stale ones too.
		rollups, err := s.Rollups(ctx, webhook.Scope{All: true}, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if sum, n := sumRollups(rollups), int64(published); sum.Attempts != 6*n || sum.Delivered != 4*n || sum.Failed != n || sum.GivenUp != n {
			t.Fatalf("rollups %+v, want %d attempts: %d delivered, %d failed, %d given up", sum, 6*n, 4*n, n, n)
		}
		success, err := s.HookSuccess(ctx, []int64{ok.ID, gone.ID, failing.ID}, time.Now().Add(-time.Hour))
		n := int64(2 * published)
		wantSuccess := map[int64]webhook.HookSuccess{ok.ID: {Attempts: n, Delivered: n},
			gone.ID: {Attempts: n, Delivered: n / 2}, failing.ID: {Attempts: n, Delivered: n / 2}}
		if err != nil || !reflect.DeepEqual(success, wantSuccess) {
			t.Fatalf("hook success %+v %v, want %+v", success, err, wantSuccess)
		}
		// The same batch again is stale throughout: nothing is written or
		// reported, and the charts count it.
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		if got := changes(); len(got) != 1 {
			t.Fatalf("stale batch reported %+v", got[1:])
		}
		if s.RollupFailures() != 0 {
			t.Fatalf("%d rollup failures", s.RollupFailures())
		}
	})
}

// HookSuccess sums each hook's requests of the last hours from the
// rollups Complete adds to; rows past two days go.
func TestHookSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		alice, _ := storetest.User(t, s, "alice", webhook.RoleUser)
		a := storetest.Hook(t, s, alice.ID, "order-created", "https://a.example/1")
		b := storetest.Hook(t, s, alice.ID, "order-created", "https://a.example/2")
		for i := range 3 {
			storetest.Publish(t, s, "order-created", `{"n":`+string(rune('0'+i))+`}`)
		}
		jobs, err := s.Claim(ctx, "n1", 10, time.Minute)
		if err != nil || len(jobs) != 6 {
			t.Fatalf("claim: %d %v", len(jobs), err)
		}
		var results []webhook.Result
		failedB := 0
		for _, j := range jobs {
			status := 200
			if j.Webhook.ID == b.ID && failedB < 2 {
				status, failedB = 500, failedB+1
			}
			results = append(results, result(j, status))
		}
		if err := s.Complete(ctx, results); err != nil {
			t.Fatal(err)
		}
		start := time.Now().Add(-time.Hour)
		got, err := s.HookSuccess(ctx, []int64{a.ID, b.ID, 424242}, start)
		want := map[int64]webhook.HookSuccess{a.ID: {Attempts: 3, Delivered: 3}, b.ID: {Attempts: 3, Delivered: 1}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("hook success %+v %v, want %+v", got, err, want)
		}
		s.SetClock(func() time.Time { return time.Now().Add(49 * time.Hour) })
		defer s.SetClock(time.Now)
		storetest.Publish(t, s, "order-created", `{"n":9}`)
		jobs, _ = s.Claim(ctx, "n1", 10, time.Minute)
		if len(jobs) == 0 {
			t.Fatal("nothing to claim two days later")
		}
		if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 200)}); err != nil {
			t.Fatal(err)
		}
		// Only the new hour's request is left.
		left, _ := s.HookSuccess(ctx, []int64{a.ID, b.ID}, start)
		if want := (map[int64]webhook.HookSuccess{jobs[0].Webhook.ID: {Attempts: 1, Delivered: 1}}); !reflect.DeepEqual(left, want) {
			t.Fatalf("after two days: %+v, want %+v", left, want)
		}
		if s.RollupFailures() != 0 {
			t.Fatalf("%d rollup failures", s.RollupFailures())
		}
	})
}

// Migration 011 adds hook_rollups to a database of an earlier release in
// place: its rows are all there and the rollups fill.
func TestHookRollupsMigrateLegacy(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := migrateLegacy(t, backend, 8)
			if got, err := s.HookSuccess(ctx, []int64{1}, time.Now().Add(-time.Hour)); err != nil || len(got) != 0 {
				t.Fatalf("hook success on a migrated database: %v %v", got, err)
			}
			jobs, err := s.Claim(ctx, "n1", 100, time.Minute)
			if err != nil || len(jobs) == 0 {
				t.Fatalf("claim on a migrated database: %d %v", len(jobs), err)
			}
			if err := s.Complete(ctx, []webhook.Result{result(jobs[0], 200)}); err != nil {
				t.Fatal(err)
			}
			got, err := s.HookSuccess(ctx, []int64{jobs[0].Webhook.ID}, time.Now().Add(-time.Hour))
			if err != nil || got[jobs[0].Webhook.ID] != (webhook.HookSuccess{Attempts: 1, Delivered: 1}) {
				t.Fatalf("hook success after a delivery: %v %v", got, err)
			}
		})
	}
}

// migrateLegacy opens a database of the previous release migrated up to
// before, migrates it the rest of the way and checks that its events are
// untouched.
func migrateLegacy(t *testing.T, backend string, before int) *store.Store {
	t.Helper()
	s, err := store.Open(ctx, storetest.Legacy(t, backend), store.Options{Sealer: storetest.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateTo(ctx, before); err != nil {
		t.Fatal(err)
	}
	old := rawEvents(t, s)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if now := rawEvents(t, s); !reflect.DeepEqual(old, now) {
		t.Fatalf("events changed:\n%v\n%v", old, now)
	}
	return s
}
