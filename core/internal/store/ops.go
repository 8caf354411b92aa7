package store

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Operational events (webhook.OpsEventTypes): Complete tells the function
// set with OnChanges what its write changed — the events it gave up, the
// hooks it deactivated — and only when it wrote them, so exactly one node
// reports each change. The reader looks the rest up (GivenUpSubjects,
// DisabledSubjects) only when a hook subscribes (Subscribed).

// changesSink holds the function OnChanges set.
type changesSink struct {
	fn atomic.Pointer[func(webhook.Changes)]
}

// OnChanges makes Complete call fn, synchronously after each write that
// gave events up or deactivated hooks: fn must only queue them.
func (s *Store) OnChanges(fn func(webhook.Changes)) { s.changes.fn.Store(&fn) }

// completed is what a driver's complete reports: the written results
// that gave their event up and the hooks the write deactivated.
type completed struct {
	givenUp  []webhook.Result
	disabled []webhook.HookDisabled
}

// report hands c to the sink, each deactivated hook with the batch's
// latest attempt to it.
func (s *Store) report(results []webhook.Result, c completed) {
	fn := s.changes.fn.Load()
	if fn == nil || len(c.givenUp)+len(c.disabled) == 0 {
		return
	}
	for i := range c.disabled {
		d := &c.disabled[i]
		for _, r := range results {
			if r.WebhookID == d.ID && !r.Attempt.AttemptedAt.Before(d.Last.AttemptedAt) {
				d.Last = r.Attempt
			}
		}
	}
	(*fn)(webhook.Changes{GivenUp: c.givenUp, Disabled: c.disabled})
}

// Subscribed reports whether an active hook subscribes to eventType.
func (s *Store) Subscribed(ctx context.Context, eventType string) (_ bool, err error) {
	defer markUnavailable(&err)
	ok, err := s.db.NewSelect().Model((*webhookRow)(nil)).
		Where("event_type = ?", eventType).Where("is_active").Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("subscribed to %q: %w", eventType, err)
	}
	return ok, nil
}

// opsSubjectRow is a row of GivenUpSubjects and DisabledSubjects.
type opsSubjectRow struct {
	ID        int64  `bun:"id"`
	HookID    int64  `bun:"hook_id"`
	Owner     string `bun:"owner"`
	EventType string `bun:"event_type"`
	TargetURL string `bun:"target_url"`
	EventUUID string `bun:"uuid"`
}

// GivenUpSubjects returns the events of ids that still exist with their
// hook and its owner (ID is the event's).
func (s *Store) GivenUpSubjects(ctx context.Context, ids []int64) ([]webhook.OpsSubject, error) {
	return s.opsSubjects(ctx, `SELECT e.id, e.webhook_id AS hook_id, u.username AS owner, e.event_type, w.target_url, e.uuid
		FROM webhook_events e JOIN webhooks w ON w.id = e.webhook_id JOIN users u ON u.id = w.user_id
		WHERE e.id IN (?) ORDER BY e.id`, ids)
}

// DisabledSubjects returns the hooks of ids with their owner.
func (s *Store) DisabledSubjects(ctx context.Context, ids []int64) ([]webhook.OpsSubject, error) {
	return s.opsSubjects(ctx, `SELECT w.id, w.id AS hook_id, u.username AS owner, w.event_type, w.target_url, '' AS uuid
		FROM webhooks w JOIN users u ON u.id = w.user_id WHERE w.id IN (?) ORDER BY w.id`, ids)
}

func (s *Store) opsSubjects(ctx context.Context, query string, ids []int64) (_ []webhook.OpsSubject, err error) {
	defer markUnavailable(&err)
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []opsSubjectRow
	if err := s.db.NewRaw(query, bun.List(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("operational event subjects: %w", err)
	}
	out := make([]webhook.OpsSubject, len(rows))
	for i, r := range rows {
		out[i] = webhook.OpsSubject{ID: r.ID, HookID: r.HookID, Owner: r.Owner, EventType: r.EventType,
			TargetURL: webhook.URLOrigin(r.TargetURL), EventUUID: r.EventUUID}
	}
	return out, nil
}
