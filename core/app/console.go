package app

import (
	"net/http"
	"strings"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/console"
)

// withConsole serves the web console's paths (console.Paths) beside the
// API, on the same listener, unless console.enabled is false. Every other
// path is the API's, so its 404s stay JSON.
func (a *App) withConsole(srv *api.Server) (http.Handler, error) {
	if a.cfg.Console.Disabled {
		return srv.Handler(), nil
	}
	c, err := console.New(console.Config{
		SessionTTL:    a.cfg.Console.SessionTTL,
		SecureCookies: strings.HasPrefix(a.cfg.Server.PublicURL, "https://"),
		APIBase:       a.cfg.Server.BasePath,
		MaxRetries:    a.cfg.Delivery.MaxRetries,
	}, console.Deps{Store: a.Store, API: srv.ServeAs, Countdowns: a.Countdowns, Callbacks: a.Callbacks}, a.logger.With("component", "console"))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	for _, p := range console.Paths {
		mux.Handle(p, c)
	}
	return mux, nil
}
