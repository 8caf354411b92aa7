package store

import (
	"context"
	"fmt"
	"strings"
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

// writeHookRollups adds results that sent a request, written in tx, to
// hour's rows (SQLite; pgComplete does it in SQL).
func writeHookRollups(ctx context.Context, tx bun.IDB, results []webhook.Result, hour int64) error {
	type counts struct{ attempts, delivered int64 }
	byHook := map[int64]*counts{}
	var order []int64
	for _, r := range results {
		if r.WebhookID == 0 {
			continue // nothing was sent
		}
		c := byHook[r.WebhookID]
		if c == nil {
			c = &counts{}
			byHook[r.WebhookID] = c
			order = append(order, r.WebhookID)
		}
		c.attempts++
		c.delivered += one(r.State == webhook.StateDelivered)
	}
	for start := 0; start < len(order); start += 200 {
		ids := order[start:min(start+200, len(order))]
		var b strings.Builder
		b.WriteString(`INSERT INTO hook_rollups (webhook_id, hour, attempts, delivered) VALUES `)
		writeValues(&b, len(ids), 4)
		args := make([]any, 0, len(ids)*4)
		for _, id := range ids {
			args = append(args, id, hour, byHook[id].attempts, byHook[id].delivered)
		}
		b.WriteString(` ON CONFLICT (webhook_id, hour) DO UPDATE SET attempts = hook_rollups.attempts + excluded.attempts,
			delivered = hook_rollups.delivered + excluded.delivered`)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("add hook rollups: %w", err)
		}
	}
	return nil
}

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
