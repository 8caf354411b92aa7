package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Config tunes the API. The zero value is usable.
type Config struct {
	// BasePath prefixes every API route; it starts and ends with "/".
	// Defaults to "/whisperer/".
	BasePath string
	// MaxBodyBytes caps a request body; larger ones get 413. Defaults to
	// 1 MiB.
	MaxBodyBytes int64
	// DefaultRetryCountdown applies to hooks registered without a
	// retry_countdown_config. New checks it with Deps.Countdowns, so
	// plugin countdowns must be registered first. Defaults to exponential
	// with base 2.
	DefaultRetryCountdown webhook.CountdownConfig
	// PageSize is the default page size of lists. Defaults to 100.
	PageSize int
	// MaxPageSize caps the page_size query parameter. Defaults to 1000,
	// the most the store pages.
	MaxPageSize int
	// PublicURL is the scheme://host[:port][/prefix] clients reach the
	// API at; the next and previous links of list pages start with it.
	// Empty, the default, makes them relative: a path and a query.
	PublicURL string
	// HooksPerUser caps how many hooks (active or not) one user may
	// register. Defaults to 1000.
	HooksPerUser int
	// InlineHold is how long the events of a publish with "async": false
	// stay out of the dispatchers' reach while the request makes their
	// first attempt itself (the node's delivery lease). Defaults to 60s.
	InlineHold time.Duration
	// SecretRotationOverlap is how long a hook's replaced secret_key keeps
	// signing after an update with "rotate": true. Defaults to 24h.
	SecretRotationOverlap time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.BasePath = cmp.Or(c.BasePath, "/whisperer/")
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, 1<<20)
	if c.DefaultRetryCountdown.Choice == "" {
		c.DefaultRetryCountdown = webhook.DefaultCountdown()
	}
	c.MaxPageSize = cmp.Or(c.MaxPageSize, 1000)
	c.HooksPerUser = cmp.Or(c.HooksPerUser, 1000)
	c.InlineHold = cmp.Or(c.InlineHold, time.Minute)
	c.SecretRotationOverlap = cmp.Or(c.SecretRotationOverlap, 24*time.Hour)
	c.PageSize = min(cmp.Or(c.PageSize, 100), c.MaxPageSize)
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	if !strings.HasPrefix(c.BasePath, "/") || !strings.HasSuffix(c.BasePath, "/") {
		return fmt.Errorf("api: base path must start and end with \"/\", got %q", c.BasePath)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.ContainsAny(c.PublicURL, " \t\r\n\\") {
			return fmt.Errorf("api: public URL must be http(s)://host[:port][/path] without user, query or fragment, got %q", c.PublicURL)
		}
	}
	if c.MaxBodyBytes < 1 || c.PageSize < 1 || c.MaxPageSize < 1 || c.HooksPerUser < 1 {
		return errors.New("api: MaxBodyBytes, PageSize, MaxPageSize and HooksPerUser must be positive")
	}
	if c.MaxPageSize > 1000 {
		return fmt.Errorf("api: MaxPageSize must be at most 1000, got %d", c.MaxPageSize)
	}
	return nil
}

// Store is what the API needs from storage; *store.Store implements it.
// Methods taking a Scope return webhook.ErrNotFound for rows outside it.
type Store interface {
	Authenticate(ctx context.Context, key string) (webhook.User, error)
	Ping(ctx context.Context) error
	EventTypes(ctx context.Context) ([]string, error)
	EventTypeExists(ctx context.Context, name string) (bool, error)

	CreateWebhook(ctx context.Context, w webhook.Webhook) (webhook.Webhook, error)
	CountWebhooks(ctx context.Context, userID int64) (int, error)
	Webhook(ctx context.Context, sc webhook.Scope, id int64) (webhook.Webhook, error)
	UpdateWebhook(ctx context.Context, sc webhook.Scope, w webhook.Webhook, setActive bool) (webhook.Webhook, error)
	DeactivateWebhook(ctx context.Context, sc webhook.Scope, id int64) error
	// WebhookIDs and EventIDs page the lists; WebhooksByID and EventsByID
	// load their rows, newest first, a chunk at a time.
	WebhookIDs(ctx context.Context, sc webhook.Scope, f webhook.HookFilter, p webhook.Page) ([]int64, webhook.PageInfo, error)
	WebhooksByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Webhook, error)

	EventIDs(ctx context.Context, sc webhook.Scope, f webhook.EventFilter, p webhook.Page) ([]int64, webhook.PageInfo, error)
	EventsByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Job, error)
	Event(ctx context.Context, sc webhook.Scope, idOrUUID string) (webhook.Job, error)
	Redeliver(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool) (webhook.Job, error)
	// RedeliverHeld is Redeliver due only after hold, without waking
	// other nodes: an inline redelivery's ClaimEvents gets the event first.
	RedeliverHeld(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool, hold time.Duration) (webhook.Job, error)
	RedeliverFailed(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter) (int64, error)
	// CreatePortalCode makes a tenant portal's one-time code for the user
	// named username (webhook.ErrNotFound if none).
	CreatePortalCode(ctx context.Context, username string, caps []string, ttl time.Duration) (webhook.User, string, time.Time, error)
	Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error)
}

// Countdowns validates retry_countdown_config; *countdown.Registry
// implements it. Validate returns a *webhook.ValidationError whose Fields
// are the nested document for retry_countdown_config.
type Countdowns interface {
	Validate(ctx context.Context, cfg webhook.CountdownConfig) (webhook.CountdownConfig, error)
}

// Callbacks names the registered callbacks; *callback.Registry implements
// it.
type Callbacks interface {
	Keys() []string
}

// Kwargs validates the kwargs of a plugin filter or a transform by name
// and names the registered ones; *filter.Registry and
// *transform.Registry implement it. Validate's fieldErrs are the DRF
// document for kwargs; its error means the validator failed.
type Kwargs interface {
	Keys() []string
	Validate(ctx context.Context, name string, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error)
}

// Filters is Kwargs for plugin filters, which a dry run also calls;
// *filter.Registry implements it.
type Filters interface {
	Kwargs
	filter.Plugins
}

// Deps are the API's collaborators. Store and Countdowns are required.
type Deps struct {
	Store      Store
	Countdowns Countdowns
	// Callbacks names the callbacks a hook may use. Nil means none: only
	// an empty callback is valid.
	Callbacks Callbacks
	// Notify wakes the dispatcher after a publish or a redelivery. Nil
	// does nothing.
	Notify func()
	// DeliverNow makes the first attempt of the given events inline, for
	// publish with "async": false. Nil makes such requests 503.
	DeliverNow func(ctx context.Context, ids []int64) ([]webhook.Outcome, error)
	// Plugins describes the loaded plugins for GET plugins/; the value is
	// encoded as JSON. Nil lists none.
	Plugins func() any
	// TargetPolicy says why deliveries may not reach an address ("" when
	// they may): the delivery guard's own decision, passed in by core/app
	// since api does not import delivery. A hook whose target_url is such
	// a literal address is refused; one whose name resolves to one is
	// saved with a warning. Nil checks nothing.
	TargetPolicy func(addr netip.Addr) string
	// AwaitsPlugins reports whether a countdown or callback name (either
	// may be empty) is not registered yet while the plugins are still
	// loading at start: a hook naming it is answered 503 with Retry-After
	// rather than refused. Nil never waits.
	AwaitsPlugins func(countdown, callback string) bool
	// AwaitsExtensions is AwaitsPlugins for a plugin filter's and a
	// transform's names (either may be empty). Nil never waits.
	AwaitsExtensions func(filter, transform string) bool
	// Filters and Transforms are the plugin filters and transforms a
	// hook may name. Nil means none.
	Filters    Filters
	Transforms Kwargs
	// Preview builds a delivery's request for POST hooks/{id}/test/ (the
	// sender's). Nil answers without the request.
	Preview PreviewFunc
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	router *mux.Router
	// openAPI is the document served at BasePath + "openapi.json".
	openAPI []byte
	// hookLocks serialise a user's hook creations (striped by user id), so
	// that counting against HooksPerUser and inserting are one step on this
	// node.
	hookLocks [64]sync.Mutex
}

// New returns the API's handler. logger may be nil.
func New(cfg Config, deps Deps, logger *slog.Logger) (http.Handler, error) {
	s, err := NewServer(cfg, deps, logger)
	if err != nil {
		return nil, err
	}
	return s.Handler(), nil
}

// NewServer checks cfg and deps and builds the routes.
func NewServer(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Countdowns == nil {
		return nil, errors.New("api: Deps.Store and Deps.Countdowns are required")
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	def, err := deps.Countdowns.Validate(context.Background(), cfg.DefaultRetryCountdown)
	if err != nil {
		var verr *webhook.ValidationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("delivery.default_retry_countdown is invalid: %s", strings.Join(verr.Messages(), "; "))
		}
		return nil, fmt.Errorf("delivery.default_retry_countdown %q: %w", cfg.DefaultRetryCountdown.Choice, err)
	}
	cfg.DefaultRetryCountdown = def
	s := &Server{cfg: cfg, deps: deps, log: logger}
	if s.openAPI, err = openAPIFor(cfg.BasePath); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Handler returns the handler serving every route, wrapped in request ids,
// logging and panic recovery.
func (s *Server) Handler() http.Handler { return s.observe(s.router) }

// ServeAs serves r as though it carried a token of u, whatever its
// Authorization header says: for an in-process caller that authenticated
// u its own way (the web console's session), so that its writes go
// through the same validation and authorization as the API's. Only code
// in this process can make such a request: the user travels in the
// request's context, which no client can set.
func (s *Server) ServeAs(u webhook.User, w http.ResponseWriter, r *http.Request) {
	s.Handler().ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
}

// methods maps an HTTP method to the handler of one resource.
type methods map[string]handlerFunc

// handlerFunc is a handler that reports failure by returning an error;
// serve turns it into a response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() {
	r := mux.NewRouter()
	r.NotFoundHandler = s.serve(func(http.ResponseWriter, *http.Request) error { return webhook.ErrNotFound })
	r.MethodNotAllowedHandler = r.NotFoundHandler

	r.Handle("/healthz", s.resource(methods{http.MethodGet: s.healthz}, false))
	r.Handle("/readyz", s.resource(methods{http.MethodGet: s.readyz}, false))

	base := s.cfg.BasePath
	r.Handle(base+"openapi.json", s.resource(methods{http.MethodGet: s.openapi}, false))
	// Each path is registered with and without its trailing slash, as
	// dj-whisperer clients send either.
	handle := func(path string, m methods) {
		h := s.resource(m, true)
		r.Handle(base+path+"/", h)
		r.Handle(base+path, h)
	}
	handle("hooks", methods{http.MethodGet: s.listHooks, http.MethodPost: s.createHook})
	handle("hooks/{id}", methods{
		http.MethodGet: s.getHook, http.MethodPut: s.putHook,
		http.MethodPatch: s.patchHook, http.MethodDelete: s.deleteHook,
	})
	handle("hooks/{id}/test", methods{http.MethodPost: s.testHook})
	handle("hook_events", methods{http.MethodGet: s.listEvents})
	handle("hook_events/redeliver", methods{http.MethodPost: s.redeliverFailed})
	handle("hook_events/{id}", methods{http.MethodGet: s.getEvent})
	handle("hook_events/{id}/redeliver", methods{http.MethodPost: s.redeliverEvent})
	handle("events", methods{http.MethodPost: s.publish})
	handle("event_types", methods{http.MethodGet: s.listEventTypes})
	handle("plugins", methods{http.MethodGet: s.listPlugins})
	handle("portal/sessions", methods{http.MethodPost: s.createPortalSession})
	s.router = r
}

// resource dispatches on the method, answering 405 with an Allow header
// for the others (and OPTIONS with the Allow header alone), and
// authenticates first when auth is set.
func (s *Server) resource(m methods, auth bool) http.Handler {
	if h, ok := m[http.MethodGet]; ok {
		m[http.MethodHead] = h
	}
	allowed := make([]string, 0, len(m)+1)
	for _, meth := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead} {
		if _, ok := m[meth]; ok {
			allowed = append(allowed, meth)
		}
	}
	allowed = append(allowed, http.MethodOptions)
	allow := strings.Join(allowed, ", ")
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		// A request ServeAs passes on already names its user.
		if _, preset := r.Context().Value(userKey{}).(webhook.User); auth && !preset {
			u, err := s.authenticate(r)
			if err != nil {
				return err
			}
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
		}
		h, ok := m[r.Method]
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if !ok {
			w.Header().Set("Allow", allow)
			return &methodNotAllowed{method: r.Method}
		}
		return h(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Store.Ping(ctx); err != nil {
		s.log.WarnContext(r.Context(), "readiness check failed", "error", err, "request_id", requestID(r.Context()))
		return writeJSON(w, http.StatusServiceUnavailable, detail("The database is unavailable; try again shortly."))
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) error {
	var list any = []any{}
	if s.deps.Plugins != nil {
		if v := s.deps.Plugins(); v != nil {
			list = v
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"next": nil, "previous": nil, "results": list})
}

func (s *Server) listEventTypes(w http.ResponseWriter, r *http.Request) error {
	names, err := s.deps.Store.EventTypes(r.Context())
	if err != nil {
		return err
	}
	out := make([]map[string]string, len(names))
	for i, n := range names {
		out[i] = map[string]string{"name": n}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"next": nil, "previous": nil, "results": out})
}
