package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// QueueDepth counts the pending events. It reads only pending rows (the
// webhook_events_due partial index and their heap rows), never the
// delivered history, so it stays cheap however large the table grows; its
// cost is the backlog's size. The metrics report it; a page, which must
// not cost the backlog's size, asks QueueDepthUpTo.
func (s *Store) QueueDepth(ctx context.Context) (webhook.QueueDepth, error) {
	return s.queueDepth(ctx, "webhook_events WHERE state = 'pending'")
}

// QueueDepthUpTo is QueueDepth reading at most limit rows due by now and
// limit rows due later, in the due index's order (oldest due first): a
// count that reaches limit means "limit or more" (the limit rows of a
// phase may be shared with the other phases, so Due+Leased of limit or
// more says only that much). OldestDue is exact unless limit rows hold
// live leases or expired ones (whose due time is their lease's end, later
// than their next_attempt_at).
func (s *Store) QueueDepthUpTo(ctx context.Context, limit int) (webhook.QueueDepth, error) {
	now, _ := s.drv.clock()
	cols := "next_attempt_at, lease_owner, lease_until"
	part := func(cmp string) string {
		return fmt.Sprintf("(SELECT %s FROM webhook_events WHERE state = 'pending' AND next_attempt_at %s %s ORDER BY next_attempt_at, id LIMIT %d)",
			cols, cmp, now, limit)
	}
	return s.queueDepth(ctx, "(SELECT * FROM "+part("<=")+" AS d UNION ALL SELECT * FROM "+part(">")+" AS l) AS p")
}

// queueDepth counts the pending rows of from (a table expression).
func (s *Store) queueDepth(ctx context.Context, from string) (webhook.QueueDepth, error) {
	// The queue's clock: the database's on PostgreSQL, as in Claim.
	now, args := s.drv.clock()
	var (
		row         struct{ Due, Scheduled, Leased int64 }
		oldest, age sql.NullInt64
	)
	// A claimed row keeps state 'pending' and its due time, with its
	// lease's end in lease_until: a row is leased while that is in the
	// future (an expired lease is due again), else due or scheduled by its
	// next_attempt_at. The due time of a row whose lease expired is its
	// lease's end (as the API shows it).
	due := "COALESCE(CASE WHEN lease_owner IS NOT NULL THEN lease_until END, next_attempt_at)"
	leased := "(lease_owner IS NOT NULL AND COALESCE(lease_until, next_attempt_at) > %[1]s)"
	query := fmt.Sprintf(`SELECT
		COALESCE(SUM(CASE WHEN NOT `+leased+` AND `+due+` <= %[1]s THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN NOT `+leased+` AND `+due+` > %[1]s THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN `+leased+` THEN 1 ELSE 0 END), 0),
		MIN(CASE WHEN NOT `+leased+` AND `+due+` <= %[1]s THEN `+due+` END),
		%[1]s - MIN(CASE WHEN NOT `+leased+` AND `+due+` <= %[1]s THEN `+due+` END)
		FROM %[2]s`, now, from)
	// Each use of the clock takes its arguments (SQLite's one "?").
	err := s.db.QueryRowContext(ctx, query, slices.Repeat(args, strings.Count(query, now))...).
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
