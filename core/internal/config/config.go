// Package config loads Whisperer's configuration: built-in defaults, then a
// YAML file, then WHISPERER_* environment variables, then explicit flags,
// into plain structs that the rest of the server reads.
//
// koanf does the layering. Decoding goes through one table of known keys
// (Config.fields in load.go) instead of mapstructure, so that every bad value is reported
// as "key: what was expected, got what" and the same table drives the
// environment variable names, the unknown-key check and the documentation
// test that keeps config.koanf.yaml in step with the defaults.
//
// A setting a package consumes is defaulted by that package alone (its
// Config.WithDefaults). This package does not import its siblings (only
// core/app wires them), so it writes no default of theirs: Load and
// Default take them from an Owned function, which core/app builds from the
// packages' WithDefaults. TestDocumentedDefaultsAreThePackages fails when
// config.koanf.yaml and a package's defaults disagree.
package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Config is the whole configuration. Load fills it; code that builds one
// by hand starts from Default and then calls Validate.
type Config struct {
	Server   Server
	Database Database
	// RequestTimeout bounds each delivery request (key request_timeout).
	// Defaults to 10s for connect and 10s for read.
	RequestTimeout RequestTimeout
	Delivery       Delivery
	Plugins        Plugins
	// EventTypes are the event type names hooks may subscribe to and
	// publishers may publish (key event_types); more can be added with the
	// CLI. Defaults to ["package-created", "order-created"], the names
	// dj-whisperer's documentation uses, so its examples work as written.
	EventTypes []string
	Log        Log
	Retention  Retention
	Security   Security
	Limits     Limits
	Console    Console

	// Source is the configuration file Load read, empty when none. It is
	// not a configuration key.
	Source string
	// DatabaseURLFrom says where database.url came from, for messages:
	// "database.url sqlite://w.db in /etc/whisperer/config.koanf.yaml",
	// "WHISPERER_DATABASE_URL=…" or "--database-url …"; empty for the
	// default. It is not a configuration key.
	DatabaseURLFrom string
}

// Server is the HTTP API server.
type Server struct {
	// Addr is the host:port to listen on. Defaults to "127.0.0.1:8000".
	Addr string
	// BasePath prefixes every API route; it starts and ends with "/".
	// Defaults to "/whisperer/".
	BasePath string
	// MaxBodyBytes caps a request body; larger ones get 413. Defaults to
	// 1 MiB.
	MaxBodyBytes int64
	// ReadTimeout is http.Server's ReadTimeout; 0 means none. Defaults to
	// 30s.
	ReadTimeout time.Duration
	// WriteTimeout is http.Server's WriteTimeout; 0 means none. It must
	// leave room for publishing with "async": false, which waits for a
	// delivery. Defaults to 60s.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown, draining in-flight
	// deliveries included. Defaults to 30s.
	ShutdownTimeout time.Duration
	// PublicURL is the scheme://host[:port][/prefix] clients reach the API
	// at (behind a proxy, the proxy's); list pages' next and previous links
	// start with it. Empty makes them relative (path and query): never
	// built from the request's Host header. Defaults to empty.
	PublicURL string
	// TLSCert and TLSKey are PEM files: set both and the server speaks
	// HTTPS itself (TLS 1.2+, HTTP/2), reading them again on SIGHUP. Empty:
	// plain HTTP, for a TLS-terminating proxy in front (docs/DEPLOYING.md).
	TLSCert string
	TLSKey  string
	// AuthCacheTTL is how long a verified API token is remembered, sparing
	// a database query per request. Revocations by other processes are
	// honoured at once on SQLite and on notification on PostgreSQL (see
	// store.Options). 0 disables the cache. Defaults to 10s.
	AuthCacheTTL time.Duration
}

// Database is where hooks, events and the delivery queue live.
type Database struct {
	// URL is sqlite://PATH (a relative or, with three slashes, absolute
	// file path) or postgres://… / postgresql://… (a libpq URL). Defaults
	// to "sqlite://whisperer.db". Load makes a relative PATH from a config
	// file absolute, against the file's directory.
	URL string
	// MaxOpenConns caps the PostgreSQL connection pool; SQLite is a single
	// writer and the store sizes its own pool. Defaults to 20.
	MaxOpenConns int
}

// RequestTimeout is request_timeout: a single number of seconds applies to
// both connect and read, or a [connect, read] pair, like dj-whisperer's
// WHISPERER_REQUEST_TIMEOUT.
type RequestTimeout struct {
	// Connect bounds dialing, TLS included. Defaults to 10s.
	Connect time.Duration
	// Read bounds waiting for and reading the response. Defaults to 10s.
	Read time.Duration
}

// Total is the longest one delivery request can take.
func (t RequestTimeout) Total() time.Duration { return t.Connect + t.Read }

// Delivery is the dispatcher.
type Delivery struct {
	// Workers is how many deliveries run at once on this node. Defaults
	// to 64.
	Workers int
	// BatchSize is how many due events one claim takes. Defaults to 100.
	BatchSize int
	// MaxRetries is how many attempts an event gets before it is given up,
	// dj-whisperer's MAX_RETRY_COUNT. Defaults to 18.
	MaxRetries int
	// DefaultRetryCountdown applies to hooks registered without a
	// retry_countdown_config. Defaults to exponential with base 2.
	DefaultRetryCountdown webhook.CountdownConfig
	// MaxResponseBytes is how much of a response body an attempt keeps.
	// Defaults to 65536.
	MaxResponseBytes int
	// AllowNetworks are CIDRs deliveries may reach even though they are
	// loopback, private, link-local or otherwise non-public; by default
	// only public addresses are reachable (SSRF). Defaults to none.
	AllowNetworks []string
	// DenyNetworks are CIDRs deliveries never reach, public or allowed.
	// Defaults to none.
	DenyNetworks []string
	// Lease is how long a claimed event belongs to this node. A dispatcher
	// claims one batch ahead, so an event may wait one attempt before its
	// own: the lease must cover two requests or another node would deliver
	// it again. Zero derives it. Defaults to 2×RequestTimeout.Total() + 30s.
	Lease time.Duration
	// PollInterval is how often dispatchers look for due retries; new
	// events wake them at once. Defaults to 1s.
	PollInterval time.Duration
	// CallbackWorkers is how many post-delivery callbacks run at once.
	// Defaults to 8.
	CallbackWorkers int
	// DisableAfter deactivates a hook whose deliveries have failed without
	// a success for this long, so dead endpoints stop being hammered; 0
	// never deactivates. Defaults to 120h (5 days).
	DisableAfter time.Duration
}

// Plugins is the WebAssembly plugin host: the keys plugins.* of
// plugin.Config, which documents each and owns its default.
type Plugins struct {
	Dir             string
	CacheDir        string
	CallTimeout     time.Duration
	CallbackTimeout time.Duration
	MemoryLimitMB   int
	PoolSize        int
	IdleTimeout     time.Duration
}

// Retention is the background purge of old delivered events.
type Retention struct {
	// Days is how long delivered events, their attempts and the messages
	// only they referenced are kept; 0 keeps them forever. Pending and
	// given-up events are never purged: they can still be redelivered.
	// Defaults to 30.
	Days int
	// Interval is how often a purge runs. Defaults to 1h.
	Interval time.Duration
	// BatchSize is how many events one purge transaction deletes; small
	// batches keep locks short. Defaults to 1000.
	BatchSize int
}

// Security is the encryption of secrets at rest and secret rotation.
type Security struct {
	// EncryptionKeys are AES-256 keys, each standard base64 of 32 bytes
	// (`whisperer keys generate` makes one; one byte repeated, e.g. all
	// zero, is refused). The first encrypts hooks'
	// secrets; every one decrypts, so a new key goes first and the old
	// one stays until `whisperer keys rotate` has re-encrypted every row.
	// Empty on SQLite means a key file beside the database (created 0600
	// on first start); PostgreSQL nodes refuse to start without a key.
	// Defaults to none. Never logged.
	EncryptionKeys []string
	// SecretRotationOverlap is how long a hook's old secret keeps signing
	// deliveries (next to the new one) after a PATCH with "rotate": true.
	// Defaults to 24h.
	SecretRotationOverlap time.Duration
}

// Limits bound what one API client can make the server store and serve.
// The sizes of hook fields are fixed; docs/API.md lists them.
type Limits struct {
	// HooksPerUser is how many hooks, active or deactivated, one user may
	// register; creating another is a 400. Defaults to 1000.
	HooksPerUser int
	// MaxPageSize caps a list's page_size query parameter, from 1 to
	// 1000. Defaults to 1000.
	MaxPageSize int
}

// Console is the web console served at "/" on the API's address
// (docs/CONSOLE.md).
type Console struct {
	// Disabled turns the console off (key console.enabled, inverted so
	// that the zero value is the default: on).
	Disabled bool
	// SessionTTL is how long a console session lasts after sign-in, from
	// 1m to 720h. Defaults to 12h.
	SessionTTL time.Duration
	// FrameAncestors, AppName, LogoURL and AccentColor are the tenant
	// portal's framing and the console's branding; console.Config owns
	// their defaults and checks them.
	FrameAncestors                []string
	AppName, LogoURL, AccentColor string
}

// Log is the server's structured log.
type Log struct {
	// Level is debug, info, warn or error. Defaults to "info".
	Level string
	// Format is text or json. Defaults to "text".
	Format string
}

// Owned fills the settings other packages own with those packages'
// defaults: core/app's OwnedDefaults, from each package's WithDefaults.
type Owned func(*Config)

// Default returns the defaults: this package's own, then owned's.
func Default(owned Owned) *Config {
	c := defaults()
	if owned != nil {
		owned(c)
	}
	c.derive()
	return c
}

// defaults are the values of the settings no other package owns: where
// to listen and how long to wait, the database's URL, the event types,
// logging, the encryption keys, what the console shows.
func defaults() *Config {
	return &Config{
		Server: Server{
			Addr:            "127.0.0.1:8000",
			ReadTimeout:     30 * time.Second,
			WriteTimeout:    60 * time.Second,
			ShutdownTimeout: 30 * time.Second,
			AuthCacheTTL:    10 * time.Second,
		},
		Database:   Database{URL: "sqlite://whisperer.db"},
		Delivery:   Delivery{DisableAfter: 120 * time.Hour},
		EventTypes: []string{"package-created", "order-created"},
		Log:        Log{Level: "info", Format: "text"},
		Retention:  Retention{Days: 30},
		Security:   Security{EncryptionKeys: []string{}},
	}
}

// derive fills the values that depend on others. The lease, when not
// set, is the dispatcher's to derive (delivery.Config.WithDefaults).
func (c *Config) derive() {
	if len(c.Delivery.DefaultRetryCountdown.Kwargs) == 0 {
		c.Delivery.DefaultRetryCountdown.Kwargs = json.RawMessage(`{}`)
	}
}

// Error is one bad configuration value.
type Error struct {
	// Key is the dotted key, with an index for list elements:
	// "delivery.allow_networks[1]".
	Key string
	// Problem says what is expected, in words a user can act on.
	Problem string
}

func (e *Error) Error() string { return e.Key + ": " + e.Problem }

func errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// Validate reports every bad value in c, each an *Error naming its key,
// joined with errors.Join. It expects derived values (see Default).
func (c *Config) Validate() error {
	var errs []error
	add := func(err *Error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	if _, _, err := net.SplitHostPort(c.Server.Addr); err != nil {
		add(errorf("server.addr", "expected host:port, got %q", c.Server.Addr))
	}
	if !strings.HasPrefix(c.Server.BasePath, "/") || !strings.HasSuffix(c.Server.BasePath, "/") {
		add(errorf("server.base_path", "must start and end with \"/\", got %q", c.Server.BasePath))
	}
	add(atLeast("server.max_body_bytes", c.Server.MaxBodyBytes, 1))
	if c.Server.PublicURL != "" {
		u, err := url.Parse(c.Server.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(c.Server.PublicURL, " \\") {
			add(errorf("server.public_url", "expected http(s)://host[:port][/path] without user, query or fragment, got %q", c.Server.PublicURL))
		}
	}
	if c.Server.AuthCacheTTL < 0 {
		add(errorf("server.auth_cache_ttl", "must not be negative, got %v", c.Server.AuthCacheTTL))
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		add(errorf("server.tls_cert", "and server.tls_key go together: set both (PEM files) or neither"))
	}
	add(notNegative("server.read_timeout", c.Server.ReadTimeout))
	add(notNegative("server.write_timeout", c.Server.WriteTimeout))
	add(positive("server.shutdown_timeout", c.Server.ShutdownTimeout))

	if _, err := c.Database.DSN(); err != nil {
		errs = append(errs, err)
	}
	add(atLeast("database.max_open_conns", c.Database.MaxOpenConns, 1))

	if rt := c.RequestTimeout; rt.Connect <= 0 || rt.Read <= 0 {
		add(errorf("request_timeout", "connect and read must be positive, got [%v, %v]", rt.Connect, rt.Read))
	}

	d := c.Delivery
	add(atLeast("delivery.workers", d.Workers, 1))
	add(atLeast("delivery.batch_size", d.BatchSize, 1))
	add(atLeast("delivery.max_retries", d.MaxRetries, 1))
	if d.DefaultRetryCountdown.Choice == "" {
		add(errorf("delivery.default_retry_countdown.choice", "must name a countdown, e.g. \"exponential\""))
	}
	var kw map[string]any
	if err := json.Unmarshal(d.DefaultRetryCountdown.Kwargs, &kw); err != nil || kw == nil {
		add(errorf("delivery.default_retry_countdown.kwargs", "expected an object, got %s", d.DefaultRetryCountdown.Kwargs))
	}
	add(atLeast("delivery.max_response_bytes", d.MaxResponseBytes, 0))
	errs = append(errs, validateCIDRs("delivery.allow_networks", d.AllowNetworks)...)
	errs = append(errs, validateCIDRs("delivery.deny_networks", d.DenyNetworks)...)
	// Two requests (the claim-ahead), a countdown plugin call and a second
	// to write the result back: a shorter lease could expire while the
	// event is still being delivered, and another claim would send it again.
	if least := 2*c.RequestTimeout.Total() + c.Plugins.CallTimeout + time.Second; d.Lease != 0 && d.Lease < least {
		add(errorf("delivery.lease", "must be at least twice request_timeout connect + read, plus plugins.call_timeout and 1s (%v), got %v", least, d.Lease))
	}
	add(positive("delivery.poll_interval", d.PollInterval))
	add(atLeast("delivery.callback_workers", d.CallbackWorkers, 1))
	add(notNegative("delivery.disable_after", d.DisableAfter))

	if c.Plugins.Dir == "" {
		add(errorf("plugins.dir", "must not be empty"))
	}
	add(positive("plugins.call_timeout", c.Plugins.CallTimeout))
	add(positive("plugins.callback_timeout", c.Plugins.CallbackTimeout))
	// The plugin host packs ptr<<32|len into a positive i64 (sdk/ABI.md), so
	// guest memory stays within 2 GiB.
	if m := c.Plugins.MemoryLimitMB; m < 1 || m > 2048 {
		add(errorf("plugins.memory_limit_mb", "must be between 1 and 2048, got %d", m))
	}
	add(atLeast("plugins.pool_size", c.Plugins.PoolSize, 1))
	add(positive("plugins.idle_timeout", c.Plugins.IdleTimeout))

	seen := make(map[string]bool, len(c.EventTypes))
	for i, name := range c.EventTypes {
		key := fmt.Sprintf("event_types[%d]", i)
		if err := ValidateEventType(name); err != nil {
			add(errorf(key, "%v", err))
		} else if seen[name] {
			add(errorf(key, "%q is listed twice", name))
		}
		seen[name] = true
	}

	if _, ok := logLevels[c.Log.Level]; !ok {
		add(errorf("log.level", "expected debug, info, warn or error, got %q", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add(errorf("log.format", "expected text or json, got %q", c.Log.Format))
	}
	add(atLeast("retention.days", c.Retention.Days, 0))
	add(positive("retention.interval", c.Retention.Interval))
	add(atLeast("retention.batch_size", c.Retention.BatchSize, 1))

	// Checked here so a bad key is a config error; core/internal/secret parses them.
	// The messages never quote a key.
	keys := map[string]int{}
	for i, k := range c.Security.EncryptionKeys {
		key := fmt.Sprintf("security.encryption_keys[%d]", i)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		switch {
		case err != nil:
			add(errorf(key, "expected standard base64 of 32 bytes (make a key with `whisperer keys generate`), got text that is not base64"))
		case len(raw) != 32:
			add(errorf(key, "expected standard base64 of 32 bytes (make a key with `whisperer keys generate`), got %d bytes", len(raw)))
		case bytes.Count(raw, raw[:1]) == len(raw):
			// All zero (or one byte repeated) is a placeholder, not a key.
			add(errorf(key, "is not a random key: its 32 bytes are all the same (make a key with `whisperer keys generate`)"))
		default:
			if j, dup := keys[string(raw)]; dup {
				add(errorf(key, "is the same key as security.encryption_keys[%d]", j))
			}
			keys[string(raw)] = i
		}
	}
	add(positive("security.secret_rotation_overlap", c.Security.SecretRotationOverlap))
	add(atLeast("limits.hooks_per_user", c.Limits.HooksPerUser, 1))
	if n := c.Limits.MaxPageSize; n < 1 || n > 1000 {
		add(errorf("limits.max_page_size", "must be between 1 and 1000, got %d", n))
	}
	if ttl := c.Console.SessionTTL; ttl < time.Minute || ttl > 720*time.Hour {
		add(errorf("console.session_ttl", "must be between 1m and 720h, got %v", ttl))
	}
	if !c.Console.Disabled && c.Server.BasePath == "/" {
		add(errorf("console.enabled", "the console is served at \"/\", so it needs server.base_path other than \"/\" (or console.enabled: false)"))
	}
	return errors.Join(errs...)
}

// ValidateEventType reports why name cannot be an event type: it must be
// 1 to 255 characters of valid UTF-8 with no whitespace or control
// characters. The API and the CLI use it for names added at run time.
func ValidateEventType(name string) error {
	switch {
	case name == "":
		return errors.New("event type must not be empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("event type %q is not valid UTF-8", name)
	case utf8.RuneCountInString(name) > 255:
		return fmt.Errorf("event type %.20q… is longer than 255 characters", name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("event type %q must not contain whitespace or control characters", name)
	case webhook.Reserved(name):
		return fmt.Errorf("event type %q is reserved: types starting with %q are Whisperer's operational events", name, webhook.OpsPrefix)
	}
	return nil
}

func atLeast[T int | int64](key string, v, min T) *Error {
	if v < min {
		return errorf(key, "must be at least %d, got %d", min, v)
	}
	return nil
}

func positive(key string, d time.Duration) *Error {
	if d <= 0 {
		return errorf(key, "must be a positive duration, got %v", d)
	}
	return nil
}

func notNegative(key string, d time.Duration) *Error {
	if d < 0 {
		return errorf(key, "must not be negative, got %v", d)
	}
	return nil
}

func validateCIDRs(key string, cidrs []string) []error {
	var errs []error
	for i, s := range cidrs {
		if _, err := netip.ParsePrefix(s); err != nil {
			errs = append(errs, errorf(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR (like 10.0.0.0/8 or ::1/128)", s))
		}
	}
	return errs
}

// Prefixes parses CIDRs checked by Validate, masked to their network.
// Invalid entries are skipped.
func Prefixes(cidrs []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// SlogLevel is Level as a slog.Level; an unknown level is info.
func (l Log) SlogLevel() slog.Level { return logLevels[l.Level] }

// Dialect is "sqlite" or "postgres", from the URL's scheme; "" when the
// scheme is neither.
func (d Database) Dialect() string {
	scheme, _, _ := strings.Cut(d.URL, "://")
	switch strings.ToLower(scheme) {
	case "sqlite":
		return "sqlite"
	case "postgres", "postgresql":
		return "postgres"
	}
	return ""
}

// DSN is what the driver opens: for SQLite the file path (with the URL's
// query, e.g. "?_pragma=…", kept for the driver), for PostgreSQL the URL
// itself. sqlite://whisperer.db is the relative path whisperer.db,
// sqlite:///var/lib/w.db the absolute /var/lib/w.db.
func (d Database) DSN() (string, error) {
	scheme, rest, _ := strings.Cut(d.URL, "://")
	switch d.Dialect() {
	case "sqlite":
		if path, _, _ := strings.Cut(rest, "?"); path == "" {
			return "", errorf("database.url", "expected sqlite://PATH with a file path, got %q", d.URL)
		}
		return rest, nil
	case "postgres":
		if _, err := url.Parse(d.URL); err != nil {
			return "", errorf("database.url", "not a valid postgres:// URL")
		}
		return d.URL, nil
	}
	if !strings.Contains(d.URL, "://") {
		return "", errorf("database.url", "expected sqlite://PATH or postgres://…, got no scheme")
	}
	return "", errorf("database.url", "unsupported scheme %q (want sqlite:// or postgres://)", scheme)
}

// Redacted is URL with any password replaced by "xxxxx", for logs.
func (d Database) Redacted() string {
	if d.Dialect() != "postgres" {
		return d.URL
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return "postgres://(unparsable)"
	}
	return u.Redacted()
}
