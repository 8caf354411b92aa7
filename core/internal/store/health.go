package store

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Endpoint health. Complete keeps, for each hook of a batch, failing_since:
// the time of the first failed attempt since the hook's last successful
// one (NULL while healthy). In the same transaction it deactivates a hook
// that answered 410 Gone, or whose attempts have all failed for
// Options.DisableAfter, storing the reason. The window is measured between
// attempt times, never against "now". On PostgreSQL, which several nodes
// share, each attempt's time is first moved onto the database's clock
// (pgAttemptClock), so a node whose clock runs behind cannot make a hook
// look failing for longer than it has; SQLite is one process, one clock.
//
// The hook row is written only when something changes (a first failure, a
// first success after failures, a deactivation): a healthy hook's
// deliveries, and a failing hook's further failures, only read it. See
// docs/ENDPOINT_HEALTH.md.

// Reasons stored in disabled_reason.
const (
	ReasonGone  = "the target answered 410 Gone"
	ReasonOwner = "deactivated by its owner"
)

// reasonFailing is the reason of a hook deactivated for failing for d.
func reasonFailing(d time.Duration) string {
	return "every delivery failed for " + humanDuration(d)
}

// humanDuration writes d in the largest whole unit that fits: "5 days",
// "36 hours", "90 minutes", else Go's form.
func humanDuration(d time.Duration) string {
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// hookHealth sums up one hook's results in a batch.
type hookHealth struct {
	id int64
	// ok: some attempt succeeded.
	ok bool
	// failedAt is the earliest failure after the batch's last success (any
	// failure when none succeeded); nil when the last attempt succeeded.
	failedAt *time.Time
	// cutoff is the latest failure minus DisableAfter: a hook failing since
	// then or earlier has failed for the whole window. Nil when nothing
	// failed or DisableAfter is zero.
	cutoff *time.Time
	gone   bool
}

// groupHealth sums up the written results by hook, skipping those that
// sent no request (WebhookID 0). The PostgreSQL statement (pgComplete)
// does the same in SQL; keep them in step.
func groupHealth(results []webhook.Result, disableAfter time.Duration) []hookHealth {
	type acc struct {
		okAt, lastFail time.Time
		ok, failed     bool
		gone           bool
	}
	byHook := map[int64]*acc{}
	var order []int64
	for i := range results {
		r := &results[i]
		if r.WebhookID == 0 {
			continue
		}
		a := byHook[r.WebhookID]
		if a == nil {
			a = &acc{}
			byHook[r.WebhookID] = a
			order = append(order, r.WebhookID)
		}
		at := r.Attempt.AttemptedAt
		if r.State == webhook.StateDelivered {
			if !a.ok || at.After(a.okAt) {
				a.okAt = at
			}
			a.ok = true
		} else {
			if !a.failed || at.After(a.lastFail) {
				a.lastFail = at
			}
			a.failed = true
		}
		a.gone = a.gone || r.Attempt.Status == 410
	}
	out := make([]hookHealth, 0, len(order))
	for _, id := range order {
		a := byHook[id]
		h := hookHealth{id: id, ok: a.ok, gone: a.gone}
		for i := range results {
			r := &results[i]
			if r.WebhookID != id || r.State == webhook.StateDelivered {
				continue
			}
			at := r.Attempt.AttemptedAt.UTC()
			if a.ok && !at.After(a.okAt) {
				continue
			}
			if h.failedAt == nil || at.Before(*h.failedAt) {
				h.failedAt = &at
			}
		}
		if a.failed && disableAfter > 0 {
			c := a.lastFail.Add(-disableAfter).UTC()
			h.cutoff = &c
		}
		out = append(out, h)
	}
	return out
}

// healthExprs returns the SQL of the new failing_since, of "the failure
// window has passed" and of "deactivate now", over the hook row w
// (qualified as hook) and the batch summary v (columns ok, failed_at,
// cutoff, gone).
func healthExprs(hook, v string) (fs, window, disable string) {
	fs = fmt.Sprintf("(CASE WHEN %[2]s.ok THEN %[2]s.failed_at ELSE COALESCE(%[1]s.failing_since, %[2]s.failed_at) END)", hook, v)
	window = fmt.Sprintf("(%s.is_active AND %s <= %s.cutoff)", hook, fs, v)
	disable = fmt.Sprintf("(%[1]s.is_active AND (%[2]s.gone OR %[3]s <= %[2]s.cutoff))", hook, v, fs)
	return fs, window, disable
}

// healthSet is the SET, FROM and WHERE of the hook update, with the
// placeholders of the gone reason, the window reason and now written as
// %[1]s, %[2]s, %[3]s for the dialect to fill.
func healthSet(hook, from, v, distinct string) string {
	fs, window, disable := healthExprs(hook, v)
	return fmt.Sprintf(`SET failing_since = %[1]s,
		is_active = CASE WHEN %[3]s THEN FALSE ELSE %[4]s.is_active END,
		disabled_reason = CASE WHEN %[4]s.is_active AND %[5]s.gone THEN %%[1]s WHEN %[2]s THEN %%[2]s ELSE %[4]s.disabled_reason END,
		disabled_at = CASE WHEN %[3]s THEN %%[3]s ELSE %[4]s.disabled_at END`, fs, window, disable, hook, v) +
		fmt.Sprintf(" FROM %s WHERE %s.id = %s.id AND (%s %s %s.failing_since OR %s)", from, hook, v, fs, distinct, hook, disable)
}

// disabledColumns is what the hook update returns of each row it wrote:
// with "now" (the SQL of the update's disabled_at), whether this update
// deactivated it.
func disabledColumns(hook, now string) string {
	return fmt.Sprintf("%[1]s.id, %[1]s.is_active, %[1]s.failing_since, %[1]s.disabled_at, %[1]s.disabled_reason, "+
		"(%[1]s.disabled_at = %[2]s) AS disabled_now", hook, now)
}

// disabledRow is a row disabledColumns returns.
type disabledRow struct {
	ID             int64      `bun:"id"`
	IsActive       bool       `bun:"is_active"`
	FailingSince   *time.Time `bun:"failing_since"`
	DisabledAt     *time.Time `bun:"disabled_at"`
	DisabledReason string     `bun:"disabled_reason"`
	Now            bool       `bun:"disabled_now"`
}

// targets are the scan destinations of disabledColumns. disabled_now is
// NULL for a hook never deactivated (disabled_at NULL): false.
func (r *disabledRow) targets() []any {
	return []any{&r.ID, &r.IsActive, &r.FailingSince, &r.DisabledAt, &r.DisabledReason, nullFalse{&r.Now}}
}

// nullFalse scans a boolean, NULL as false.
type nullFalse struct{ b *bool }

func (n nullFalse) Scan(v any) error {
	var nb sql.NullBool
	err := nb.Scan(v)
	*n.b = nb.Bool
	return err
}

// deactivated keeps the rows the update deactivated: inactive, with the
// update's own disabled_at (an owner's deactivation has an earlier one).
func deactivated(rows []disabledRow) []webhook.HookDisabled {
	var out []webhook.HookDisabled
	for _, r := range rows {
		if r.IsActive || !r.Now || r.DisabledAt == nil {
			continue
		}
		d := webhook.HookDisabled{ID: r.ID, Reason: r.DisabledReason, DisabledAt: r.DisabledAt.UTC()}
		if r.FailingSince != nil {
			t := r.FailingSince.UTC()
			d.FailingSince = &t
		}
		out = append(out, d)
	}
	return out
}
