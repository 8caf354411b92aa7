package app

import (
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/retention"
)

// RetentionConfig maps the retention.* keys onto the purger's config.
func RetentionConfig(cfg *config.Config) retention.Config {
	r := cfg.Retention
	return retention.Config{Days: r.Days, Interval: r.Interval, BatchSize: r.BatchSize}
}

// newPurger is the background retention purge of a serving node.
func (a *App) newPurger() (*retention.Purger, error) {
	return retention.New(RetentionConfig(a.cfg), a.Store, a.logger.With("component", "retention"))
}
