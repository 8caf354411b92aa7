package store

import (
	"context"
	"fmt"
	"time"
)

// AnalyzeEvery is how often a serving node calls AnalyzeGrown.
const AnalyzeEvery = 5 * time.Second

// AnalyzeGrown refreshes the query planner's statistics of the queue's
// tables that have doubled since their last ANALYZE while still young
// (under youngRows rows), and returns their names.
//
// Why: the hot statements are prepared once per connection, and
// PostgreSQL keeps a generic plan for each, costed with the statistics of
// the moment. On a new database every table is a page or two, so the
// claim, the next-due read and the attempts' foreign-key check were
// planned as sequential scans — and stayed so, because a cached plan is
// replanned only when the table's statistics change (ANALYZE). Autovacuum
// analyzes a table once a minute at best, and never where it is off: a
// new installation read its whole event table once per event (~2,000 rows
// per event at 150 events/s; docs/BENCHMARKS.md). Past youngRows the
// plans no longer change with the size, and autovacuum's own analyzes
// are enough. On SQLite, which keeps no statistics, it does nothing.
func (s *Store) AnalyzeGrown(ctx context.Context) (_ []string, err error) {
	defer markUnavailable(&err)
	return s.drv.analyzeGrown(ctx)
}

// youngRows: a table with this many rows has settled plans.
const youngRows = "100000"

// pgGrownTables lists the queue's tables changed by more than their
// size at the last ANALYZE (+ 50, autovacuum's own threshold for a small
// table) since it. reltuples is -1 for a table never analyzed.
const pgGrownTables = `SELECT t.relname FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
	WHERE t.schemaname = current_schema() AND t.relname IN ('webhook_events', 'messages', 'delivery_attempts')
	AND c.reltuples < ` + youngRows + ` AND t.n_mod_since_analyze > 50 + greatest(c.reltuples, 0)
	ORDER BY t.relname`

func (d *postgresDriver) analyzeGrown(ctx context.Context) ([]string, error) {
	var names []string
	if err := d.s.db.NewRaw(pgGrownTables).Scan(ctx, &names); err != nil {
		return nil, fmt.Errorf("planner statistics: %w", err)
	}
	for _, name := range names {
		// The names come from the fixed list above, never from input.
		if _, err := d.s.db.ExecContext(ctx, "ANALYZE "+name); err != nil {
			return nil, fmt.Errorf("analyze %s: %w", name, err)
		}
	}
	return names, nil
}

func (*sqliteDriver) analyzeGrown(context.Context) ([]string, error) { return nil, nil }
