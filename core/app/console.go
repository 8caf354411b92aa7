package app

import (
	"context"
	"net/http"
	"strings"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/console"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// withConsole serves the web console's paths (console.Paths) beside the
// API, on the same listener, unless console.enabled is false. Every other
// path is the API's, so its 404s stay JSON.
func (a *App) withConsole(srv *api.Server) (http.Handler, error) {
	if a.cfg.Console.Disabled {
		return srv.Handler(), nil
	}
	c, err := console.New(console.Config{
		SessionTTL:     a.cfg.Console.SessionTTL,
		SecureCookies:  strings.HasPrefix(a.cfg.Server.PublicURL, "https://"),
		APIBase:        a.cfg.Server.BasePath,
		MaxRetries:     a.cfg.Delivery.MaxRetries,
		FrameAncestors: a.cfg.Console.FrameAncestors,
		AppName:        a.cfg.Console.AppName,
		LogoURL:        a.cfg.Console.LogoURL,
		AccentColor:    a.cfg.Console.AccentColor,
	}, console.Deps{Store: a.Store, API: srv.ServeAs, Countdowns: a.Countdowns, Callbacks: a.Callbacks,
		Filters: a.Filters, Transforms: a.Transforms,
		Plugins: a.consolePlugins, AddEventType: a.addEventType, OpenAPI: srv.OpenAPI(), Queue: a.Store.QueueDepthUpTo}, a.logger.With("component", "console"))
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

// consolePlugins is the plugins page's list: the plugin host's files with
// their calls from the metrics.
func (a *App) consolePlugins() []console.PluginInfo {
	calls := a.Metrics.PluginCalls()
	var out []console.PluginInfo
	for _, p := range a.Plugins.Plugins() {
		c := calls[p.File]
		info := console.PluginInfo{File: p.File, Name: p.Name, SHA256: p.SHA256,
			Countdowns: p.Countdowns, Callbacks: p.Callbacks, Filters: p.Filters, Transforms: p.Transforms,
			Loaded: p.Loaded, LoadedAt: p.LoadedAt, Error: p.Error, Calls: c.Calls, Failures: c.Failures, Mean: c.Mean}
		for call, s := range c.ByCall {
			info.ByCall = append(info.ByCall, console.PluginCall{Call: call, Calls: s.Calls, Failures: s.Failures, Mean: s.Mean})
		}
		out = append(out, info)
	}
	return out
}

// addEventType registers an event type from the console, with the rule
// the API and the CLI apply to names added at run time.
func (a *App) addEventType(ctx context.Context, name string) error {
	if err := config.ValidateEventType(name); err != nil {
		return webhook.NewValidationError("name", err.Error())
	}
	return a.Store.AddEventTypes(ctx, name)
}
