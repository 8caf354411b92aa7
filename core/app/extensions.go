package app

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/metrics"
	"github.com/whisperer/whisperer/core/internal/store"
)

// filterFailures counts every failed plugin filter call at fan-out (and
// every stored filter that does not compile there) and
// logs them at most once per filterLogEvery, with the number left unlogged:
// a broken filter on a busy event type fails on every publish, and one
// line per call would drown the log.
type filterFailures struct {
	m   *metrics.Metrics
	log *slog.Logger

	mu      sync.Mutex
	last    time.Time
	skipped int
}

const filterLogEvery = 10 * time.Second

func newFilterFailures(m *metrics.Metrics, log *slog.Logger) *filterFailures {
	return &filterFailures{m: m, log: log}
}

func (f *filterFailures) failed(name string, err error) {
	label := name
	switch {
	case errors.Is(err, filter.ErrUnknownPlugin):
		label = "unregistered" // hook data: keep the label set bounded
	case errors.Is(err, store.ErrUncompilableFilter):
		label = "uncompilable"
	}
	f.m.FilterFailed(label)
	f.mu.Lock()
	now := time.Now()
	if now.Sub(f.last) < filterLogEvery {
		f.skipped++
		f.mu.Unlock()
		return
	}
	skipped := f.skipped
	f.last, f.skipped = now, 0
	f.mu.Unlock()
	f.log.Warn("filter failed at fan-out; the event is delivered", "filter", label, "error", err,
		"failures_not_logged", skipped)
}
