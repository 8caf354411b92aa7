package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Retention deletes in batches, each its own short transaction, so the
// dispatcher's claims and completions interleave with a purge instead of
// waiting behind it. Rows are chosen through indexes (webhook_events
// created_at, messages id) and deleted by primary key: on PostgreSQL only
// row locks are taken, and SKIP LOCKED leaves rows another transaction
// holds (a concurrent redelivery) for a later run.

// purgeableEvent is the condition on webhook_events (unqualified) that a
// purge deletes: delivered, and both created and last changed before the
// cutoff, so an old event redelivered yesterday keeps its fresh log.
const purgeableEvent = "state = 'delivered' AND created_at < ? AND modified_at < ?"

// defaultPurgeBatch is the batch size when a request gives none.
const defaultPurgeBatch = 1000

// PurgeDelivered deletes one batch of delivered events older than
// req.Before, oldest first, with their attempts and the messages no event
// references afterwards. Pending and given-up events are never deleted.
// Purged.Next is zero when the batch was the last.
func (s *Store) PurgeDelivered(ctx context.Context, req webhook.PurgeRequest) (webhook.Purged, error) {
	limit := cmpOr(req.Limit, defaultPurgeBatch)
	before := req.Before.UTC()
	var out webhook.Purged
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = webhook.Purged{}
		var rows []struct {
			ID        int64     `bun:"id"`
			MessageID int64     `bun:"message_id"`
			CreatedAt time.Time `bun:"created_at"`
		}
		q := tx.NewSelect().Table("webhook_events").Column("id", "message_id", "created_at").
			Where(purgeableEvent, before, before).OrderExpr("created_at").Limit(int64(limit))
		if !req.From.IsZero() {
			// Not strict: rows sharing the last timestamp may remain; the
			// ones deleted are gone, so nothing is counted twice.
			q = q.Where("created_at >= ?", req.From.UTC())
		}
		if err := s.drv.skipLocked(q).Scan(ctx, &rows); err != nil {
			return fmt.Errorf("select: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]int64, len(rows))
		msgs := make([]int64, len(rows))
		for i, r := range rows {
			ids[i], msgs[i] = r.ID, r.MessageID
		}
		res, err := tx.NewDelete().Table("delivery_attempts").Where("event_id IN (?)", bun.List(ids)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("delete attempts: %w", err)
		}
		out.Attempts, _ = res.RowsAffected()
		if res, err = tx.NewDelete().Table("webhook_events").Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("delete events: %w", err)
		}
		out.Events, _ = res.RowsAffected()
		if res, err = tx.NewDelete().Table("messages").Where("id IN (?)", bun.List(dedupe(msgs))).
			Where("NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.message_id = messages.id)").Exec(ctx); err != nil {
			return fmt.Errorf("delete messages: %w", err)
		}
		out.Messages, _ = res.RowsAffected()
		if len(rows) == limit {
			out.Next = rows[len(rows)-1].CreatedAt.UTC()
		}
		return nil
	})
	if err != nil {
		return webhook.Purged{}, fmt.Errorf("purge delivered events: %w", err)
	}
	return out, nil
}

// PurgeMessages deletes, among the limit messages after id afterID, those
// created before before that no event references: messages published
// with no subscriber, or whose events went with their hook. It returns how
// many it deleted and the afterID of the next batch, 0 when none is left.
// Each call reads at most limit messages, however few it deletes.
func (s *Store) PurgeMessages(ctx context.Context, before time.Time, afterID int64, limit int) (deleted, next int64, err error) {
	limit = cmpOr(limit, defaultPurgeBatch)
	before = before.UTC()
	var rows []struct {
		ID        int64     `bun:"id"`
		CreatedAt time.Time `bun:"created_at"`
	}
	if err := s.db.NewSelect().Table("messages").Column("id", "created_at").
		Where("id > ?", afterID).OrderExpr("id").Limit(int64(limit)).Scan(ctx, &rows); err != nil {
		return 0, 0, fmt.Errorf("purge messages: %w", err)
	}
	var old []int64
	for _, r := range rows {
		if r.CreatedAt.Before(before) {
			old = append(old, r.ID)
		}
	}
	if len(old) > 0 {
		// One statement: the check and the delete are atomic, and a
		// message is never referenced again after its publish commits.
		res, err := s.db.NewDelete().Table("messages").Where("id IN (?)", bun.List(old)).
			Where("NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.message_id = messages.id)").Exec(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("purge messages: %w", err)
		}
		deleted, _ = res.RowsAffected()
	}
	// Ids grow with time, so the first message at or after the cutoff ends
	// the walk.
	if len(rows) == limit && len(old) == len(rows) {
		next = rows[len(rows)-1].ID
	}
	return deleted, next, nil
}

// CountPurgeable counts what purging everything before before would
// delete, for a dry run.
func (s *Store) CountPurgeable(ctx context.Context, before time.Time) (webhook.Purged, error) {
	before = before.UTC()
	var out webhook.Purged
	err := s.db.NewSelect().Table("webhook_events").ColumnExpr("count(*)").
		Where(purgeableEvent, before, before).Scan(ctx, &out.Events)
	if err == nil {
		err = s.db.NewSelect().Table("delivery_attempts").ColumnExpr("count(*)").
			Where("event_id IN (SELECT id FROM webhook_events WHERE "+purgeableEvent+")", before, before).
			Scan(ctx, &out.Attempts)
	}
	if err == nil {
		err = s.db.NewSelect().Table("messages").ColumnExpr("count(*)").Where("created_at < ?", before).
			Where("NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.message_id = messages.id AND NOT ("+
				"e.state = 'delivered' AND e.created_at < ? AND e.modified_at < ?))", before, before).
			Scan(ctx, &out.Messages)
	}
	if err != nil {
		return webhook.Purged{}, fmt.Errorf("count purgeable events: %w", err)
	}
	return out, nil
}
