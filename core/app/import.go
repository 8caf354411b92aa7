package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/djimport"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// ImportOptions are whisperer import dj-whisperer's flags.
type ImportOptions struct {
	// From is the dj-whisperer database, postgres://….
	From    string
	Events  bool
	Requeue bool
	DryRun  bool
	// Progress gets a line every ProgressEvery rows (default 1000).
	Progress      io.Writer
	ProgressEvery int
}

// ImportDJWhisperer imports a dj-whisperer 0.2.x database into the
// configured one (see docs/MIGRATING.md). Hooks are judged with the
// configured plugins' countdowns and callbacks loaded, as the server would
// judge them. A real run migrates the database first, as every verb that
// writes does; a dry run writes nothing, so it needs a migrated one.
func ImportDJWhisperer(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ImportOptions) (*djimport.Report, error) {
	if opts.Requeue && !opts.Events {
		return nil, errors.New("--requeue needs --events: it queues again the undelivered events the import brings")
	}
	src, err := djimport.Open(ctx, opts.From)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var s *store.Store
	if opts.DryRun {
		s, err = openForDryRun(ctx, cfg)
	} else {
		s, err = OpenStore(ctx, cfg, logger)
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	t := &importTarget{Store: s, countdowns: countdown.NewRegistry(), callbacks: &callback.Registry{}}
	host, err := plugin.New(PluginConfig(cfg), RegistrySink(t.countdowns, t.callbacks), logger.With("component", "plugin"))
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	if err := host.Start(ctx); err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	defer func() { _ = host.Stop(context.WithoutCancel(ctx)) }()
	return djimport.Run(ctx, src, t, djimport.Options{
		Events: opts.Events, Requeue: opts.Requeue, DryRun: opts.DryRun,
		MaxPayloadBytes: int(cfg.Server.MaxBodyBytes), MaxResponseBytes: cfg.Delivery.MaxResponseBytes,
		Progress: opts.Progress, ProgressEvery: opts.ProgressEvery,
	})
}

// openForDryRun opens the configured database for a dry run's lookups: it
// creates nothing (no database, no key file: the lookups read no secret)
// and migrates nothing, and says what to run when the database is missing
// or its schema is behind.
func openForDryRun(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	s, err := store.OpenExisting(ctx, cfg.Database.URL, store.Options{MaxOpenConns: cfg.Database.MaxOpenConns})
	if err != nil {
		return nil, fmt.Errorf("%w: run whisperer migrate first", err)
	}
	pending, err := s.PendingMigrations(ctx)
	if err == nil && len(pending) > 0 {
		err = fmt.Errorf("the database %s lacks migration(s) %v: run whisperer migrate first", cfg.Database.Redacted(), pending)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// importTarget is the store with the registries that judge hooks.
type importTarget struct {
	*store.Store
	countdowns *countdown.Registry
	callbacks  *callback.Registry
}

// CheckHook applies the API's create rules, then the registries'.
func (t *importTarget) CheckHook(ctx context.Context, doc map[string]json.RawMessage) (webhook.Webhook, *webhook.ValidationError, error) {
	w, errs := api.CheckHookDocument(doc)
	if errs.Fields["callback"] == nil && w.Callback != "" {
		if _, ok := t.callbacks.Lookup(w.Callback); !ok {
			errs.Add("callback", fmt.Sprintf("%q is not a valid choice.", w.Callback))
		}
	}
	if errs.Fields["retry_countdown_config"] == nil {
		clean, err := t.countdowns.Validate(ctx, w.RetryCountdown)
		var verr *webhook.ValidationError
		switch {
		case errors.As(err, &verr):
			errs.Set("retry_countdown_config", verr.Fields)
		case err != nil:
			errs.Set("retry_countdown_config", map[string]any{"kwargs": []string{
				fmt.Sprintf("The validator of countdown %q failed on these kwargs: %v", w.RetryCountdown.Choice, err)}})
		default:
			w.RetryCountdown = clean
		}
	}
	return w, errs, nil
}
