package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Per-minute delivery rollups (delivery_rollups, migration 006) for the
// console's overview: Complete adds the results it writes to their
// minute's row per user, so the charts read at most a day of minutes,
// never the events. The rollups are written in the results' own
// transaction (on PostgreSQL in the same statement): one commit per batch
// of results rather than two, and a write of them fails only when the
// results' write would (the result writer then retries both).

// rollupKeep is how long rollups are kept: the overview's longest range
// and a day to spare.
const rollupKeep = 48 * time.Hour

type rollupState struct {
	// pruned is the last minute old delivery_rollups rows were deleted
	// at; prunedHour the last hour old hook_rollups rows were.
	pruned, prunedHour atomic.Int64
	// failures counts prunings that failed (RollupFailures).
	failures atomic.Int64
}

// RollupFailures is how many deletions of old rollups failed since the
// store opened (they are tried again the next minute).
func (s *Store) RollupFailures() int64 { return s.rollups.failures.Load() }

// rollupMinute is the rollup row's minute of results written at now.
func rollupMinute(now time.Time) int64 { return now.Unix() / 60 }

// pruneRollups deletes the rollups older than rollupKeep, at most once a
// minute (the hooks' once an hour), after a write of results; a failure is counted, not returned:
// the results are written.
func (s *Store) pruneRollups(ctx context.Context, now time.Time) {
	if s.pruneOnce(ctx, &s.rollups.pruned, rollupMinute(now), `DELETE FROM delivery_rollups WHERE minute < ?`, rollupMinute(now.Add(-rollupKeep))) {
		s.pruneOnce(ctx, &s.rollups.prunedHour, rollupHour(now), `DELETE FROM hook_rollups WHERE hour < ?`, rollupHour(now.Add(-rollupKeep)))
	}
}

// pruneOnce runs del (with cutoff) unless *last is already period, which
// it becomes; one node's writers race for it, so one of them deletes. It
// reports whether it ran.
func (s *Store) pruneOnce(ctx context.Context, last *atomic.Int64, period int64, del string, cutoff int64) bool {
	if l := last.Load(); l == period || !last.CompareAndSwap(l, period) {
		return false
	}
	if _, err := s.db.ExecContext(ctx, del, cutoff); err != nil {
		s.rollups.failures.Add(1)
	}
	return true
}

// sqliteRollups adds a batch of results (?1, resultsJSON; written or
// stale) to minute ?2's rollups on SQLite (pgComplete does it in its own
// statement). WHERE true: SQLite's upsert after a SELECT with a join
// needs a WHERE to parse.
const sqliteRollups = `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up)
	SELECT e.user_id, ?2, SUM((j.value ->> 7) <> 0), SUM((j.value ->> 2) = 'delivered'),
		SUM((j.value ->> 2) = 'pending'), SUM((j.value ->> 2) = 'given_up')
	FROM json_each(?1) AS j CROSS JOIN webhook_events AS e ON e.id = (j.value ->> 0) WHERE true GROUP BY e.user_id
	ON CONFLICT (user_id, minute) DO UPDATE SET attempts = delivery_rollups.attempts + excluded.attempts,
		delivered = delivery_rollups.delivered + excluded.delivered, failed = delivery_rollups.failed + excluded.failed,
		given_up = delivery_rollups.given_up + excluded.given_up`

// queueUser is the user_id of the rollup rows that hold the queue's
// sampled lag: no user has it (ids start at 1), and the rows' counts are
// zero, so an admin's sums are unchanged and a user's never include them.
const queueUser = 0

// lagSampleRows bounds the rows a lag sample reads (QueueDepthUpTo).
const lagSampleRows = 1000

// SampleQueueLag records the queue's lag now (the oldest due event's
// wait, 0 when nothing is due) in the current minute's rollup, keeping
// the largest of several samples (nodes): the overview's lag history.
// Every node calls it once a minute; it reads at most lagSampleRows rows
// of the due index, so it costs the same however long the backlog.
func (s *Store) SampleQueueLag(ctx context.Context) (err error) {
	defer markUnavailable(&err)
	q, err := s.QueueDepthUpTo(ctx, lagSampleRows)
	if err != nil {
		return err
	}
	lag := q.OldestDueAge.Microseconds()
	_, err = s.db.ExecContext(ctx, `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up, queue_lag_us)
		VALUES (?, ?, 0, 0, 0, 0, ?)
		ON CONFLICT (user_id, minute) DO UPDATE SET queue_lag_us = CASE
		WHEN delivery_rollups.queue_lag_us IS NULL OR delivery_rollups.queue_lag_us < excluded.queue_lag_us
		THEN excluded.queue_lag_us ELSE delivery_rollups.queue_lag_us END`,
		queueUser, s.now().Unix()/60, lag)
	if err != nil {
		return fmt.Errorf("record queue lag: %w", err)
	}
	return nil
}

// Rollups returns the minutes since since that have results (or, for an
// admin, a lag sample), oldest first, summed over the scope's users.
func (s *Store) Rollups(ctx context.Context, sc webhook.Scope, since time.Time) (_ []webhook.Rollup, err error) {
	defer markUnavailable(&err)
	q := `SELECT minute, SUM(attempts), SUM(delivered), SUM(failed), SUM(given_up), COALESCE(MAX(queue_lag_us), 0) FROM delivery_rollups WHERE minute >= ?`
	args := []any{since.Unix() / 60}
	if !sc.All {
		q += ` AND user_id = ?`
		args = append(args, sc.UserID)
	}
	rows, err := s.db.QueryContext(ctx, q+` GROUP BY minute ORDER BY minute`, args...)
	if err != nil {
		return nil, fmt.Errorf("rollups: %w", err)
	}
	defer rows.Close()
	var out []webhook.Rollup
	for rows.Next() {
		var r webhook.Rollup
		var minute, lag int64
		if err := rows.Scan(&minute, &r.Attempts, &r.Delivered, &r.Failed, &r.GivenUp, &lag); err != nil {
			return nil, fmt.Errorf("rollups: %w", err)
		}
		r.Minute = time.Unix(minute*60, 0).UTC()
		r.QueueLag = time.Duration(lag) * time.Microsecond
		out = append(out, r)
	}
	return out, rows.Err()
}
