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
// cost is the backlog's size.
func (s *Store) QueueDepth(ctx context.Context) (webhook.QueueDepth, error) {
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
		FROM webhook_events WHERE state = 'pending'`, now)
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
