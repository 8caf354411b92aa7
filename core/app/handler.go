package app

import (
	"context"
	"net/http"
	"time"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// newHandler builds the API and, beside it, the web console.
func (a *App) newHandler() (http.Handler, error) {
	srv, err := api.NewServer(api.Config{
		BasePath:              a.cfg.Server.BasePath,
		MaxBodyBytes:          a.cfg.Server.MaxBodyBytes,
		PublicURL:             a.cfg.Server.PublicURL,
		DefaultRetryCountdown: a.cfg.Delivery.DefaultRetryCountdown,
		InlineHold:            DeliveryConfig(a.cfg).WithDefaults().Lease,
		SecretRotationOverlap: a.cfg.Security.SecretRotationOverlap,
		MaxPageSize:           a.cfg.Limits.MaxPageSize,
		HooksPerUser:          a.cfg.Limits.HooksPerUser,
	}, api.Deps{
		Store:      countingStore{batchingStore{a.Store, a.Publisher}, a.Metrics},
		Countdowns: a.Countdowns,
		Callbacks:  a.Callbacks,
		Notify:     a.Dispatcher.Notify,
		DeliverNow: a.Dispatcher.DeliverNow,
		Plugins:    func() any { return a.Plugins.Plugins() },
		// The guard's own ranges: what the dispatcher will refuse.
		TargetPolicy:     delivery.TargetPolicy(DeliveryConfig(a.cfg)),
		AwaitsPlugins:    a.pluginWait().Awaits,
		AwaitsExtensions: a.pluginWait().AwaitsExtensions,
		Filters:          a.Filters,
		Transforms:       a.Transforms,
		Preview: func(ctx context.Context, h *webhook.Webhook, ev *webhook.Event, now time.Time) ([]byte, http.Header, error) {
			return delivery.Preview(ctx, a.Transforms, h, ev, now)
		},
	}, a.logger.With("component", "api"))
	if err != nil {
		return nil, err
	}
	return a.withConsole(srv)
}

// batchingStore sends publishes through the group-commit batcher.
type batchingStore struct {
	api.Store
	b *publish.Batcher
}

func (s batchingStore) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	return s.b.Publish(ctx, req)
}
