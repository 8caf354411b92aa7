// Package retention deletes old delivered events in the background so the
// events and attempts tables do not grow forever.
//
// A purge walks the events older than the cutoff in batches, each batch a
// short transaction of its own, and pauses between batches so deliveries
// keep the database most of the time. Pending and given-up events are
// never deleted: a given-up event can still be redelivered, so it stays
// until an operator redelivers it (and it is delivered) or deletes its hook.
package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Store is what a Purger needs of the database; *store.Store has it.
type Store interface {
	PurgeDelivered(ctx context.Context, req webhook.PurgeRequest) (webhook.Purged, error)
	PurgeMessages(ctx context.Context, before time.Time, afterID int64, limit int) (deleted, next int64, err error)
}

// Config tunes a Purger.
type Config struct {
	// Days is the age after which delivered events are deleted; 0 disables
	// the background purge (Purge still works). Defaults to 0.
	Days int
	// Interval is the time between background purges; the first runs at
	// Start. Defaults to 1h.
	Interval time.Duration
	// BatchSize is how many events one transaction deletes. Defaults to
	// 1000.
	BatchSize int
	// Pause is the wait between batches. Zero waits as long as the batch
	// took (at least 10ms), so a purge holds the database at most about
	// half the time, however fast or loaded it is.
	Pause time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns c with zero fields set to their defaults; Days
// stays 0 (no background purge). The server's retention.interval and
// retention.batch_size defaults are these.
func (c Config) WithDefaults() Config {
	c.Interval = cmp.Or(c.Interval, time.Hour)
	c.BatchSize = cmp.Or(c.BatchSize, 1000)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Purger runs purges. Its methods are safe for concurrent use.
type Purger struct {
	cfg    Config
	store  Store
	logger *slog.Logger
	life   service.Lifecycle
}

// New returns a Purger of s. It runs nothing until Start.
func New(cfg Config, s Store, logger *slog.Logger) (*Purger, error) {
	if cfg.Days < 0 {
		return nil, fmt.Errorf("retention: days must not be negative, got %d", cfg.Days)
	}
	if s == nil {
		return nil, errors.New("retention: nil store")
	}
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Purger{cfg: cfg, store: s, logger: logger}, nil
}

// Cutoff is the creation time before which a purge of days deletes.
func Cutoff(now time.Time, days int) time.Time {
	return now.Add(-time.Duration(days) * 24 * time.Hour)
}

// Purge deletes every delivered event created and last changed before
// before, with its attempts and the messages no event references any
// more, batch by batch; progress, when not nil, gets the running totals
// after each batch. It returns the totals, and ctx's error when ctx ends
// first: what was deleted until then stays deleted.
func (p *Purger) Purge(ctx context.Context, before time.Time, progress func(webhook.Purged)) (webhook.Purged, error) {
	var total webhook.Purged
	report := func(b webhook.Purged) {
		total = total.Add(b)
		if progress != nil {
			progress(total)
		}
	}
	req := webhook.PurgeRequest{Before: before, Limit: p.cfg.BatchSize}
	for {
		start := time.Now()
		b, err := p.store.PurgeDelivered(ctx, req)
		if err != nil {
			return total, err
		}
		report(b)
		if b.Next.IsZero() {
			break
		}
		req.From = b.Next
		if err := p.pause(ctx, time.Since(start)); err != nil {
			return total, err
		}
	}
	var after int64
	for {
		start := time.Now()
		n, next, err := p.store.PurgeMessages(ctx, before, after, p.cfg.BatchSize)
		if err != nil {
			return total, err
		}
		if n > 0 {
			report(webhook.Purged{Messages: n})
		}
		if after = next; after == 0 {
			break
		}
		if err := p.pause(ctx, time.Since(start)); err != nil {
			return total, err
		}
	}
	total.Next = time.Time{}
	return total, nil
}

func (p *Purger) pause(ctx context.Context, took time.Duration) error {
	d := p.cfg.Pause
	if d <= 0 {
		d = max(took, 10*time.Millisecond)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Start runs a purge now and then every Interval in the background, until
// Stop or until ctx ends. With Days 0 it starts nothing. It returns at
// once; calling it twice is an error.
func (p *Purger) Start(ctx context.Context) error {
	ctx, done, err := p.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("retention: purger %w", err)
	}
	if p.cfg.Days == 0 {
		done()
		return nil
	}
	go p.loop(ctx, done)
	return nil
}

func (p *Purger) loop(ctx context.Context, done func()) {
	defer done()
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.runOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOnce runs one purge. A panic in it (a bug on some row) is logged
// with its stack and the purge is tried again next Interval: the first
// purge runs at start, so a panic that escaped would crash the node on
// every restart.
func (p *Purger) runOnce(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			p.logger.Error("retention purge panicked; retrying next interval", "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()), "retry_in", p.cfg.Interval)
		}
	}()
	before := Cutoff(p.cfg.Now(), p.cfg.Days)
	start := time.Now()
	got, err := p.Purge(ctx, before, nil)
	switch {
	case ctx.Err() != nil:
		// Stopping: the rest waits for the next run.
	case err != nil:
		p.logger.Warn("retention purge failed; retrying next interval", "error", err,
			"events", got.Events, "attempts", got.Attempts, "messages", got.Messages)
	case got != webhook.Purged{}:
		p.logger.Info("retention purge", "events", got.Events, "attempts", got.Attempts,
			"messages", got.Messages, "before", before, "took", time.Since(start).Round(time.Millisecond))
	}
}

// Stop ends the background purges and waits for the batch in progress to
// be abandoned (its transaction rolls back), or for ctx to end. It is
// idempotent, and a no-op before Start.
func (p *Purger) Stop(ctx context.Context) error {
	if err := p.life.End(ctx); err != nil {
		return fmt.Errorf("retention: stop: %w", err)
	}
	return nil
}
