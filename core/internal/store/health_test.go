package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// attemptAll claims every due event and completes each with the result mk
// returns for it (its State, Attempt and NextAttemptAt; the ids are
// filled in).
func attemptAll(t *testing.T, s *store.Store, mk func(j webhook.Job) webhook.Result) []webhook.Job {
	t.Helper()
	jobs, err := s.Claim(ctx, "n1", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]webhook.Result, len(jobs))
	for i, j := range jobs {
		r := mk(j)
		r.EventID, r.Lease, r.WebhookID, r.RetryCount = j.Event.ID, j.Lease, j.Webhook.ID, j.Event.RetryCount+1
		results[i] = r
	}
	if err := s.Complete(ctx, results); err != nil {
		t.Fatal(err)
	}
	return jobs
}

func hookNow(t *testing.T, s *store.Store, id int64) webhook.Webhook {
	t.Helper()
	h, err := s.Webhook(ctx, webhook.Scope{All: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// On SQLite time passes on the store's fake clock. On PostgreSQL health
// times are the database's clock, which a test cannot set: the node's
// clock stays real and time passes by moving the stored health times into
// the past (start moves with them).
func TestHealthFailureWindow(t *testing.T) {
	storetest.EachWith(t, store.Options{DisableAfter: 48 * time.Hour}, func(t *testing.T, s *store.Store) {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		pg := s.Dialect() == store.Postgres
		if pg {
			s.SetClock(func() time.Time { return time.Now().Truncate(time.Microsecond) })
		}
		now := func() time.Time {
			if pg {
				return time.Now().Truncate(time.Microsecond)
			}
			return clk.now()
		}
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		dead := storetest.Hook(t, s, u.ID, "e", "https://dead.example/")
		flaky := storetest.Hook(t, s, u.ID, "e", "https://flaky.example/")
		start := now()
		pass := func(d time.Duration) {
			if !pg {
				clk.add(d)
				return
			}
			if _, err := s.DB().ExecContext(ctx, "UPDATE webhooks SET failing_since = failing_since - ? * interval '1 microsecond', "+
				"disabled_at = disabled_at - ? * interval '1 microsecond'", d.Microseconds(), d.Microseconds()); err != nil {
				t.Fatal(err)
			}
			start = start.Add(-d)
		}
		near := func(a *time.Time, b time.Time) bool {
			if a == nil {
				return false
			}
			if pg { // disabled_at is the database's clock at the write
				return a.Sub(b).Abs() < time.Second
			}
			return a.Equal(b)
		}

		// Every 12 hours for 3 days: dead always fails; flaky fails but for
		// one success after a day.
		for step := range 7 {
			storetest.Publish(t, s, "e", fmt.Sprintf(`{"step":%d}`, step))
			at := now()
			attemptAll(t, s, func(j webhook.Job) webhook.Result {
				if j.Webhook.ID == flaky.ID && step == 2 && j.Event.RetryCount == 0 {
					return webhook.Result{State: webhook.StateDelivered, Attempt: webhook.Attempt{AttemptedAt: at, Status: 200}}
				}
				return webhook.Result{State: webhook.StatePending, NextAttemptAt: at.Add(time.Hour),
					Attempt: webhook.Attempt{AttemptedAt: at, Status: 500}}
			})
			d, f := hookNow(t, s, dead.ID), hookNow(t, s, flaky.ID)
			elapsed := time.Duration(step) * 12 * time.Hour
			// dead has failed since start: inactive once 48h have passed.
			if wantActive := elapsed < 48*time.Hour; d.IsActive != wantActive {
				t.Fatalf("after %v: dead hook active = %v, want %v (%+v)", elapsed, d.IsActive, wantActive, d)
			}
			if !f.IsActive {
				t.Fatalf("after %v: the hook with a success at 24h was deactivated: %+v", elapsed, f)
			}
			if step == 2 && f.FailingSince != nil && !f.FailingSince.After(start.Add(24*time.Hour)) {
				t.Fatalf("success at 24h did not reset failing_since: %v", f.FailingSince)
			}
			if !near(d.FailingSince, start) {
				t.Fatalf("dead hook failing_since = %v, want %v", d.FailingSince, start)
			}
			pass(12 * time.Hour)
		}
		d := hookNow(t, s, dead.ID)
		if d.DisabledReason != "every delivery failed for 2 days" || !near(d.DisabledAt, start.Add(48*time.Hour)) {
			t.Fatalf("dead hook: reason %q at %v", d.DisabledReason, d.DisabledAt)
		}
		// No new events fan out to it; the owner re-enables it: a clean
		// slate and a full window again.
		d.IsActive = true
		d, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, d, true)
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsActive || d.DisabledReason != "" || d.DisabledAt != nil || d.FailingSince != nil {
			t.Fatalf("re-enabled hook: %+v", d)
		}
	})
}

// Nodes sharing a PostgreSQL database with skewed clocks: a node 2 hours
// behind writes a hook's first failure, a node on time a second one; with
// delivery.disable_after 1h the hook has failed for seconds, not 2 hours,
// and stays active: health times are the database's clock.
func TestHealthWindowAcrossSkewedNodes(t *testing.T) {
	storetest.EachWith(t, store.Options{DisableAfter: time.Hour}, func(t *testing.T, s *store.Store) {
		if s.Dialect() != store.Postgres {
			t.Skip("SQLite is a single process: one clock")
		}
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		h := storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		for _, skew := range []time.Duration{-2 * time.Hour, 0} {
			node := func() time.Time { return time.Now().Add(skew) }
			s.SetClock(node)
			storetest.Publish(t, s, "e", `{}`)
			at := node()
			attemptAll(t, s, func(j webhook.Job) webhook.Result {
				return webhook.Result{State: webhook.StatePending, NextAttemptAt: at.Add(time.Hour),
					Attempt: webhook.Attempt{AttemptedAt: at, Status: 500}}
			})
		}
		s.SetClock(time.Now)
		got := hookNow(t, s, h.ID)
		if !got.IsActive || got.FailingSince == nil || time.Since(*got.FailingSince).Abs() > time.Minute {
			t.Fatalf("hook %+v: want active, failing since about now", got)
		}
	})
}

// Within one batch of a skewed node, a failure followed by a success
// leaves the hook healthy: both times are moved onto the database's clock
// before they are compared (the success's time was not, so a node 2 h
// behind left failing_since set after its own success).
func TestHealthBatchOfASkewedNode(t *testing.T) {
	storetest.EachWith(t, store.Options{DisableAfter: time.Hour}, func(t *testing.T, s *store.Store) {
		if s.Dialect() != store.Postgres {
			t.Skip("SQLite is a single process: one clock")
		}
		for _, skew := range []time.Duration{-2 * time.Hour, 2 * time.Hour} {
			u, _ := storetest.User(t, s, fmt.Sprint("u", skew), webhook.RoleUser)
			h := storetest.Hook(t, s, u.ID, "e", "https://a.example/"+fmt.Sprint(skew.Hours()))
			node := func() time.Time { return time.Now().Add(skew) }
			s.SetClock(node)
			storetest.Publish(t, s, "e", `{}`)
			storetest.Publish(t, s, "e", `{}`)
			at := node()
			n := 0
			attemptAll(t, s, func(j webhook.Job) webhook.Result {
				n++
				if n == 1 { // a failure a minute before the success
					return webhook.Result{State: webhook.StatePending, NextAttemptAt: at.Add(time.Hour),
						Attempt: webhook.Attempt{AttemptedAt: at.Add(-time.Minute), Status: 500}}
				}
				return webhook.Result{State: webhook.StateDelivered, NextAttemptAt: at,
					Attempt: webhook.Attempt{AttemptedAt: at, Status: 204}}
			})
			s.SetClock(time.Now)
			if got := hookNow(t, s, h.ID); !got.IsActive || got.FailingSince != nil {
				t.Errorf("skew %s: hook %+v: want active and healthy after the later success", skew, got)
			}
			if _, err := s.DB().ExecContext(ctx, "DELETE FROM webhook_events"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestHealthGoneAndOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) { // DisableAfter 0: only 410 deactivates
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.SetClock(clk.now)
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		gone := storetest.Hook(t, s, u.ID, "e", "https://gone.example/")
		failing := storetest.Hook(t, s, u.ID, "e", "https://failing.example/")
		for range 3 {
			storetest.Publish(t, s, "e", `{}`)
		}
		at := clk.now()
		attemptAll(t, s, func(j webhook.Job) webhook.Result {
			status := 500
			if j.Webhook.ID == gone.ID {
				status = 410
			}
			return webhook.Result{State: webhook.StateGivenUp, Attempt: webhook.Attempt{AttemptedAt: at, Status: status}}
		})
		g := hookNow(t, s, gone.ID)
		if g.IsActive || g.DisabledReason != store.ReasonGone || g.DisabledAt == nil {
			t.Fatalf("410 hook: %+v", g)
		}
		clk.add(1000 * time.Hour)
		storetest.Publish(t, s, "e", `{}`)
		at = clk.now()
		attemptAll(t, s, func(j webhook.Job) webhook.Result {
			return webhook.Result{State: webhook.StatePending, Attempt: webhook.Attempt{AttemptedAt: at, Status: 500}}
		})
		if f := hookNow(t, s, failing.ID); !f.IsActive || f.FailingSince == nil {
			t.Fatalf("with disable_after 0 a failing hook must stay active: %+v", f)
		}

		// A result that sent no request (WebhookID 0) leaves health alone.
		ev := storetest.Publish(t, s, "e", `{}`)[0]
		jobs, _ := s.ClaimEvents(ctx, "n1", []int64{ev.ID}, time.Minute)
		if len(jobs) != 1 {
			t.Fatalf("claimed %d", len(jobs))
		}
		if err := s.Complete(ctx, []webhook.Result{{EventID: ev.ID, Lease: jobs[0].Lease, RetryCount: 1, State: webhook.StateGivenUp,
			Attempt: webhook.Attempt{AttemptedAt: at, Status: 410}}}); err != nil {
			t.Fatal(err)
		}
		if f := hookNow(t, s, failing.ID); !f.IsActive {
			t.Fatalf("a result without a hook id deactivated the hook: %+v", f)
		}

		// The owner's deactivation is recorded as such, and a stale
		// automatic reason does not overwrite it.
		if err := s.DeactivateWebhook(ctx, webhook.Scope{All: true}, failing.ID); err != nil {
			t.Fatal(err)
		}
		if f := hookNow(t, s, failing.ID); f.IsActive || f.DisabledReason != store.ReasonOwner {
			t.Fatalf("deactivated by owner: %+v", f)
		}
		// PATCH is_active=false on an active hook, too.
		g.IsActive = true
		if g, _ = s.UpdateWebhook(ctx, webhook.Scope{All: true}, g, true); !g.IsActive || g.DisabledReason != "" {
			t.Fatalf("re-enabled: %+v", g)
		}
		g.IsActive = false
		if g, _ = s.UpdateWebhook(ctx, webhook.Scope{All: true}, g, true); g.IsActive || g.DisabledReason != store.ReasonOwner {
			t.Fatalf("disabled by update: %+v", g)
		}
	})
}

// A stale result (the lease went to another node) does not count for the
// hook: that node's result does.
func TestHealthIgnoresStaleResults(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "a", webhook.RoleUser)
		h := storetest.Hook(t, s, u.ID, "e", "https://a.example/")
		ev := storetest.Publish(t, s, "e", `{}`)[0]
		if _, err := s.Claim(ctx, "n1", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		err := s.Complete(ctx, []webhook.Result{{EventID: ev.ID, Lease: "someone-else/0", WebhookID: h.ID, RetryCount: 1,
			State: webhook.StateGivenUp, Attempt: webhook.Attempt{AttemptedAt: time.Now(), Status: 410}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := hookNow(t, s, h.ID); !got.IsActive || got.FailingSince != nil {
			t.Fatalf("stale result changed the hook: %+v", got)
		}
	})
}

// TestUpdateAfterDeactivationKeepsItInactive: an update that read the hook
// while it was active and does not set is_active (a PATCH of other fields)
// does not undo a deactivation that came in between — the lost update
// that re-enabled hooks the health check had just disabled.
func TestUpdateAfterDeactivationKeepsItInactive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u, _ := storetest.User(t, s, "u", webhook.RoleUser)
		read := storetest.Hook(t, s, u.ID, "e", "https://gone.example/")
		if err := s.DeactivateWebhook(ctx, webhook.Scope{All: true}, read.ID); err != nil {
			t.Fatal(err)
		}
		read.Callback = "cb" // the PATCH, applied to what was read before
		got, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, read, false)
		if err != nil {
			t.Fatal(err)
		}
		if got.IsActive || got.DisabledReason != store.ReasonOwner || got.DisabledAt == nil || got.Callback != "cb" {
			t.Fatalf("after an update without is_active: %+v", got)
		}
		// Setting is_active is what re-enables it.
		if got, err = s.UpdateWebhook(ctx, webhook.Scope{All: true}, read, true); err != nil || !got.IsActive || got.DisabledReason != "" {
			t.Fatalf("after is_active true: %+v, %v", got, err)
		}
	})
}
