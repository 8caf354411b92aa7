package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

func retentionPurgeFlags(fs *pflag.FlagSet) {
	fs.Int("days", 0, "delete delivered events older than this many days (default retention.days)")
	fs.Bool("dry-run", false, "only count what would be deleted")
}

// retentionPurge runs the background purge by hand, with progress on
// stderr. A server running at the same time is safe: both delete in short
// batches and skip what the other holds.
func retentionPurge(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	dryRun, _ := fs.GetBool("dry-run")
	days, _ := fs.GetInt("days")
	if fs.Changed("days") && days < 1 {
		return usageErr(fs, "--days must be at least 1, got %d", days)
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	if !fs.Changed("days") {
		if days = cfg.Retention.Days; days == 0 {
			return fmt.Errorf("retention is disabled (retention.days is 0); pass --days N to purge anyway")
		}
	}
	before := app.PurgeCutoff(time.Now(), days)
	if dryRun {
		// Counting only reads: no database is created or migrated for it.
		return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
			n, err := adm.CountPurgeable(ctx, before)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "would delete %d delivered event(s), %d attempt(s) and %d message(s) older than %d days (before %s)\n",
				n.Events, n.Attempts, n.Messages, days, timeCell(before))
			return nil
		})
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		start := time.Now()
		got, err := adm.Purge(ctx, days, before, func(events, attempts, messages int64) {
			fmt.Fprintf(e.stderr, "purged %d event(s), %d attempt(s), %d message(s)\n", events, attempts, messages)
		})
		if err != nil {
			return fmt.Errorf("purge stopped after %d event(s): %w", got.Events, err)
		}
		fmt.Fprintf(e.stdout, "deleted %d delivered event(s), %d attempt(s) and %d message(s) older than %d days in %s; pending and given-up events are kept\n",
			got.Events, got.Attempts, got.Messages, days, time.Since(start).Round(time.Millisecond))
		return nil
	})
}
