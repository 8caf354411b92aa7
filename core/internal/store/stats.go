package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// QueueDepth counts the pending events. It reads only pending rows (the
// webhook_events_due partial index and their heap rows), never the
// delivered history, so it stays cheap however large the table grows; its
// cost is the backlog's size.
func (s *Store) QueueDepth(ctx context.Context) (webhook.QueueDepth, error) {
	// The queue's clock: the database's on PostgreSQL, as in Claim.
	now, args := s.drv.clock()
	var (
		row         struct{ Due, Scheduled, Leased int64 }
		oldest, age sql.NullInt64
	)
	// A claimed row keeps state 'pending' with next_attempt_at moved to
	// the lease's end, so next_attempt_at <= now is "due" whether or not
	// a lease expired, and a future one is leased or scheduled by owner.
	err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT
		COALESCE(SUM(CASE WHEN next_attempt_at <= %[1]s THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN next_attempt_at > %[1]s AND lease_owner IS NULL THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN next_attempt_at > %[1]s AND lease_owner IS NOT NULL THEN 1 ELSE 0 END), 0),
		MIN(CASE WHEN next_attempt_at <= %[1]s THEN next_attempt_at END),
		%[1]s - MIN(CASE WHEN next_attempt_at <= %[1]s THEN next_attempt_at END)
		FROM webhook_events WHERE state = 'pending'`, now), slices.Concat(args, args, args, args, args, args)...).
		Scan(&row.Due, &row.Scheduled, &row.Leased, &oldest, &age)
	if err != nil {
		return webhook.QueueDepth{}, fmt.Errorf("queue depth: %w", err)
	}
	q := webhook.QueueDepth{Due: row.Due, Scheduled: row.Scheduled, Leased: row.Leased}
	if oldest.Valid {
		q.OldestDue = fromMicros(oldest.Int64)
		q.OldestDueAge = time.Duration(max(age.Int64, 0)) * time.Microsecond
	}
	return q, nil
}
