package app

import (
	"context"
	"net/http"
	"time"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/metrics"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// MetricsPath is where a node serves its Prometheus metrics, on the API's
// listener. It needs no token: metrics carry counts and durations, never
// URLs, users, payloads or secrets.
const MetricsPath = "/metrics"

// queueScrapeTimeout bounds the queue-depth query one scrape runs.
const queueScrapeTimeout = 5 * time.Second

// registerMetrics adds the collectors that read the node's state at scrape
// time: queue depth, the dispatcher's callback counters, the database pool.
func (a *App) registerMetrics() error {
	return a.Metrics.Register(
		metrics.Queue(a.Store.QueueDepth, queueScrapeTimeout),
		metrics.Callbacks(func() metrics.CallbackStats {
			s := a.Dispatcher.Stats()
			return metrics.CallbackStats{Dropped: s.CallbacksDropped, Errors: s.CallbackErrors,
				DroppedBy: a.Dispatcher.CallbacksDroppedBySource()}
		}),
		metrics.DBStats(a.Store.DB().DB),
	)
}

// withMetrics serves MetricsPath beside next.
func (a *App) withMetrics(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, a.Metrics.Handler())
	mux.Handle("/", next)
	return mux
}

// countingStore counts publishes on their way to the store, for the
// publish-rate metrics; idempotent replays created nothing and are not
// counted.
type countingStore struct {
	api.Store
	m *metrics.Metrics
}

func (s countingStore) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	p, err := s.Store.Publish(ctx, req)
	if err == nil && !p.Replayed {
		s.m.ObservePublish(len(p.Events), p.Filtered)
	}
	return p, err
}
