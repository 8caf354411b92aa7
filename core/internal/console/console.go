package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

//go:embed assets templates
var files embed.FS

// Store is what the console reads; *store.Store implements it. Methods
// taking a Scope return webhook.ErrNotFound for rows outside it.
type Store interface {
	// Authenticate is the API's token check.
	Authenticate(ctx context.Context, key string) (webhook.User, error)
	CreateSession(ctx context.Context, key string, ttl time.Duration) (string, webhook.Session, error)
	Session(ctx context.Context, id string) (webhook.Session, error)
	DeleteSession(ctx context.Context, id string) error
	// RedeemPortalCode, PortalSession and DeletePortalSession are the
	// tenant portal's sessions (portal.go).
	RedeemPortalCode(ctx context.Context, code string) (string, webhook.Session, error)
	PortalSession(ctx context.Context, id string) (webhook.Session, error)
	DeletePortalSession(ctx context.Context, id string) error

	UserNames(ctx context.Context) (map[int64]string, error)
	EventTypes(ctx context.Context) ([]string, error)
	Webhook(ctx context.Context, sc webhook.Scope, id int64) (webhook.Webhook, error)
	WebhookIDs(ctx context.Context, sc webhook.Scope, f webhook.HookFilter, p webhook.Page) ([]int64, webhook.PageInfo, error)
	WebhooksByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Webhook, error)
	EventIDs(ctx context.Context, sc webhook.Scope, f webhook.EventFilter, p webhook.Page) ([]int64, webhook.PageInfo, error)
	EventsByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Job, error)
	Event(ctx context.Context, sc webhook.Scope, idOrUUID string) (webhook.Job, error)
	// CountFailedUpTo counts, up to limit, what the bulk redelivery (POST
	// hook_events/redeliver/) would queue again, for its confirmation.
	CountFailedUpTo(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter, limit int64) (int64, error)
	// Rollups are the per-minute delivery sums the overview charts.
	Rollups(ctx context.Context, sc webhook.Scope, since time.Time) ([]webhook.Rollup, error)
	// HookSuccess sums the hooks' requests since a time from their hourly
	// rollups, for the hooks list's success ratio.
	HookSuccess(ctx context.Context, ids []int64, since time.Time) (map[int64]webhook.HookSuccess, error)
}

// Countdowns is the retry countdown registry, built-in and plugin
// countdowns alike; *countdown.Registry implements it. The hook form lists
// its keys and the schedule preview runs them.
type Countdowns interface {
	Keys() []string
	// Source is "builtin" for a built-in countdown, else the plugin file
	// that registered it.
	Source(key string) string
	Validate(ctx context.Context, cfg webhook.CountdownConfig) (webhook.CountdownConfig, error)
	Wait(ctx context.Context, cfg webhook.CountdownConfig, retryCount int) (time.Duration, error)
}

// Callbacks names the registered callbacks; *callback.Registry
// implements it.
type Callbacks interface {
	Keys() []string
}

// Deps are the console's collaborators. Store and API are required.
type Deps struct {
	Store Store
	// API serves a request to the REST API as u: api.Server.ServeAs.
	API func(u webhook.User, w http.ResponseWriter, r *http.Request)
	// Countdowns and Callbacks fill the hook form's choices; nil offers
	// none (the API still validates what is sent).
	Countdowns Countdowns
	Callbacks  Callbacks
	// Filters and Transforms name the plugin filters and transforms the
	// hook form offers (Callbacks' interface); nil offers none.
	Filters    Callbacks
	Transforms Callbacks
	// Plugins describes the plugin directory for the plugins page; nil
	// lists none.
	Plugins func() []PluginInfo
	// AddEventType validates and registers an event type name; a
	// *webhook.ValidationError's messages are shown to the admin. Nil: the
	// page only lists them.
	AddEventType func(ctx context.Context, name string) error
	// OpenAPI is the API's OpenAPI document, rendered as the API
	// reference page.
	OpenAPI []byte
	// Queue counts the pending events for the overview's queue lag
	// (admins), reading at most limit rows of each phase; nil leaves it
	// out.
	Queue func(ctx context.Context, limit int) (webhook.QueueDepth, error)
}

// Handler serves the console. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	limiter *limiter
	cross   *http.CrossOriginProtection
	apiDoc  *apiDoc
	// csp is every response's policy; portalCSP the portal's, which lets
	// console.frame_ancestors frame it.
	csp, portalCSP string
}

// New checks cfg and deps and builds the handler. logger may be nil.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.API == nil {
		return nil, errors.New("console: Deps.Store and Deps.API are required")
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, deps: deps, log: logger, pages: pages,
		limiter: newLimiter(cfg.SignInPerMinute, time.Now), cross: http.NewCrossOriginProtection()}
	h.csp, h.portalCSP = policies(cfg)
	if len(deps.OpenAPI) > 0 {
		d, err := readAPIDoc(deps.OpenAPI)
		if err != nil {
			return nil, err
		}
		h.apiDoc = &d
	}
	h.routes()
	return h, nil
}

// Paths are the paths the console serves; core/app routes them here and
// everything else to the API.
var Paths = []string{"/{$}", "/sign-in", "/sign-out", "/hooks", "/hooks/", "/events", "/events/", "/assets/",
	"/plugins", "/event-types", "/api-docs", "/portal", "/portal/", "/overview"}

func (h *Handler) routes() {
	m := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	m.HandleFunc("GET /assets/brand.css", h.brandCSS)
	m.HandleFunc("GET /portal", h.portalPage)
	m.HandleFunc("POST /portal/session", h.portalExchange)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/hooks", http.StatusSeeOther)
	})
	m.HandleFunc("GET /sign-in", h.signInPage)
	m.HandleFunc("POST /sign-in", h.signIn)
	m.Handle("POST /sign-out", h.authed(h.signOut))
	m.Handle("GET /hooks", h.authed(h.hooksPage))
	m.Handle("GET /hooks/{id}", h.authed(h.hookPage))
	m.Handle("GET /hooks/new", h.authed(need(webhook.CapManageHooks, h.newHookPage)))
	m.Handle("POST /hooks/new", h.authed(need(webhook.CapManageHooks, h.createHook)))
	m.Handle("GET /hooks/{id}/edit", h.authed(need(webhook.CapManageHooks, h.editHookPage)))
	m.Handle("POST /hooks/{id}/edit", h.authed(need(webhook.CapManageHooks, h.editHook)))
	m.Handle("GET /hooks/{id}/rotate", h.authed(need(webhook.CapManageHooks, h.confirmRotate)))
	m.Handle("POST /hooks/{id}/rotate", h.authed(need(webhook.CapManageHooks, h.rotate)))
	m.Handle("GET /hooks/countdown", h.authed(h.countdownFields))
	m.Handle("GET /hooks/preview", h.authed(h.preview))
	m.Handle("POST /hooks/{id}/try", h.authed(need(webhook.CapManageHooks, h.tryHook)))
	m.Handle("POST /hooks/{id}/active", h.authed(need(webhook.CapManageHooks, h.setActive)))
	m.Handle("GET /overview", h.authed(h.overviewPage))
	m.Handle("GET /plugins", h.authed(h.pluginsPage))
	m.Handle("GET /event-types", h.authed(h.eventTypesPage))
	m.Handle("POST /event-types", h.authed(h.addEventType))
	m.Handle("GET /api-docs", h.authed(h.apiDocsPage))
	m.Handle("GET /events", h.authed(h.eventsPage))
	m.Handle("GET /events/{id}", h.authed(h.eventPage))
	m.Handle("GET /events/redeliver-failed", h.authed(need(webhook.CapRedeliver, h.confirmBulk)))
	m.Handle("POST /events/redeliver-failed", h.authed(need(webhook.CapRedeliver, h.redeliverBulk)))
	m.Handle("GET /events/{id}/redeliver", h.authed(need(webhook.CapRedeliver, h.confirmRedeliver)))
	m.Handle("POST /events/{id}/redeliver", h.authed(need(webhook.CapRedeliver, h.redeliver)))
	h.mux = m
}

// policies are the Content-Security-Policies: scripts, styles and
// requests to this origin only (nothing inline, nothing evaluated, forms
// post here only), images from here and the logo's origin; no framing,
// except that the portal's lets console.frame_ancestors frame it.
func policies(cfg Config) (csp, portal string) {
	img := "'self'"
	if cfg.LogoURL != "" {
		if u, err := url.Parse(cfg.LogoURL); err == nil {
			img += " https://" + u.Host
		}
	}
	base := "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + img + "; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors "
	frame := "'none'"
	if len(cfg.FrameAncestors) > 0 {
		var list []string
		for _, o := range cfg.FrameAncestors {
			o, _ = origin(o) // Validate checked them
			list = append(list, o)
		}
		frame = strings.Join(list, " ")
	}
	return base + "'none'", base + frame
}

// ServeHTTP sets the security headers every response carries, and
// recovers from a panic with a 500 page: no request crashes the process.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.ErrorContext(r.Context(), "console handler panicked", "panic", v, "path", r.URL.Path)
			http.Error(w, "Internal error", http.StatusInternalServerError)
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// request is what a signed-in page handler gets.
type request struct {
	sess webhook.Session
	// scope is what the page shows: the user's own rows, or for an admin
	// everyone's or the picked user's.
	scope webhook.Scope
	// tenant is the picked user's id (admins), 0 for everyone.
	tenant int64
	id     string // the session id
}

type pageFunc func(w http.ResponseWriter, r *http.Request, rq *request) error

// errNotFound pages answer 404.
var errNotFound = webhook.ErrNotFound

// badRequest is a 400 with a message for the user.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// authed loads the session (or sends the browser to sign in), checks a
// state change's origin and synchronizer token, resolves the tenant, and
// turns the page's error into an error page.
func (h *Handler) authed(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := sessionID(r)
		var sess webhook.Session
		err := webhook.ErrUnauthenticated
		if id != "" {
			sess, err = h.deps.Store.Session(r.Context(), id)
		}
		// A portal session when the browser has no console session (an
		// iframe on another site never sends the SameSite=Strict one).
		pid := portalID(r)
		if errors.Is(err, webhook.ErrUnauthenticated) && pid != "" {
			h.allowFraming(w)
			id = pid
			sess, err = h.deps.Store.PortalSession(r.Context(), pid)
			if errors.Is(err, webhook.ErrUnauthenticated) {
				http.SetCookie(w, h.portalCookieOf("", time.Time{}))
				h.errorPage(w, r, nil, http.StatusForbidden, "This portal session has ended. Open the portal from the application again.")
				return
			}
		}
		if errors.Is(err, webhook.ErrUnauthenticated) {
			if r.Method != http.MethodGet {
				h.errorPage(w, r, nil, http.StatusForbidden, "Your session has ended. Sign in again.")
				return
			}
			w.Header().Set("HX-Redirect", "/sign-in")
			http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
			return
		}
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		rq := &request{sess: sess, id: id, scope: webhook.Scope{UserID: sess.User.ID}}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			var tooBig *http.MaxBytesError
			if err := r.ParseForm(); errors.As(err, &tooBig) {
				h.errorPage(w, r, rq, http.StatusBadRequest, fmt.Sprintf("This form is too large: at most %d KiB may be sent.", maxFormBytes>>10))
				return
			}
			if err := h.cross.Check(r); err != nil {
				h.errorPage(w, r, rq, http.StatusForbidden, "This form was sent from another site and was refused.")
				return
			}
			if !sameToken(r.PostFormValue("csrf"), sess.CSRF) && !sameToken(r.Header.Get("X-CSRF-Token"), sess.CSRF) {
				h.errorPage(w, r, rq, http.StatusForbidden, "This form is out of date or was not sent by the console. Reload the page and try again.")
				return
			}
		}
		if err := h.pickTenant(r, rq); err != nil {
			h.fail(w, r, rq, err)
			return
		}
		if err := fn(w, r, rq); err != nil {
			h.fail(w, r, rq, err)
		}
	})
}

// pickTenant reads ?user=ID. An admin sees everyone by default, or the
// picked user; anyone else may only name themselves (another id is a 404,
// as another user's rows are).
func (h *Handler) pickTenant(r *http.Request, rq *request) error {
	raw := r.URL.Query().Get("user")
	admin := rq.sess.User.Role == webhook.RoleAdmin
	if raw == "" {
		rq.scope.All = admin
		return nil
	}
	id, ok := parseID(raw)
	if !ok {
		return errNotFound
	}
	if !admin {
		if id != rq.sess.User.ID {
			return errNotFound
		}
		return nil
	}
	names, err := h.deps.Store.UserNames(r.Context())
	if err != nil {
		return err
	}
	if _, ok := names[id]; !ok {
		return errNotFound
	}
	rq.tenant, rq.scope = id, webhook.Scope{UserID: id}
	return nil
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// fail turns err into an error page: 404 for rows out of scope, 400 for
// bad input, 503 for an unavailable database, else 500 (logged).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var bad *badRequest
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		h.errorPage(w, r, rq, http.StatusNotFound, "Not found.")
	case errors.Is(err, webhook.ErrForbidden):
		h.errorPage(w, r, rq, http.StatusForbidden, "This portal may not do that.")
	case errors.As(err, &bad):
		h.errorPage(w, r, rq, http.StatusBadRequest, bad.msg)
	case errors.Is(err, webhook.ErrUnavailable):
		h.log.WarnContext(r.Context(), "console: database unavailable", "error", err, "path", r.URL.Path)
		h.errorPage(w, r, rq, http.StatusServiceUnavailable, "The database is unavailable; try again shortly.")
	default:
		h.log.ErrorContext(r.Context(), "console: request failed", "error", err, "path", r.URL.Path)
		h.errorPage(w, r, rq, http.StatusInternalServerError, "Something went wrong; the server's log says what.")
	}
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, rq *request, status int, msg string) {
	h.render(w, r, rq, status, "error", "Error", map[string]any{"Status": status, "Message": msg})
}

// view is what the layout template gets.
type view struct {
	Title string
	// Session is nil on the sign-in page.
	Session *webhook.Session
	// Users is the tenant picker's list (admins only), by name.
	Users []userOption
	// Tenant is the picked user's id, 0 for everyone.
	Tenant int64
	// TenantQuery is "user=ID" when a tenant is picked, to keep on links.
	TenantQuery string
	Path        string
	Data        any
	// AppName, Logo and Accent are the branding (Config).
	AppName, Logo string
	Accent        bool
}

type userOption struct {
	ID   int64
	Name string
}

// render executes page in the layout. Errors writing are the client's.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, rq *request, status int, page, title string, data any) {
	v := view{Title: title, Path: r.URL.Path, Data: data, AppName: h.cfg.AppName, Logo: h.cfg.LogoURL, Accent: h.cfg.AccentColor != ""}
	if rq != nil {
		v.Session = &rq.sess
		v.Tenant = rq.tenant
		if rq.tenant != 0 {
			v.TenantQuery = "user=" + strconv.FormatInt(rq.tenant, 10)
		}
		if rq.sess.User.Role == webhook.RoleAdmin {
			names, err := h.deps.Store.UserNames(r.Context())
			if err == nil {
				for id, n := range names {
					v.Users = append(v.Users, userOption{id, n})
				}
				sort.Slice(v.Users, func(i, j int) bool { return v.Users[i].Name < v.Users[j].Name })
			}
		}
	}
	t, ok := h.pages[page]
	if !ok {
		panic("console: no template " + page)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		h.log.WarnContext(r.Context(), "console: render", "page", page, "error", err)
	}
}

func parseID(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
