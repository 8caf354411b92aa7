package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

func applyScope(sc webhook.Scope, q *bun.SelectQuery, column string) *bun.SelectQuery {
	if sc.All {
		return q
	}
	return q.Where("? = ?", bun.Ident(column), sc.UserID)
}

// paginate applies p to q on column id and returns the limit to ask for.
func paginate(q *bun.SelectQuery, p webhook.Page, id string) (*bun.SelectQuery, int) {
	limit := p.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	switch {
	case p.After > 0:
		q = q.Where("? > ?", bun.Ident(id), p.After).OrderExpr("? ASC", bun.Ident(id))
	case p.Before > 0:
		q = q.Where("? < ?", bun.Ident(id), p.Before).OrderExpr("? DESC", bun.Ident(id))
	default:
		q = q.OrderExpr("? DESC", bun.Ident(id))
	}
	return q.Limit(int64(limit + 1)), limit
}

// pageInfo trims the extra row fetched to detect more, restores newest-first
// order, and reports the neighbours.
func pageInfo[T any](rows []T, p webhook.Page, limit int) ([]T, webhook.PageInfo) {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if p.After > 0 {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
		return rows, webhook.PageInfo{HasNext: true, HasPrev: more}
	}
	return rows, webhook.PageInfo{HasNext: more, HasPrev: p.Before > 0}
}

// CreateWebhook inserts w (ID and times are set). A second hook with the
// same user, target_url and event_type is webhook.ErrAlreadyExists.
func (s *Store) CreateWebhook(ctx context.Context, w webhook.Webhook) (_ webhook.Webhook, err error) {
	defer markUnavailable(&err)
	now := s.now().UTC()
	w.CreatedAt, w.ModifiedAt = now, now
	row, err := webhookToRow(&w)
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	row.ID = 0
	if !w.IsActive {
		row.DisabledReason, row.DisabledAt = ReasonOwner, &now
	}
	if err := s.insertWebhook(ctx, row); err != nil {
		return webhook.Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	return row.domain(s.sealer), nil
}

// insertWebhook inserts row and seals its secrets; a second hook with the
// same user, target_url and event_type is webhook.ErrAlreadyExists. Sealed
// values are bound
// to the row id, known only after the insert: the insert carries no secret
// (never in clear, not even in the WAL) and an update in the same
// transaction adds them sealed.
func (s *Store) insertWebhook(ctx context.Context, row *webhookRow) error {
	defer s.filtered.hooksChanged()
	secrets := row.secrets()
	if s.sealer != nil {
		row.setSecrets(secretCols{headers: "{}", config: "{}"})
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
			return err
		}
		if s.sealer == nil {
			return nil
		}
		row.setSecrets(secrets)
		if err := row.sealSecrets(s.sealer); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Model(row).
			Column("secret_key", "previous_secret_key", "additional_headers", "config", "secrets_key_id").
			WherePK().Exec(ctx)
		return err
	})
	if isUniqueViolation(err) {
		return webhook.ErrAlreadyExists
	}
	return err
}

// CountWebhooks returns how many hooks, active or not, userID has: what
// limits.hooks_per_user bounds.
func (s *Store) CountWebhooks(ctx context.Context, userID int64) (_ int, err error) {
	defer markUnavailable(&err)
	n, err := s.db.NewSelect().Model((*webhookRow)(nil)).Where("user_id = ?", userID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count webhooks of user %d: %w", userID, err)
	}
	return int(n), nil
}

// Webhook returns the hook id if sc may see it; otherwise
// webhook.ErrNotFound, so a caller cannot learn that another user's hook
// exists.
func (s *Store) Webhook(ctx context.Context, sc webhook.Scope, id int64) (_ webhook.Webhook, err error) {
	defer markUnavailable(&err)
	var row webhookRow
	q := applyScope(sc, s.db.NewSelect().Model(&row).Where("id = ?", id), "user_id")
	if err := q.Scan(ctx); err != nil {
		return webhook.Webhook{}, fmt.Errorf("webhook %d: %w", id, notFound(err))
	}
	return row.domain(s.sealer), nil
}

// UpdateWebhook stores every field of w (a PUT; PATCH merges before
// calling) but the read-only health fields, and is_active only when
// setActive: a request that does not mention is_active must not undo an
// automatic deactivation that happened after the caller read the hook. The
// uniqueness rule applies as on create. Activating an inactive hook clears
// its disabled reason and failure record, so it gets a full disable_after
// window again; deactivating an active one records that its owner did.
func (s *Store) UpdateWebhook(ctx context.Context, sc webhook.Scope, w webhook.Webhook, setActive bool) (_ webhook.Webhook, err error) {
	defer s.filtered.hooksChanged()
	defer markUnavailable(&err)
	now := s.now().UTC()
	w.ModifiedAt = now
	if _, ok := w.PreviousSecret(now); !ok {
		// A rotation's overlap is over: the old secret goes.
		w.PreviousSecretKey, w.PreviousSecretUntil = "", nil
	}
	row, err := webhookToRow(&w)
	if err == nil {
		err = row.sealSecrets(s.sealer)
	}
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("update webhook: %w", err)
	}
	// The right-hand sides see the row as it was, is_active included.
	same := "NOT ? OR ? = is_active" // is_active does not change
	q := s.db.NewUpdate().Model(row).
		Column("target_url", "event_type", "secret_key", "callback",
			"retry_countdown_config", "additional_headers", "config", "filter", "transform", "modified_at",
			"previous_secret_key", "previous_secret_until", "secrets_key_id").
		Set("is_active = CASE WHEN ? THEN ? ELSE is_active END", setActive, w.IsActive).
		Set("disabled_reason = CASE WHEN "+same+" THEN disabled_reason WHEN ? THEN '' ELSE ? END",
			setActive, w.IsActive, w.IsActive, ReasonOwner).
		Set("disabled_at = CASE WHEN "+same+" THEN disabled_at WHEN ? THEN NULL ELSE ? END",
			setActive, w.IsActive, w.IsActive, now).
		Set("failing_since = CASE WHEN ? AND ? AND NOT is_active THEN NULL ELSE failing_since END", setActive, w.IsActive).
		WherePK()
	if !sc.All {
		q = q.Where("user_id = ?", sc.UserID)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		if isUniqueViolation(err) {
			return webhook.Webhook{}, webhook.ErrAlreadyExists
		}
		return webhook.Webhook{}, fmt.Errorf("update webhook %d: %w", w.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return webhook.Webhook{}, fmt.Errorf("webhook %d: %w", w.ID, webhook.ErrNotFound)
	}
	return s.Webhook(ctx, sc, w.ID)
}

// DeactivateWebhook sets is_active to false, as dj-whisperer's DELETE does,
// with the reason ReasonOwner. A hook already inactive keeps its reason.
func (s *Store) DeactivateWebhook(ctx context.Context, sc webhook.Scope, id int64) (err error) {
	defer s.filtered.hooksChanged()
	defer markUnavailable(&err)
	now := s.now().UTC()
	q := s.db.NewUpdate().Model((*webhookRow)(nil)).
		Set("disabled_reason = CASE WHEN is_active THEN ? ELSE disabled_reason END", ReasonOwner).
		Set("disabled_at = CASE WHEN is_active THEN ? ELSE disabled_at END", now).
		Set("is_active = ?", false).Set("modified_at = ?", now).Where("id = ?", id)
	if !sc.All {
		q = q.Where("user_id = ?", sc.UserID)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return fmt.Errorf("deactivate webhook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhook %d: %w", id, webhook.ErrNotFound)
	}
	return nil
}

// ListWebhooks returns one page of the hooks sc may see, newest first.
func (s *Store) ListWebhooks(ctx context.Context, sc webhook.Scope, f webhook.HookFilter, p webhook.Page) ([]webhook.Webhook, webhook.PageInfo, error) {
	ids, info, err := s.WebhookIDs(ctx, sc, f, p)
	if err != nil {
		return nil, webhook.PageInfo{}, err
	}
	hooks, err := s.WebhooksByID(ctx, sc, ids)
	return hooks, info, err
}

// WebhookIDs returns the ids of ListWebhooks' page, newest first, for a
// list that loads its hooks a few at a time (WebhooksByID).
func (s *Store) WebhookIDs(ctx context.Context, sc webhook.Scope, f webhook.HookFilter, p webhook.Page) (_ []int64, _ webhook.PageInfo, err error) {
	defer markUnavailable(&err)
	var ids []int64
	q := applyScope(sc, s.db.NewSelect().Model((*webhookRow)(nil)).Column("id"), "user_id")
	if f.TargetURL != "" {
		q = q.Where(s.drv.lower()+"(target_url) = "+s.drv.lower()+"(?)", f.TargetURL)
	}
	if f.EventType != "" {
		q = q.Where(s.drv.lower()+"(event_type) = "+s.drv.lower()+"(?)", f.EventType)
	}
	if f.IsActive != nil {
		q = q.Where("is_active = ?", *f.IsActive)
	}
	q, limit := paginate(q, p, "id")
	if err := q.Scan(ctx, &ids); err != nil {
		return nil, webhook.PageInfo{}, fmt.Errorf("list webhooks: %w", err)
	}
	ids, info := pageInfo(ids, p, limit)
	return ids, info, nil
}

// WebhooksByID returns the hooks of ids that sc may see, newest first.
func (s *Store) WebhooksByID(ctx context.Context, sc webhook.Scope, ids []int64) (_ []webhook.Webhook, err error) {
	defer markUnavailable(&err)
	if len(ids) == 0 {
		return []webhook.Webhook{}, nil
	}
	var rows []webhookRow
	q := applyScope(sc, s.db.NewSelect().Model(&rows).Where("id IN (?)", bun.List(ids)), "user_id")
	if err := q.OrderExpr("id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	out := make([]webhook.Webhook, len(rows))
	for i := range rows {
		out[i] = rows[i].domain(s.sealer)
	}
	return out, nil
}
