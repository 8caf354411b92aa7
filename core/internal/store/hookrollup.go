package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Per-hour rollups per hook (hook_rollups, migration 011) for the success
// ratio of the console's hooks list: Complete adds each batch's requests
// to its hour's row per hook in the results' own transaction (on
// PostgreSQL in pgComplete's statement, hroll), so a page of hooks reads
// at most a day of hours for each of its hooks, never the events.

// rollupHour is the hook rollup row's hour of results written at now.
func rollupHour(now time.Time) int64 { return now.Unix() / 3600 }

// sqliteHookRollups adds the results of a batch that sent a request (?1,
// resultsJSON: a webhook id other than 0) to hour ?2's rows on SQLite
// (pgComplete does it in its own statement).
const sqliteHookRollups = `INSERT INTO hook_rollups (webhook_id, hour, attempts, delivered)
	SELECT j.value ->> 7, ?2, count(*), SUM((j.value ->> 2) = 'delivered')
	FROM json_each(?1) AS j WHERE (j.value ->> 7) <> 0 GROUP BY j.value ->> 7
	ON CONFLICT (webhook_id, hour) DO UPDATE SET attempts = hook_rollups.attempts + excluded.attempts,
		delivered = hook_rollups.delivered + excluded.delivered`

// HookSuccess returns, for each hook of ids that sent requests since
// since (by the hour), its requests and deliveries.
func (s *Store) HookSuccess(ctx context.Context, ids []int64, since time.Time) (_ map[int64]webhook.HookSuccess, err error) {
	defer markUnavailable(&err)
	out := map[int64]webhook.HookSuccess{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT webhook_id, SUM(attempts), SUM(delivered) FROM hook_rollups
		WHERE webhook_id IN (?) AND hour >= ? GROUP BY webhook_id`, bun.List(ids), since.Unix()/3600)
	if err != nil {
		return nil, fmt.Errorf("hook success: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var h webhook.HookSuccess
		if err := rows.Scan(&id, &h.Attempts, &h.Delivered); err != nil {
			return nil, fmt.Errorf("hook success: %w", err)
		}
		out[id] = h
	}
	return out, rows.Err()
}
