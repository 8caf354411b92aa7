package app

import (
	"context"
	"net/http"

	"github.com/whisperer/whisperer/core/api"
)

func (a *App) newHandler() (http.Handler, error) {
	return api.New(api.Config{
		BasePath:              a.cfg.Server.BasePath,
		MaxBodyBytes:          a.cfg.Server.MaxBodyBytes,
		DefaultRetryCountdown: a.cfg.Delivery.DefaultRetryCountdown,
	}, api.Deps{
		Store:      countingStore{a.Store, a.Metrics},
		Countdowns: a.Countdowns,
		Callbacks:  a.Callbacks,
		Notify:     a.Dispatcher.Notify,
		DeliverNow: a.deliverNow,
		Plugins:    func() any { return a.Plugins.Plugins() },
	}, a.logger.With("component", "api"))
}

func (a *App) deliverNow(ctx context.Context, ids []int64) ([]api.Outcome, error) {
	outs, err := a.Dispatcher.DeliverNow(ctx, ids)
	res := make([]api.Outcome, len(outs))
	for i, o := range outs {
		res[i] = api.Outcome(o)
	}
	return res, err
}
