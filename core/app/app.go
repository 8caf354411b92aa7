// Package app wires Whisperer together: the store, the countdown and
// callback registries, the plugin host, the delivery dispatcher and the
// HTTP API. It is the only package that imports its siblings.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/metrics"
	"github.com/whisperer/whisperer/core/internal/opsevent"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/transform"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// App is one Whisperer node.
type App struct {
	cfg        *config.Config
	logger     *slog.Logger
	Store      *store.Store
	Countdowns *countdown.Registry
	Callbacks  *callback.Registry
	Filters    *filter.Registry
	Transforms *transform.Registry
	Plugins    *plugin.Host
	Dispatcher *delivery.Dispatcher
	// Publisher batches concurrent publishes into one transaction.
	Publisher *publish.Batcher
	// Metrics are the node's Prometheus metrics, served at MetricsPath.
	Metrics *metrics.Metrics
	// Ops publishes the operational events of what this node changed.
	Ops     *opsevent.Emitter
	Handler http.Handler
	// cert is the TLS certificate when server.tls_cert is set (Serve).
	cert *certificate
}

// NewLogger returns the slog logger cfg.Log asks for, writing to w.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// OpenStore opens and migrates the configured database, with the keyring
// that seals secrets at rest (see Keyring), and registers the configured
// event types and the operational ones (webhook.OpsEventTypes).
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*store.Store, error) {
	keys, err := Keyring(cfg, logger)
	if err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, cfg.Database.URL, store.Options{
		MaxOpenConns: cfg.Database.MaxOpenConns, AuthCacheTTL: cfg.Server.AuthCacheTTL,
		DisableAfter: cfg.Delivery.DisableAfter, Sealer: keys,
	})
	if err != nil {
		return nil, openError(cfg, err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, openError(cfg, err)
	}
	if err := logKeyFileInUse(ctx, cfg, keys, s, logger); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.AddOpsEventTypes(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.AddEventTypes(ctx, cfg.EventTypes...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// New builds a node from cfg: opens and migrates the database, starts
// loading the plugins in the background, builds the dispatcher and the API
// handler. Run starts the work; a node that fails in New has released what
// it acquired.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	s, err := OpenStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := SealLegacySecrets(ctx, s, logger); err != nil {
		s.Close()
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger, Store: s, Countdowns: countdown.NewRegistry(), Callbacks: &callback.Registry{},
		Filters: &filter.Registry{}, Transforms: &transform.Registry{},
		Metrics: metrics.New()}
	s.SetPluginFilters(a.Filters, newFilterFailures(a.Metrics, logger.With("component", "publish")).failed)
	node, _ := os.Hostname()
	a.Ops = opsevent.New(opsevent.Config{Node: node, DisableAfter: cfg.Delivery.DisableAfter, Notify: func() {
		a.Dispatcher.Notify() // set below; the emitter runs from Serve on
	}}, s, logger.With("component", "opsevent"))
	s.OnChanges(a.Ops.Changes)
	pc := PluginConfig(cfg)
	pc.Observer = pluginObserver{a.Metrics, a.Ops}
	// Compiling a Go guest takes seconds when the compilation cache is
	// cold: the node serves meanwhile, and hooks that need a plugin wait
	// for it (pluginWait).
	pc.Background = true
	a.Plugins, err = plugin.New(pc, registrySink{a.Countdowns, a.Callbacks, a.Filters, a.Transforms}, logger.With("component", "plugin"))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("plugins: %w", err)
	}
	// Start's context would end the host with ctx; Stop ends it instead,
	// after in-flight deliveries have drained.
	if err := a.Plugins.Start(context.WithoutCancel(ctx)); err != nil {
		s.Close()
		return nil, fmt.Errorf("plugins: %w", err)
	}
	if err := a.awaitDefaultCountdown(ctx); err != nil {
		a.close(ctx)
		return nil, err
	}
	dc := DeliveryConfig(cfg)
	dc.Observer = a.Metrics
	dc.Plugins = a.pluginWait()
	dc.Transforms = a.Transforms
	a.Publisher = publish.New(s, publishBatchLimit)
	a.Publisher.Log = logger.With("component", "publish")
	a.Dispatcher, err = delivery.New(dc, s, a.Countdowns, a.Callbacks, logger.With("component", "delivery"))
	if err != nil {
		a.close(ctx)
		return nil, fmt.Errorf("delivery: %w", err)
	}
	a.Publisher.Leaser = a.Dispatcher // a batch leases its rows to this node when it has room
	a.Handler, err = a.newHandler()
	if err != nil {
		a.close(ctx)
		return nil, err // api.New's errors name the setting
	}
	if err := a.registerMetrics(); err != nil {
		a.close(ctx)
		return nil, fmt.Errorf("metrics: %w", err)
	}
	a.Handler = a.withMetrics(a.Handler)
	return a, nil
}

// awaitDefaultCountdown waits for the plugins when the default countdown is
// not a built-in: the API checks it (and cleans its kwargs) when it is
// built, and the dispatcher falls back on it, so a plugin's must be loaded
// first. Only such a configuration starts after its plugins.
func (a *App) awaitDefaultCountdown(ctx context.Context) error {
	if a.Countdowns.Source(a.cfg.Delivery.DefaultRetryCountdown.Choice) == countdown.Builtin {
		return nil
	}
	a.logger.Info("waiting for the plugins: delivery.default_retry_countdown is not a built-in",
		"countdown", a.cfg.Delivery.DefaultRetryCountdown.Choice)
	select {
	case <-a.Plugins.Loaded():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plugins: %w", ctx.Err())
	}
}

// pluginWait tells the dispatcher (delivery.Plugins) and the API which
// hooks need a plugin still loading: while the host's first load runs, a
// countdown or callback nobody registers yet may be declared by a file not
// compiled yet. Once it has ended, an unknown name is just unregistered.
type pluginWait struct {
	host       *plugin.Host
	countdowns *countdown.Registry
	callbacks  *callback.Registry
	filters    *filter.Registry
	transforms *transform.Registry
}

func (a *App) pluginWait() pluginWait {
	return pluginWait{a.Plugins, a.Countdowns, a.Callbacks, a.Filters, a.Transforms}
}

func (p pluginWait) Awaits(countdown, callback string) bool {
	return p.host.Loading() && (unknown(&p.countdowns.Registry, countdown) || unknown(&p.callbacks.Registry, callback))
}

// AwaitsExtensions is Awaits for a plugin filter's and a transform's
// names (the API's).
func (p pluginWait) AwaitsExtensions(filter, transform string) bool {
	return p.host.Loading() && (unknown(&p.filters.Registry, filter) || unknown(&p.transforms.Registry, transform))
}

// AwaitsTransform is Awaits for a transform's name (the dispatcher's).
func (p pluginWait) AwaitsTransform(name string) bool { return p.AwaitsExtensions("", name) }

// unknown reports whether key is a name r does not register ("" is none).
func unknown[T any](r *registry.Registry[T], key string) bool {
	_, ok := r.Lookup(key)
	return key != "" && !ok
}

// pluginObserver tells the metrics of every plugin call and the
// operational events of every failure (whisperer.plugin.failed).
type pluginObserver struct {
	metrics *metrics.Metrics
	ops     *opsevent.Emitter
}

func (o pluginObserver) ObservePluginCall(file, call string, d time.Duration, err error) {
	o.metrics.ObservePluginCall(file, call, d, err)
	if err != nil && !errors.Is(err, context.Canceled) { // a shutdown's cancellation is not the plugin's failure
		o.ops.PluginFailed(file, call, err)
	}
}

func (o pluginObserver) ObservePluginLoadFailure(file, stage string, err error) {
	o.ops.PluginFailed(file, stage, err)
}

// publishBatchLimit caps the publishes written in one transaction: large
// enough to absorb a burst of concurrent publishers, small enough that one
// transaction stays short.
const publishBatchLimit = 256

// PluginConfig maps the plugins.* keys onto the plugin host's config.
func PluginConfig(cfg *config.Config) plugin.Config {
	return plugin.Config{
		Dir: cfg.Plugins.Dir, CacheDir: cfg.Plugins.CacheDir,
		CallTimeout: cfg.Plugins.CallTimeout, CallbackTimeout: cfg.Plugins.CallbackTimeout,
		MemoryLimitMB: cfg.Plugins.MemoryLimitMB, PoolSize: cfg.Plugins.PoolSize,
		IdleTimeout: cfg.Plugins.IdleTimeout,
	}
}

// DeliveryConfig maps request_timeout and delivery.* onto the dispatcher's
// config.
func DeliveryConfig(cfg *config.Config) delivery.Config {
	d := cfg.Delivery
	return delivery.Config{
		Workers: d.Workers, BatchSize: d.BatchSize, PollInterval: d.PollInterval, Lease: d.Lease,
		ConnectTimeout: cfg.RequestTimeout.Connect, ReadTimeout: cfg.RequestTimeout.Read,
		MaxRetries: d.MaxRetries, DefaultCountdown: d.DefaultRetryCountdown,
		MaxResponseBytes: d.MaxResponseBytes, AllowNetworks: d.AllowNetworks, DenyNetworks: d.DenyNetworks,
		CallbackWorkers: d.CallbackWorkers, CallbackTimeout: cfg.Plugins.CallbackTimeout,
	}
}

// Run serves until ctx ends, then shuts down in order: stop accepting HTTP,
// stop the services in the reverse of their start (the dispatcher drains
// in-flight deliveries), stop the plugins, close the database. It returns
// nil after a clean shutdown, and every start or stop error otherwise.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Server.Addr)
	if err != nil {
		a.close(ctx)
		return fmt.Errorf("listen on %s (server.addr): %w", a.cfg.Server.Addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	services, err := a.services()
	if err == nil && a.cfg.Server.TLSCert != "" {
		a.cert, err = loadCertificate(a.cfg.Server.TLSCert, a.cfg.Server.TLSKey)
	}
	if err == nil {
		// Cancelling the services' context would abort in-flight
		// deliveries; the shutdown below drains them with Stop instead.
		err = service.StartAll(context.WithoutCancel(ctx), services...)
	}
	if err != nil {
		ln.Close()
		a.close(ctx)
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       a.cfg.Server.ReadTimeout,
		WriteTimeout:      a.cfg.Server.WriteTimeout,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		a.logger.Info("serving", "addr", ln.Addr().String(), "database", a.Store.Dialect(), "tls", a.cert != nil)
		serve := func() error { return srv.Serve(ln) }
		if a.cert != nil {
			srv.TLSConfig = a.cert.tlsConfig()
			serve = func() error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Server.ShutdownTimeout)
		defer cancel()
		a.logger.Info("shutting down")
		return errors.Join(srv.Shutdown(shutdown), service.StopAll(shutdown, services...), a.Plugins.Stop(shutdown))
	})
	err = g.Wait()
	a.Store.Close()
	a.logger.Info("stopped")
	return err
}

// services are what a serving node runs beside the HTTP server, in start
// order: each is started after what it uses and stopped before it. The
// plugin host, which New starts, is stopped after them all.
func (a *App) services() ([]service.Service, error) {
	purger, err := a.newPurger()
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return []service.Service{
		// Before the dispatcher, so it is stopped after it and publishes
		// what the draining dispatcher gave up.
		a.Ops,
		a.Dispatcher,
		a.Publisher,
		// Wakes the dispatcher when any node publishes (PostgreSQL).
		service.Named{Name: "store listener", Service: service.NewFunc(func(ctx context.Context) error {
			return a.Store.Listen(ctx, a.Dispatcher.Notify, a.reconnecting("store listener"))
		})},
		service.Named{Name: "token revocation watcher", Service: service.NewFunc(func(ctx context.Context) error {
			return a.Store.WatchRevocations(ctx, a.reconnecting("token revocation watcher"))
		})},
		purger,
		service.Named{Name: "queue lag sampler", Service: service.NewFunc(a.sampleQueueLag)},
		service.Named{Name: "planner statistics", Service: service.NewFunc(a.analyzeGrown)},
	}, nil
}

// analyzeGrown keeps the planner's statistics of young queue tables
// current (Store.AnalyzeGrown). A failure is logged; plans stay as they
// were.
func (a *App) analyzeGrown(ctx context.Context) error {
	t := time.NewTicker(store.AnalyzeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		names, err := a.Store.AnalyzeGrown(ctx)
		if err != nil && ctx.Err() == nil {
			a.logger.Warn("planner statistics", "err", err)
		}
		if len(names) > 0 {
			a.logger.Debug("analyzed grown tables", "tables", names)
		}
	}
}

// queueLagEvery is how often a node records the queue's lag for the
// console's lag history (one sample per rollup minute).
const queueLagEvery = time.Minute

// sampleQueueLag records the queue's lag every queueLagEvery until ctx
// ends. A failed sample is logged and leaves a gap in the chart.
func (a *App) sampleQueueLag(ctx context.Context) error {
	t := time.NewTicker(queueLagEvery)
	defer t.Stop()
	for {
		if err := a.Store.SampleQueueLag(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("queue lag sample failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconnecting logs why a PostgreSQL listener lost its connection; it
// retries with a backoff, and the dispatcher's poll covers the gap.
func (a *App) reconnecting(name string) func(error) {
	return func(err error) {
		a.logger.Warn(name+": connection lost; reconnecting", "err", err)
	}
}

// Reload rereads what SIGHUP refreshes: the plugin directory and, when
// the server serves TLS itself, its certificate.
func (a *App) Reload(ctx context.Context) error {
	err := a.Plugins.Reload(ctx)
	if a.cert != nil {
		err = errors.Join(err, a.cert.reload())
	}
	return err
}

// close releases what New acquired, for a node that will not Serve.
func (a *App) close(ctx context.Context) {
	_ = a.Plugins.Stop(context.WithoutCancel(ctx)) // nothing runs on it yet
	a.Store.Close()
}

// RegistrySink returns the plugin.Sink that registers what plugins declare
// into cd and cb (and filter and transform registries of its own): a CLI
// verb's (countdown preview, plugins list), so every loader reports the
// same conflicts as the server's.
func RegistrySink(cd *countdown.Registry, cb *callback.Registry) plugin.Sink {
	return registrySink{cd, cb, &filter.Registry{}, &transform.Registry{}}
}

// registrySink hands plugin registrations to the registries. A plugin's
// kinds are replaced together: if one clashes, those already replaced are
// rolled back.
type registrySink struct {
	countdowns *countdown.Registry
	callbacks  *callback.Registry
	filters    *filter.Registry
	transforms *transform.Registry
}

func (s registrySink) Apply(source string, r webhook.Registrations) error {
	steps := []replacement{
		replaceIn(&s.countdowns.Registry, source, r.Countdowns),
		replaceIn(&s.callbacks.Registry, source, r.Callbacks),
		replaceIn(&s.filters.Registry, source, r.Filters),
		replaceIn(&s.transforms.Registry, source, r.Transforms),
	}
	for i, st := range steps {
		if err := st.replace(); err != nil {
			for _, done := range steps[:i] {
				done.restore()
			}
			return err
		}
	}
	return nil
}

// replacement replaces one registry's entries of a source, and can put
// back those it had before.
type replacement struct {
	replace func() error
	restore func()
}

func replaceIn[T any](r *registry.Registry[T], source string, entries map[string]T) replacement {
	old := r.Of(source)
	return replacement{
		replace: func() error { return r.Replace(source, entries) },
		restore: func() { _ = r.Replace(source, old) },
	}
}
