package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The methods below let an importer (whisperer import dj-whisperer) carry
// rows from another system over unchanged: tokens whose keys the other
// system issued, hooks and events with their own times, states and uuids.
// Each is idempotent on a natural key (the token's hash, the hook's user,
// target_url and event_type, the event's uuid), so a rerun writes nothing
// twice and needs no bookkeeping table.

// TokenOwner returns the user id of the live or revoked token key, or
// webhook.ErrNotFound.
func (s *Store) TokenOwner(ctx context.Context, key string) (int64, error) {
	var id int64
	err := s.db.NewSelect().Model((*tokenRow)(nil)).Column("user_id").Where("key_hash = ?", hashKey(key)).Scan(ctx, &id)
	if err != nil {
		return 0, fmt.Errorf("token owner: %w", notFound(err))
	}
	return id, nil
}

// ImportToken stores key, issued elsewhere, as a token of userID created
// at created (revoked then too when revoked), so a client keeps sending
// it. It reports false when the key is stored already for that user; for
// another user it is a *webhook.ConflictError.
func (s *Store) ImportToken(ctx context.Context, userID int64, key string, created time.Time, revoked bool) (bool, error) {
	row := &tokenRow{UserID: userID, KeyHash: hashKey(key), Prefix: key[:min(8, len(key))], CreatedAt: created.UTC()}
	if revoked {
		at := created.UTC()
		row.RevokedAt = &at
	}
	res, err := s.db.NewInsert().Model(row).On("CONFLICT (key_hash) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("import token: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	owner, err := s.TokenOwner(ctx, key)
	if err != nil {
		return false, err
	}
	if owner != userID {
		return false, &webhook.ConflictError{Detail: fmt.Sprintf(
			"the token starting %q belongs to another user (id %d)", row.Prefix, owner)}
	}
	return false, nil
}

// HookID returns the id of userID's hook for targetURL and eventType (the
// unique key), or webhook.ErrNotFound.
func (s *Store) HookID(ctx context.Context, userID int64, targetURL, eventType string) (int64, error) {
	var id int64
	err := s.db.NewSelect().Model((*webhookRow)(nil)).Column("id").
		Where("user_id = ?", userID).Where("target_url = ?", targetURL).Where("event_type = ?", eventType).
		Scan(ctx, &id)
	if err != nil {
		return 0, fmt.Errorf("webhook of user %d for %s: %w", userID, eventType, notFound(err))
	}
	return id, nil
}

// ImportWebhook inserts w with its own CreatedAt and ModifiedAt. An
// inactive w gets disabledReason (ReasonOwner when empty) and is disabled
// since its ModifiedAt. Secrets are sealed as CreateWebhook seals them. A
// hook with w's user, target_url and event_type is webhook.ErrAlreadyExists.
func (s *Store) ImportWebhook(ctx context.Context, w webhook.Webhook, disabledReason string) (webhook.Webhook, error) {
	row, err := webhookToRow(&w)
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("import webhook: %w", err)
	}
	row.ID = 0
	row.CreatedAt, row.ModifiedAt = w.CreatedAt.UTC(), w.ModifiedAt.UTC()
	if !w.IsActive {
		at := row.ModifiedAt
		row.DisabledReason, row.DisabledAt = cmp.Or(disabledReason, ReasonOwner), &at
	}
	if err := s.insertWebhook(ctx, row); err != nil {
		return webhook.Webhook{}, fmt.Errorf("import webhook: %w", err)
	}
	return row.domain(s.sealer), nil
}

// ExistingEvents returns which of uuids (32 hex digits) are stored.
func (s *Store) ExistingEvents(ctx context.Context, uuids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(uuids) == 0 {
		return out, nil
	}
	var found []string
	for start := 0; start < len(uuids); start += 500 {
		chunk := uuids[start:min(start+500, len(uuids))]
		found = found[:0]
		if err := s.db.NewSelect().Model((*eventRow)(nil)).Column("uuid").
			Where("uuid IN (?)", bun.List(chunk)).Scan(ctx, &found); err != nil {
			return nil, fmt.Errorf("existing events: %w", err)
		}
		for _, u := range found {
			out[u] = true
		}
	}
	return out, nil
}

// ImportEvents stores events published elsewhere, in one transaction:
// each with a message of its own (Payload), its UUID, State, counts, last
// response, times and Attempts. A pending event is due now. Events whose
// uuid is stored already are left as they are; it returns how many it
// inserted.
func (s *Store) ImportEvents(ctx context.Context, evs []webhook.Event) (int, error) {
	n := 0
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		n = 0
		pending := false
		now := micros(s.now())
		for i := range evs {
			ev := &evs[i]
			exists, err := tx.NewSelect().Model((*eventRow)(nil)).Where("uuid = ?", ev.UUID).Exists(ctx)
			if err != nil {
				return err
			}
			if exists {
				continue
			}
			payload, err := compactJSON(ev.Payload)
			if err != nil {
				return fmt.Errorf("event %s: payload: %w", ev.UUID, err)
			}
			created, modified := ev.CreatedAt.UTC(), ev.ModifiedAt.UTC()
			msg := &messageRow{EventType: ev.EventType, Payload: string(payload), CreatedAt: created}
			if _, err := tx.NewInsert().Model(msg).Returning("id").Exec(ctx); err != nil {
				return err
			}
			due := micros(modified)
			if ev.State == webhook.StatePending {
				due, pending = now, true
			}
			row := &eventRow{
				UUID: ev.UUID, MessageID: msg.ID, WebhookID: ev.WebhookID, UserID: ev.UserID,
				EventType: ev.EventType, State: string(ev.State), Delivered: ev.Delivered,
				RetryCount: ev.RetryCount, RetryBase: ev.RetryBase, NextAttemptAt: due,
				ResponseHTTPStatus: ev.ResponseHTTPStatus, ResponseContent: ev.ResponseContent,
				CreatedAt: created, ModifiedAt: modified,
			}
			if _, err := tx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
				return err
			}
			if len(ev.Attempts) > 0 {
				// Attempts come newest first; ids must grow with time.
				rows := make([]attemptRow, len(ev.Attempts))
				for j, a := range ev.Attempts {
					rows[len(rows)-1-j] = attemptRow{EventID: row.ID, AttemptedAt: a.AttemptedAt.UTC(),
						DurationUS: a.Duration.Microseconds(), Status: a.Status, Body: a.Body, Error: a.Error}
				}
				if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
					return err
				}
			}
			n++
		}
		if pending {
			return s.drv.notify(ctx, tx, notifyChannel)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import events: %w", err)
	}
	return n, nil
}
