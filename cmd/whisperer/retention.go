package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/config"
	"github.com/whisperer/whisperer/core/retention"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/webhook"
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
	cfg, err := loadConfig(e, fs)
	if err != nil {
		return err
	}
	if !fs.Changed("days") {
		if days = cfg.Retention.Days; days == 0 {
			return fmt.Errorf("retention is disabled (retention.days is 0); pass --days N to purge anyway")
		}
	}
	before := retention.Cutoff(time.Now(), days)
	if dryRun {
		// Counting only reads: no database is created or migrated for it.
		return withReadDB(ctx, e, fs, func(s *store.Store, _ *config.Config) error {
			n, err := s.CountPurgeable(ctx, before)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "would delete %d delivered event(s), %d attempt(s) and %d message(s) older than %d days (before %s)\n",
				n.Events, n.Attempts, n.Messages, days, timeCell(before))
			return nil
		})
	}
	return withDB(ctx, e, fs, func(s *store.Store) error {
		rc := app.RetentionConfig(cfg)
		rc.Days = days
		p, err := retention.New(rc, s, nil)
		if err != nil {
			return err
		}
		start := time.Now()
		got, err := p.Purge(ctx, before, func(sofar webhook.Purged) {
			fmt.Fprintf(e.stderr, "purged %d event(s), %d attempt(s), %d message(s)\n", sofar.Events, sofar.Attempts, sofar.Messages)
		})
		if err != nil {
			return fmt.Errorf("purge stopped after %d event(s): %w", got.Events, err)
		}
		fmt.Fprintf(e.stdout, "deleted %d delivered event(s), %d attempt(s) and %d message(s) older than %d days in %s; pending and given-up events are kept\n",
			got.Events, got.Attempts, got.Messages, days, time.Since(start).Round(time.Millisecond))
		return nil
	})
}
