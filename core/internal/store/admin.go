package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Queries for the operator CLI.

// failedEvent is the condition on webhook_events (unqualified) of an event
// that failed: given up, or waiting for a retry after a failed attempt of
// its current series and not being delivered right now. It is what
// RedeliverFailed selects.
const failedEvent = "(state = 'given_up' OR (state = 'pending' AND retry_count > retry_base AND lease_owner IS NULL))"

// UserNames maps every user's id to its name.
func (s *Store) UserNames(ctx context.Context) (map[int64]string, error) {
	var rows []userRow
	if err := s.db.NewSelect().Model(&rows).Column("id", "username").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Username
	}
	return out, nil
}

// FailedEvents returns, newest first, up to limit events that were given
// up or wait for a retry after a failure (being retried right now
// included), with their hooks but not their attempts. f.CreatedSince and
// f.WebhookID narrow the list; other fields are ignored.
func (s *Store) FailedEvents(ctx context.Context, f webhook.EventFilter, limit int) ([]webhook.Job, error) {
	var rows []eventRow
	q := s.db.NewSelect().Model(&rows).
		Where("(e.state = 'given_up' OR (e.state = 'pending' AND e.retry_count > e.retry_base))").
		OrderExpr("e.id DESC").Limit(int64(cmpOr(limit, 100)))
	if !f.CreatedSince.IsZero() {
		q = q.Where("e.created_at >= ?", f.CreatedSince.UTC())
	}
	if f.WebhookID != 0 {
		q = q.Where("e.webhook_id = ?", f.WebhookID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list failed events: %w", err)
	}
	return s.assemble(ctx, s.db, rows, false)
}

// failedIndexed is webhook_events_failed's predicate (migration 009),
// word for word: SQLite uses a partial index only for a query that has
// its WHERE as a term. failedEvent implies it.
const failedIndexed = "(state = 'given_up' OR (state = 'pending' AND retry_count > retry_base))"

// failedRange selects, on webhook_events, the candidates of a range
// redelivery: failed events created in [f.Since, until), through
// webhook_events_failed. The scope and the hook are unary-plus terms,
// which no index serves, so that no planner prefers the user's or the
// hook's whole history (webhook_events_user_created, _webhook) to it.
func failedRange(q bun.QueryBuilder, sc webhook.Scope, f webhook.RedeliverFilter, until any) bun.QueryBuilder {
	if !f.Since.IsZero() {
		q = q.Where("created_at >= ?", f.Since.UTC())
	}
	q = q.Where("created_at < ?", until).Where(failedIndexed).Where(failedEvent)
	if f.WebhookID != 0 {
		q = q.Where("+webhook_id = ?", f.WebhookID)
	}
	if !sc.All {
		q = q.Where("+user_id = ?", sc.UserID)
	}
	return q
}

// CountFailed counts the events RedeliverFailed would deliver again now.
func (s *Store) CountFailed(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter) (int64, error) {
	return s.CountFailedUpTo(ctx, sc, f, 0)
}

// CountFailedUpTo is CountFailed counting at most limit events (none
// when 0): a count of limit means "limit or more". It reads the failed
// events of the range (webhook_events_failed), at most limit of them, so
// a page's count costs the same for a day of a million events as for an
// hour.
func (s *Store) CountFailedUpTo(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter, limit int64) (n int64, err error) {
	defer markUnavailable(&err)
	until := cmp.Or(f.Until, s.now()).UTC()
	sub := s.db.NewSelect().Table("webhook_events").ColumnExpr("1")
	failedRange(sub.QueryBuilder(), sc, f, until)
	if limit > 0 {
		sub = sub.Limit(limit)
	}
	if err := s.db.NewSelect().TableExpr("(?) AS c", sub).ColumnExpr("count(*)").Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count failed events: %w", err)
	}
	return n, nil
}

// RedeliverFailedBatch is RedeliverFailed on at most limit events after
// afterID's in creation order (created_at, then id), so a bulk redelivery
// can report progress and never holds many rows at once. It returns how
// many it scheduled and the afterID of the next batch, 0 when none is
// left. A batch reads the range's failed events through
// webhook_events_failed from where the last one stopped, not the rows
// in between: a day of a million events costs its failures, once.
func (s *Store) RedeliverFailedBatch(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter, afterID int64, limit int) (n, next int64, err error) {
	limit = cmpOr(limit, 500)
	now := s.now()
	until := cmp.Or(f.Until, now).UTC()
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var ids []int64
		q := tx.NewSelect().Table("webhook_events").Column("id").OrderExpr("created_at, id").Limit(int64(limit))
		var after int
		if err := tx.NewSelect().Table("webhook_events").ColumnExpr("count(*)").Where("id = ?", afterID).Scan(ctx, &after); err != nil {
			return err
		}
		// An afterID gone since (purged) starts over: the events the
		// earlier batches redelivered are no longer failed.
		if after > 0 {
			// afterID's created_at is the range's lower bound now (the
			// one an index range read starts at: SQLite takes one).
			at := "(SELECT created_at FROM webhook_events WHERE id = ?)"
			q = q.Where("created_at >= "+at, afterID).Where("(created_at > "+at+" OR id > ?)", afterID, afterID)
			f.Since = time.Time{}
		}
		failedRange(q.QueryBuilder(), sc, f, until)
		if err := s.drv.skipLocked(q).Scan(ctx, &ids); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if len(ids) == limit {
			next = ids[len(ids)-1]
		}
		// The condition again: a row may have changed since the select
		// (SQLite; PostgreSQL holds the rows).
		clock, clockArgs := s.drv.clock()
		res, err := tx.NewUpdate().Model((*eventRow)(nil)).
			Set("state = 'pending'").Set("lease_owner = NULL").Set("retry_base = retry_count").
			Set("next_attempt_at = "+clock, clockArgs...).Set("modified_at = ?", now.UTC()).
			Where("id IN (?)", bun.List(ids)).Where(failedEvent).Exec(ctx)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("redeliver failed events: %w", err)
	}
	if n > 0 {
		s.notify(ctx)
	}
	return n, next, nil
}

// UserSummary is a user with its count of live (unrevoked) tokens.
type UserSummary struct {
	webhook.User
	LiveTokens int
}

// Users lists every user by name, with its live token count.
func (s *Store) Users(ctx context.Context) ([]UserSummary, error) {
	var rows []struct {
		userRow `bun:",extend"`
		Tokens  int `bun:"tokens"`
	}
	err := s.db.NewSelect().Model((*userRow)(nil)).Column("user_row.*").
		ColumnExpr("(SELECT count(*) FROM api_tokens AS t WHERE t.user_id = user_row.id AND t.revoked_at IS NULL) AS tokens").
		OrderExpr("user_row.username").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]UserSummary, len(rows))
	for i, r := range rows {
		out[i] = UserSummary{User: r.domain(), LiveTokens: r.Tokens}
	}
	return out, nil
}

// TokenSummary is what an operator may see of a token: never its key nor
// its hash.
type TokenSummary struct {
	Prefix    string
	Username  string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Tokens lists the tokens of the user named username (every user's when
// empty), oldest first; revoked ones too.
func (s *Store) Tokens(ctx context.Context, username string) ([]TokenSummary, error) {
	var rows []struct {
		Prefix    string     `bun:"prefix"`
		Username  string     `bun:"username"`
		CreatedAt time.Time  `bun:"created_at"`
		RevokedAt *time.Time `bun:"revoked_at"`
	}
	q := s.db.NewSelect().Table("api_tokens").Join("JOIN users AS u ON u.id = api_tokens.user_id").
		ColumnExpr("api_tokens.prefix, u.username, api_tokens.created_at, api_tokens.revoked_at").
		OrderExpr("api_tokens.id")
	if username != "" {
		q = q.Where("u.username = ?", username)
	}
	if err := q.Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]TokenSummary, len(rows))
	for i, r := range rows {
		out[i] = TokenSummary{Prefix: r.Prefix, Username: r.Username, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt}
	}
	return out, nil
}
