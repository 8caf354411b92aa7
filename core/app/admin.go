package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/retention"
	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/transform"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The operator CLI's side of the wiring: configuration loading and Admin,
// a node's database opened for the operator verbs. cmd/whisperer imports
// app alone; what it prints comes from here.

// DefaultConfigFile is the configuration file read when neither --config
// nor $WHISPERER_CONFIG names one.
const DefaultConfigFile = config.DefaultFile

// LoadConfig reads the configuration (see config.Load): file, or the
// "config" flag, $WHISPERER_CONFIG or DefaultConfigFile; the environment
// through getenv; then the flags of fs that are keys or that flagKeys maps
// to keys. fs may be nil.
func LoadConfig(file string, getenv func(string) string, fs *pflag.FlagSet, flagKeys map[string]string) (*config.Config, error) {
	return config.Load(config.LoadOptions{File: file, Getenv: getenv, Flags: fs, FlagKeys: flagKeys, Owned: OwnedDefaults})
}

// LoadConfigEnv is LoadConfig for a process's whole environment, environ
// ("NAME=value", as os.Environ gives it; a later entry wins): it also
// warns on warn, once, about each WHISPERER_* variable that is no
// setting, naming the closest one (a typo there would otherwise be
// silently ignored).
func LoadConfigEnv(environ []string, warn io.Writer, fs *pflag.FlagSet, flagKeys map[string]string) (*config.Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return config.Load(config.LoadOptions{
		Getenv: func(k string) string { return vars[k] }, Flags: fs, FlagKeys: flagKeys,
		Environ: environ, Warn: func(msg string) { fmt.Fprintln(warn, "whisperer: warning:", msg) },
		Owned: OwnedDefaults,
	})
}

// ValidateEventType reports whether name may be an event type.
func ValidateEventType(name string) error { return config.ValidateEventType(name) }

// GenerateKey returns a new encryption key for security.encryption_keys.
func GenerateKey() string { return secret.Generate() }

// PurgeCutoff is the creation time before which a purge of days deletes.
func PurgeCutoff(now time.Time, days int) time.Time { return retention.Cutoff(now, days) }

// sentinelWords reword, for a person, the texts of the domain's errors
// (webhook.ErrNotFound is "webhook: not found", a name for programs) that
// reach the CLI without an operator verb having worded them.
var sentinelWords = []struct {
	err  error
	text string
}{
	{webhook.ErrNotFound, "not found"},
	{webhook.ErrAlreadyExists, "already exists"},
	{webhook.ErrUnauthenticated, "invalid token"},
	{webhook.ErrForbidden, "permission denied"},
	{webhook.ErrUnavailable, "the database is unavailable"},
	{webhook.ErrInvalidPayload, "the payload is not valid JSON"},
	{webhook.ErrDelivered, "already delivered"},
	{webhook.ErrDelivering, "being delivered right now"},
	{&webhook.UnknownEventTypeError{}, "unknown event type"},
}

// ErrorText is err as the CLI prints it: what the verbs worded, with any
// domain error text left in it reworded for a person.
func ErrorText(err error) string {
	s := err.Error()
	for _, w := range sentinelWords {
		old := w.err.Error()
		if u, ok := w.err.(*webhook.UnknownEventTypeError); ok {
			old = strings.TrimSuffix(u.Error(), ` ""`)
		}
		s = strings.ReplaceAll(s, old, w.text)
	}
	return s
}

// openError names the database that could not be reached, and where its
// URL came from (never with a password), instead of the driver's words
// alone.
func openError(cfg *config.Config, err error) error {
	if err == nil || !errors.Is(err, webhook.ErrUnavailable) {
		return err
	}
	cause := strings.TrimPrefix(err.Error(), webhook.ErrUnavailable.Error()+": ")
	return &dbError{err: err, msg: fmt.Sprintf("cannot open the database %s (from %s): %s",
		cfg.Database.Redacted(), urlFrom(cfg), cause)}
}

// urlFrom says where database.url came from, for messages.
func urlFrom(cfg *config.Config) string {
	return cmp.Or(cfg.DatabaseURLFrom, "the default database.url "+cfg.Database.URL)
}

// dbError is err with the message a person reads; errors.Is still sees err.
type dbError struct {
	err error
	msg string
}

func (e *dbError) Error() string { return e.msg }
func (e *dbError) Unwrap() error { return e.err }

// Admin is a node's database opened for the operator verbs. It acts for
// every user, and never hands out a hook's secrets.
type Admin struct {
	cfg  *config.Config
	logw io.Writer
	s    *store.Store
}

// OpenAdmin opens and migrates the database, as a starting node does;
// logs go to logw.
func OpenAdmin(ctx context.Context, cfg *config.Config, logw io.Writer) (*Admin, error) {
	s, err := OpenStore(ctx, cfg, NewLogger(cfg.Log, logw))
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: cfg, logw: logw, s: s}, nil
}

// OpenAdminReadOnly is OpenAdmin for the verbs that only read: it neither
// creates the database (nor its key file) nor migrates it, and says what
// to do when there is none or its schema is behind.
func OpenAdminReadOnly(ctx context.Context, cfg *config.Config, logw io.Writer) (*Admin, error) {
	// A key file exists wherever the database was migrated; without one,
	// no sealed secret can be read, and Keyring would create it.
	var sealer store.Sealer
	if kf := KeyFile(cfg); kf == "" || len(cfg.Security.EncryptionKeys) > 0 || fileExists(kf) {
		keys, err := Keyring(cfg, NewLogger(cfg.Log, logw))
		if err != nil {
			return nil, err
		}
		sealer = keys
	}
	s, err := store.OpenExisting(ctx, cfg.Database.URL, store.Options{
		MaxOpenConns: cfg.Database.MaxOpenConns, Sealer: sealer,
	})
	from := urlFrom(cfg)
	if errors.Is(err, store.ErrNoDatabase) {
		return nil, fmt.Errorf("%w (from %s): run whisperer migrate first", err, from)
	} else if err != nil {
		return nil, openError(cfg, err)
	}
	pending, err := s.PendingMigrations(ctx)
	switch {
	case err != nil:
	case len(pending) > 0 && strings.HasPrefix(pending[0], "001_"):
		err = fmt.Errorf("the database %s (from %s) has no schema: run whisperer migrate first", cfg.Database.Redacted(), from)
	case len(pending) > 0:
		err = fmt.Errorf("the database %s (from %s) has an older schema, without migration(s) %s: run whisperer migrate first",
			cfg.Database.Redacted(), from, strings.Join(pending, ", "))
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Admin{cfg: cfg, logw: logw, s: s}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Close closes the database.
func (a *Admin) Close() error { return a.s.Close() }

// Dialect is the database's: "sqlite" or "postgres".
func (a *Admin) Dialect() string { return a.s.Dialect() }

// Migrate opens the database as OpenAdmin does, creating and migrating
// it, and says which migrations it applied, in order (none when it was up
// to date; from 001_init when it was empty).
func Migrate(ctx context.Context, cfg *config.Config, logw io.Writer) (*Admin, []string, error) {
	// Another node may migrate meanwhile: then this overstates what this
	// run applied, never misses one.
	s, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxOpenConns: 1})
	if err != nil {
		return nil, nil, openError(cfg, err)
	}
	pending, err := s.PendingMigrations(ctx)
	s.Close()
	if err != nil {
		return nil, nil, err
	}
	adm, err := OpenAdmin(ctx, cfg, logw)
	if err != nil {
		return nil, nil, err
	}
	return adm, pending, nil
}

// SealLegacySecrets seals now, rather than at the next start, the hooks
// an earlier release wrote in clear, logging progress at info.
func (a *Admin) SealLegacySecrets(ctx context.Context) error {
	return SealLegacySecrets(ctx, a.s, NewLogger(config.Log{Level: "info"}, a.logw))
}

// CreateUser creates a user with the role admin or publisher asks for
// (a plain user without either), and its first token.
func (a *Admin) CreateUser(ctx context.Context, name string, admin, publisher bool) (webhook.User, string, error) {
	role := webhook.RoleUser
	switch {
	case admin && publisher:
		return webhook.User{}, "", errors.New("choose one of --admin and --publisher")
	case admin:
		role = webhook.RoleAdmin
	case publisher:
		role = webhook.RolePublisher
	}
	u, err := a.s.CreateUser(ctx, name, role)
	if errors.Is(err, webhook.ErrAlreadyExists) {
		return u, "", fmt.Errorf("a user named %q already exists (whisperer tokens create %s gives it another token)", name, name)
	} else if err != nil {
		return u, "", err
	}
	tok, err := a.s.CreateToken(ctx, u.ID)
	return u, tok, err
}

// CreateToken issues a new token for the user named username.
func (a *Admin) CreateToken(ctx context.Context, username string) (webhook.User, string, error) {
	u, err := a.userByName(ctx, username)
	if err != nil {
		return u, "", err
	}
	tok, err := a.s.CreateToken(ctx, u.ID)
	return u, tok, err
}

// RevokeToken revokes a token, given whole or by its prefix.
func (a *Admin) RevokeToken(ctx context.Context, keyOrPrefix string) (int64, error) {
	return a.s.RevokeToken(ctx, keyOrPrefix)
}

// EventTypes lists, sorted, the event types in the database, the
// configured ones and the operational ones: those are added at the next
// start or migrate and are subscribable from then on.
func (a *Admin) EventTypes(ctx context.Context) ([]string, error) {
	names, err := a.s.EventTypes(ctx)
	if err != nil {
		return nil, err
	}
	names = append(append(names, a.cfg.EventTypes...), webhook.OpsEventTypes...)
	slices.Sort(names)
	return slices.Compact(names), nil
}

// AddEventTypes registers event types.
func (a *Admin) AddEventTypes(ctx context.Context, names ...string) error {
	return a.s.AddEventTypes(ctx, names...)
}

// RotateKeys re-encrypts every hook's secrets under the first configured
// key, batch hooks per transaction; progress gets the running count.
func (a *Admin) RotateKeys(ctx context.Context, batch int, progress func(done, total int64)) (store.SealProgress, error) {
	return a.s.SealSecrets(ctx, batch, func(p store.SealProgress) { progress(p.Done, p.Total) })
}

// CountPurgeable counts what a purge of the delivered events created
// before before would delete.
func (a *Admin) CountPurgeable(ctx context.Context, before time.Time) (webhook.Purged, error) {
	return a.s.CountPurgeable(ctx, before)
}

// Purge deletes the delivered events created before before, as the
// server's background purge of days does; progress gets the running
// totals.
func (a *Admin) Purge(ctx context.Context, days int, before time.Time, progress func(events, attempts, messages int64)) (webhook.Purged, error) {
	rc := RetentionConfig(a.cfg)
	rc.Days = days
	p, err := retention.New(rc, a.s, nil)
	if err != nil {
		return webhook.Purged{}, err
	}
	return p.Purge(ctx, before, func(sofar webhook.Purged) { progress(sofar.Events, sofar.Attempts, sofar.Messages) })
}

// EventInfo is a webhook event as an operator sees it.
type EventInfo struct {
	UUID          string          `json:"uuid"`
	WebhookID     int64           `json:"webhook_id"`
	TargetURL     string          `json:"target_url"`
	EventType     string          `json:"event_type"`
	State         webhook.State   `json:"state"`
	Failed        bool            `json:"failed"`
	Attempts      int             `json:"attempts"`
	LastStatus    *int            `json:"last_status"`
	CreatedAt     time.Time       `json:"created_at"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	AttemptLog    []AttemptInfo   `json:"attempt_log,omitempty"`
}

// AttemptInfo is one attempt, numbered from the first.
type AttemptInfo struct {
	Number     int       `json:"number"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	Body       string    `json:"body"`
}

func eventInfo(j webhook.Job, full bool) EventInfo {
	ev := j.Event
	out := EventInfo{
		UUID: ev.UUID, WebhookID: ev.WebhookID, TargetURL: webhook.RedactURL(j.Webhook.TargetURL), EventType: ev.EventType,
		State: ev.State, Attempts: ev.RetryCount, LastStatus: ev.ResponseHTTPStatus, CreatedAt: ev.CreatedAt,
		Failed: ev.State == webhook.StateGivenUp || (ev.State == webhook.StatePending && ev.RetryCount > ev.RetryBase),
	}
	if ev.State == webhook.StatePending {
		next := ev.NextAttemptAt
		out.NextAttemptAt = &next
	}
	if full {
		out.Payload = ev.Payload
		// The store gives attempts newest first; a log reads oldest first.
		for i, a := range slices.Backward(ev.Attempts) {
			out.AttemptLog = append(out.AttemptLog, AttemptInfo{
				Number: len(ev.Attempts) - i, At: a.AttemptedAt, Status: a.Status, Error: a.Error, Body: a.Body,
				DurationMS: float64(a.Duration.Microseconds()) / 1000,
			})
		}
	}
	return out
}

// Status is the state as a table shows it: a pending event that failed is
// "retrying".
func (ev EventInfo) Status() string {
	if ev.State == webhook.StatePending && ev.Failed {
		return "retrying"
	}
	return string(ev.State)
}

// Delivered reports whether the event was delivered.
func (ev EventInfo) Delivered() bool { return ev.State == webhook.StateDelivered }

// EventQuery selects events for Admin.Events.
type EventQuery struct {
	// Failed keeps the events given up or waiting for a retry after a
	// failure.
	Failed    bool
	Since     time.Time // created since; zero for any time
	WebhookID int64     // one hook's; zero for every hook's
	Limit     int
}

// Events lists events, newest first.
func (a *Admin) Events(ctx context.Context, q EventQuery) ([]EventInfo, error) {
	f := webhook.EventFilter{WebhookID: q.WebhookID, CreatedSince: q.Since}
	var jobs []webhook.Job
	var err error
	if q.Failed {
		jobs, err = a.s.FailedEvents(ctx, f, q.Limit)
	} else {
		jobs, _, err = a.s.ListEvents(ctx, webhook.Scope{All: true}, f, webhook.Page{Limit: q.Limit})
	}
	if err != nil {
		return nil, err
	}
	out := make([]EventInfo, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, eventInfo(j, false))
	}
	return out, nil
}

// Event returns an event with its payload and attempt log.
func (a *Admin) Event(ctx context.Context, uuid string) (EventInfo, error) {
	j, err := a.s.Event(ctx, webhook.Scope{All: true}, uuid)
	if errors.Is(err, webhook.ErrNotFound) {
		return EventInfo{}, fmt.Errorf("no event with uuid %s", uuid)
	} else if err != nil {
		return EventInfo{}, err
	}
	return eventInfo(j, true), nil
}

// Redeliver schedules an event for delivery now; force redelivers a
// delivered one.
func (a *Admin) Redeliver(ctx context.Context, uuid string, force bool) error {
	_, err := a.s.Redeliver(ctx, webhook.Scope{All: true}, uuid, force)
	var ev *webhook.EventError
	switch {
	case !errors.As(err, &ev):
	case errors.Is(err, webhook.ErrDelivering):
		//lint:ignore ST1005 the wording the CLI has always printed
		return fmt.Errorf("Event %s is being delivered right now, or was just delivered.", ev.UUID)
	case errors.Is(err, webhook.ErrDelivered): // since the CLI read it
		return fmt.Errorf("event %s is already delivered; pass --force to deliver it again", ev.UUID)
	}
	return err
}

// redeliverBatch is how many events one redelivery transaction schedules.
const redeliverBatch = 500

// RedeliverFailed schedules for delivery now every failed event created
// in [since, until) (until zero: now), of one hook if webhookID is not
// zero, batch by batch; progress gets the running count and the total.
func (a *Admin) RedeliverFailed(ctx context.Context, since, until time.Time, webhookID int64, progress func(done, total int64)) (int64, error) {
	f := webhook.RedeliverFilter{Since: since, Until: until, WebhookID: webhookID}
	sc := webhook.Scope{All: true}
	total, err := a.s.CountFailed(ctx, sc, f)
	if err != nil {
		return 0, err
	}
	var done, after int64
	for {
		n, next, err := a.s.RedeliverFailedBatch(ctx, sc, f, after, redeliverBatch)
		if err != nil {
			return done, fmt.Errorf("after %d of %d: %w", done, total, err)
		}
		done += n
		progress(done, total)
		if after = next; after == 0 {
			return done, nil
		}
	}
}

// HookInfo is a hook as an operator sees it. Secrets, header values and
// basic-auth passwords are left out: only whether they are set.
type HookInfo struct {
	ID             int64                   `json:"id"`
	UserID         int64                   `json:"user_id"`
	User           string                  `json:"user"`
	EventType      string                  `json:"event_type"`
	TargetURL      string                  `json:"target_url"`
	IsActive       bool                    `json:"is_active"`
	RetryCountdown webhook.CountdownConfig `json:"retry_countdown_config"`
	Callback       string                  `json:"callback,omitempty"`
	HasSecret      bool                    `json:"has_secret"`
	BasicAuth      bool                    `json:"basic_auth"`
	HeaderNames    []string                `json:"additional_header_names"`
	CreatedAt      time.Time               `json:"created_at"`
	ModifiedAt     time.Time               `json:"modified_at"`
	DisabledReason string                  `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time              `json:"disabled_at,omitempty"`
	FailingSince   *time.Time              `json:"failing_since,omitempty"`
	RecentEvents   []EventInfo             `json:"recent_events,omitempty"`
}

func hookInfo(w webhook.Webhook, users map[int64]string) HookInfo {
	names := make([]string, 0, len(w.AdditionalHeaders))
	for k := range w.AdditionalHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	_, basic := w.BasicAuth()
	return HookInfo{
		ID: w.ID, UserID: w.UserID, User: users[w.UserID], EventType: w.EventType, TargetURL: webhook.RedactURL(w.TargetURL),
		IsActive: w.IsActive, RetryCountdown: w.RetryCountdown, Callback: w.Callback,
		HasSecret: w.SecretKey != "", BasicAuth: basic, HeaderNames: names,
		CreatedAt: w.CreatedAt, ModifiedAt: w.ModifiedAt,
		DisabledReason: w.DisabledReason, DisabledAt: w.DisabledAt, FailingSince: w.FailingSince,
	}
}

// HookQuery selects hooks for Admin.Hooks; zero fields select all.
type HookQuery struct {
	User      string // the user's name
	EventType string
	Inactive  bool // only deactivated hooks
}

// Hooks lists hooks, newest first.
func (a *Admin) Hooks(ctx context.Context, q HookQuery) ([]HookInfo, error) {
	sc := webhook.Scope{All: true}
	if q.User != "" {
		u, err := a.userByName(ctx, q.User)
		if err != nil {
			return nil, err
		}
		sc = webhook.Scope{UserID: u.ID}
	}
	f := webhook.HookFilter{EventType: q.EventType}
	if q.Inactive {
		f.IsActive = new(bool)
	}
	users, err := a.s.UserNames(ctx)
	if err != nil {
		return nil, err
	}
	out := []HookInfo{}
	p := webhook.Page{Limit: 1000}
	for {
		hooks, info, err := a.s.ListWebhooks(ctx, sc, f, p)
		if err != nil {
			return nil, err
		}
		for _, h := range hooks {
			out = append(out, hookInfo(h, users))
		}
		if !info.HasNext || len(hooks) == 0 {
			return out, nil
		}
		p.Before = hooks[len(hooks)-1].ID
	}
}

func (a *Admin) hook(ctx context.Context, id int64) (webhook.Webhook, error) {
	h, err := a.s.Webhook(ctx, webhook.Scope{All: true}, id)
	if errors.Is(err, webhook.ErrNotFound) {
		return h, fmt.Errorf("no hook with id %d", id)
	}
	return h, err
}

// Hook returns a hook with its recent events, newest first.
func (a *Admin) Hook(ctx context.Context, id int64, recent int) (HookInfo, error) {
	h, err := a.hook(ctx, id)
	if err != nil {
		return HookInfo{}, err
	}
	users, err := a.s.UserNames(ctx)
	if err != nil {
		return HookInfo{}, err
	}
	jobs, _, err := a.s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{WebhookID: id}, webhook.Page{Limit: recent})
	if err != nil {
		return HookInfo{}, err
	}
	out := hookInfo(h, users)
	for _, j := range jobs {
		out.RecentEvents = append(out.RecentEvents, eventInfo(j, false))
	}
	return out, nil
}

// SetHookActive activates or deactivates a hook; changed is false when it
// already was.
func (a *Admin) SetHookActive(ctx context.Context, id int64, active bool) (h HookInfo, changed bool, err error) {
	w, err := a.hook(ctx, id)
	if err != nil {
		return HookInfo{}, false, err
	}
	if w.IsActive == active {
		return hookInfo(w, nil), false, nil
	}
	w.IsActive = active
	if _, err := a.s.UpdateWebhook(ctx, webhook.Scope{All: true}, w, true); err != nil {
		return HookInfo{}, false, err
	}
	return hookInfo(w, nil), true, nil
}

// quietLogger logs only at level and above, in the configured format.
func quietLogger(cfg *config.Config, level string, w io.Writer) *slog.Logger {
	return NewLogger(config.Log{Level: level, Format: cfg.Log.Format}, w)
}

// loadPlugins starts a host over the plugin directory that registers into
// cd and real, fresh registries, so that a key two files declare is
// reported as serve would. Errors are logged to logw.
func loadPlugins(ctx context.Context, cfg *config.Config, cd *countdown.Registry, logw io.Writer) (*plugin.Host, error) {
	h, err := plugin.New(PluginConfig(cfg), RegistrySink(cd, &callback.Registry{}), quietLogger(cfg, "error", logw))
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		return nil, errors.Join(err, h.Stop(context.WithoutCancel(ctx)))
	}
	return h, nil
}

// PluginReport is what the plugin verbs say of one file. They load the
// plugins in their own process, so Valid means the file loads and
// registers (what serve would do with it), not that a server serves it:
// GET /whisperer/plugins/ answers that, with loaded and loaded_at.
type PluginReport struct {
	File       string   `json:"file"`
	Name       string   `json:"name,omitempty"`
	SHA256     string   `json:"sha256,omitempty"`
	Countdowns []string `json:"countdowns"`
	Callbacks  []string `json:"callbacks"`
	Filters    []string `json:"filters"`
	Transforms []string `json:"transforms"`
	Valid      bool     `json:"valid"`
	Error      string   `json:"error,omitempty"`
}

func pluginReport(in plugin.Info, valid bool) PluginReport {
	return PluginReport{File: in.File, Name: in.Name, SHA256: in.SHA256, Countdowns: in.Countdowns,
		Callbacks: in.Callbacks, Filters: in.Filters, Transforms: in.Transforms, Valid: valid && in.Error == "", Error: in.Error}
}

// ListPlugins loads the plugin directory and says what each file
// registers, or what is wrong with it, sorted by file.
func ListPlugins(ctx context.Context, cfg *config.Config, logw io.Writer) ([]PluginReport, error) {
	h, err := loadPlugins(ctx, cfg, countdown.NewRegistry(), logw)
	if err != nil {
		return nil, err
	}
	infos := h.Plugins()
	if err := h.Stop(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	out := make([]PluginReport, len(infos))
	for i, in := range infos {
		out[i] = pluginReport(in, in.Loaded)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// CheckPlugin loads one plugin file and says what it registers.
func CheckPlugin(ctx context.Context, cfg *config.Config, file string, logw io.Writer) (PluginReport, error) {
	in, err := plugin.Check(ctx, PluginConfig(cfg), file, quietLogger(cfg, "warn", logw))
	return pluginReport(in, err == nil), err
}

// Schedule is a countdown's retry schedule: Waits[n] is the wait before
// attempt n+2.
type Schedule struct {
	Choice string
	Kwargs json.RawMessage
	Waits  []time.Duration
}

// PreviewCountdown computes the waits between the attempts of a series of
// attempts for the countdown choice with kwargs, as the dispatcher
// schedules them. Plugin countdowns load the plugin directory.
func PreviewCountdown(ctx context.Context, cfg *config.Config, choice string, kwargs json.RawMessage, attempts int, logw io.Writer) (Schedule, error) {
	reg := countdown.NewRegistry()
	if _, builtin := reg.Lookup(choice); !builtin {
		h, err := loadPlugins(ctx, cfg, reg, logw)
		if err != nil {
			return Schedule{}, err
		}
		defer h.Stop(context.WithoutCancel(ctx))
	}
	cd, err := reg.Validate(ctx, webhook.CountdownConfig{Choice: choice, Kwargs: kwargs})
	var verr *webhook.ValidationError
	if errors.As(err, &verr) {
		msg := "\n  " + strings.Join(verr.Messages(), "\n  ")
		if _, ok := verr.Fields["choice"]; ok {
			msg += fmt.Sprintf("\n  (registered: %s; plugins from %s)", strings.Join(reg.Keys(), ", "), cfg.Plugins.Dir)
		}
		return Schedule{}, fmt.Errorf("invalid retry_countdown_config:%s", msg)
	} else if err != nil {
		return Schedule{}, err
	}
	s := Schedule{Choice: cd.Choice, Kwargs: cd.Kwargs}
	for n := 0; n < attempts-1; n++ {
		w, err := reg.Wait(ctx, cd, n)
		if err != nil {
			return Schedule{}, fmt.Errorf("after %d retries: %w", n, err)
		}
		s.Waits = append(s.Waits, w)
	}
	return s, nil
}

// OpenDB opens the database at url as it is, neither migrated nor able to
// read a sealed secret, for a tool that inspects a node's tables (the
// benchmark's checks); dialect is "sqlite" or "postgres". Closing db
// closes it.
func OpenDB(ctx context.Context, url string, maxOpenConns int) (db *bun.DB, dialect string, err error) {
	s, err := store.Open(ctx, url, store.Options{MaxOpenConns: maxOpenConns})
	if err != nil {
		return nil, "", err
	}
	return s.DB(), s.Dialect(), nil
}

func (a *Admin) userByName(ctx context.Context, name string) (webhook.User, error) {
	u, err := a.s.UserByName(ctx, name)
	if errors.Is(err, webhook.ErrNotFound) {
		return u, fmt.Errorf("no user named %q (whisperer users list shows them)", name)
	}
	return u, err
}

// UserInfo is a user as an operator sees it.
type UserInfo struct {
	ID         int64        `json:"id"`
	Username   string       `json:"username"`
	Role       webhook.Role `json:"role"`
	CreatedAt  time.Time    `json:"created_at"`
	LiveTokens int          `json:"live_tokens"`
}

// Users lists every user by name, with its count of live tokens.
func (a *Admin) Users(ctx context.Context) ([]UserInfo, error) {
	us, err := a.s.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, len(us))
	for i, u := range us {
		out[i] = UserInfo{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, LiveTokens: u.LiveTokens}
	}
	return out, nil
}

// TokenInfo is what an operator may see of a token: its first 8
// characters (what tokens revoke takes), never the key or its hash.
// Whisperer does not record when a token was last used.
type TokenInfo struct {
	Prefix    string     `json:"prefix"`
	User      string     `json:"user"`
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// Tokens lists the tokens of the user named user (every user's when
// empty), revoked ones included, oldest first.
func (a *Admin) Tokens(ctx context.Context, user string) ([]TokenInfo, error) {
	if user != "" {
		if _, err := a.userByName(ctx, user); err != nil {
			return nil, err
		}
	}
	ts, err := a.s.Tokens(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, len(ts))
	for i, t := range ts {
		out[i] = TokenInfo{Prefix: t.Prefix, User: t.Username, CreatedAt: t.CreatedAt, Revoked: t.RevokedAt != nil, RevokedAt: t.RevokedAt}
	}
	return out, nil
}

// HookTest is a dry run's answer: what the hook's receiver would get for
// an event, without sending anything or writing a row (whisperer hooks
// test; the API's POST hooks/{id}/test/ answers the same).
type HookTest struct {
	Hook       int64  `json:"hook"`
	EventType  string `json:"event_type"`
	Deliver    bool   `json:"deliver"`
	Reason     string `json:"reason"`
	FilteredBy string `json:"filtered_by,omitempty"`
	// FilterError is why the hook's plugin filter failed (fan-out then
	// delivers).
	FilterError string `json:"filter_error,omitempty"`
	// Transform names the hook's transform; TransformError is why it
	// leaves nothing to send (it failed or cancelled): Headers and Body
	// are then empty.
	Transform      string              `json:"transform,omitempty"`
	TransformError string              `json:"transform_error,omitempty"`
	Method         string              `json:"method"`
	URL            string              `json:"url"`
	Headers        map[string][]string `json:"headers"`
	Body           string              `json:"body"`
}

// TestHook is the dry run of payload (JSON) as eventType ("" for the
// hook's own) for hook id: the filter's verdict and the exact request,
// signed as the sender signs it. An operator sees every header value.
func (a *Admin) TestHook(ctx context.Context, id int64, eventType string, payload []byte) (HookTest, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err != nil {
		return HookTest{}, fmt.Errorf("the payload is not JSON: %v", err)
	}
	h, err := a.hook(ctx, id)
	if err != nil {
		return HookTest{}, err
	}
	if eventType == "" {
		eventType = h.EventType
	}
	filters, transforms := &filter.Registry{}, &transform.Registry{}
	if pluginFilter(&h) || h.Transform != nil {
		// The plugins are loaded as serve loads them, here and for this
		// run only: a dry run must run the same filter and transform.
		host, err := plugin.New(PluginConfig(a.cfg), registrySink{countdown.NewRegistry(), &callback.Registry{}, filters, transforms},
			quietLogger(a.cfg, "error", a.logw))
		if err != nil {
			return HookTest{}, err
		}
		if err := host.Start(ctx); err != nil {
			return HookTest{}, errors.Join(err, host.Stop(context.WithoutCancel(ctx)))
		}
		defer func() { _ = host.Stop(context.WithoutCancel(ctx)) }()
	}
	v := filter.Check(ctx, &h, eventType, compact.Bytes(), filters)
	var uuid [16]byte
	_, _ = rand.Read(uuid[:])
	ev := webhook.Event{UUID: hex.EncodeToString(uuid[:]), EventType: eventType, Payload: compact.Bytes(), WebhookID: h.ID}
	out := HookTest{Hook: h.ID, EventType: eventType, Deliver: v.Deliver, Reason: v.Reason, FilteredBy: v.FilteredBy,
		FilterError: v.PluginError, Method: "POST", URL: webhook.RedactURL(h.TargetURL)}
	if h.Transform != nil {
		out.Transform = h.Transform.Name
	}
	body, header, err := delivery.Preview(ctx, transforms, &h, &ev, time.Now())
	if err != nil {
		out.TransformError = err.Error()
		return out, nil
	}
	out.Headers, out.Body = header, string(body)
	return out, nil
}

// pluginFilter reports whether h's filter names a plugin filter.
func pluginFilter(h *webhook.Webhook) bool {
	f, err := filter.Parse(h.Filter)
	if len(h.Filter) == 0 || err != nil {
		return false
	}
	name, _ := f.Plugin()
	return name != ""
}
