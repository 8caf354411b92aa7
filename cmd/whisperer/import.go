package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

func importDJFlags(fs *pflag.FlagSet) {
	fs.String("from", "", "the dj-whisperer database, postgres://USER@HOST/DB (required)")
	fs.String("database-url", "", "the Whisperer database URL (database.url)")
	fs.Bool("events", false, "import the event history too")
	fs.Bool("requeue", false, "with --events: queue undelivered events for delivery again instead of importing them as given up")
	fs.Bool("dry-run", false, "print what would be imported and write nothing")
	jsonFlag(fs)
}

// importDJ is whisperer import dj-whisperer: progress on stderr, the
// report on stdout when done (rows it could not import listed last).
func importDJ(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	from, _ := fs.GetString("from")
	if from == "" {
		return usageErr(fs, "--from is required: the dj-whisperer database, postgres://…")
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	opts := app.ImportOptions{From: from, Progress: e.stderr}
	opts.Events, _ = fs.GetBool("events")
	opts.Requeue, _ = fs.GetBool("requeue")
	opts.DryRun, _ = fs.GetBool("dry-run")
	rep, err := app.ImportDJWhisperer(ctx, cfg, app.NewLogger(cfg.Log, e.stderr), opts)
	if err != nil {
		return err
	}
	if wantJSON(fs) {
		return printJSON(e.stdout, rep)
	}
	rep.WriteText(e.stdout)
	return nil
}
