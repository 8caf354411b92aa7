package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Per-minute delivery rollups (delivery_rollups, migration 006) for the
// console's overview: Complete adds each batch of results to its minute's
// row per user, so the charts read at most a day of minutes, never the
// events.

// rollupKeep is how long rollups are kept: the overview's longest range
// and a day to spare.
const rollupKeep = 48 * time.Hour

type rollupState struct {
	// pruned is the last minute old rows were deleted at; prunedHour the
	// last hour old hook_rollups rows were (hookrollup.go).
	pruned, prunedHour atomic.Int64
	// failures counts writes that failed (RollupFailures).
	failures atomic.Int64
}

// RollupFailures is how many rollup writes failed since the store opened:
// their results are recorded, only missing from the charts.
func (s *Store) RollupFailures() int64 { return s.rollups.failures.Load() }

// addRollups adds results to the current minute's rollups. It runs after
// the results are written, on its own: the charts are statistics, and a
// failure here must not fail (and so repeat) the results' write; it is
// counted instead.
func (s *Store) addRollups(ctx context.Context, results []webhook.Result) {
	if err := s.writeRollups(ctx, results, s.now().UTC()); err != nil {
		s.rollups.failures.Add(1)
	}
}

func (s *Store) writeRollups(ctx context.Context, results []webhook.Result, now time.Time) error {
	minute := now.Unix() / 60
	if last := s.rollups.pruned.Load(); last != minute && s.rollups.pruned.CompareAndSwap(last, minute) {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM delivery_rollups WHERE minute < ?`, now.Add(-rollupKeep).Unix()/60); err != nil {
			return fmt.Errorf("prune rollups: %w", err)
		}
	}
	for start := 0; start < len(results); start += 200 {
		chunk := results[start:min(start+200, len(results))]
		var b strings.Builder
		b.WriteString(`WITH v(id, attempts, delivered, failed, given_up) AS (VALUES `)
		args := make([]any, 0, len(chunk)*5+1)
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))")
			args = append(args, r.EventID, one(r.WebhookID != 0), one(r.State == webhook.StateDelivered),
				one(r.State == webhook.StatePending), one(r.State == webhook.StateGivenUp))
		}
		// WHERE true: SQLite's upsert after a SELECT needs a WHERE to parse.
		b.WriteString(`) INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up)
			SELECT e.user_id, CAST(? AS BIGINT), SUM(v.attempts), SUM(v.delivered), SUM(v.failed), SUM(v.given_up)
			FROM v JOIN webhook_events e ON e.id = v.id WHERE true GROUP BY e.user_id
			ON CONFLICT (user_id, minute) DO UPDATE SET attempts = delivery_rollups.attempts + excluded.attempts,
			delivered = delivery_rollups.delivered + excluded.delivered, failed = delivery_rollups.failed + excluded.failed,
			given_up = delivery_rollups.given_up + excluded.given_up`)
		args = append(args, minute)
		if _, err := s.db.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("add rollups: %w", err)
		}
	}
	return nil
}

func one(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Rollups returns the minutes since since that have results, oldest
// first, summed over the scope's users.
func (s *Store) Rollups(ctx context.Context, sc webhook.Scope, since time.Time) (_ []webhook.Rollup, err error) {
	defer markUnavailable(&err)
	q := `SELECT minute, SUM(attempts), SUM(delivered), SUM(failed), SUM(given_up) FROM delivery_rollups WHERE minute >= ?`
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
		var minute int64
		if err := rows.Scan(&minute, &r.Attempts, &r.Delivered, &r.Failed, &r.GivenUp); err != nil {
			return nil, fmt.Errorf("rollups: %w", err)
		}
		r.Minute = time.Unix(minute*60, 0).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
