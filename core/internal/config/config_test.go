package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/console"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/retention"
	"github.com/whisperer/whisperer/core/internal/store"
)

const documented = "../../../config.koanf.yaml"

// env returns a Getenv over vars, so tests never read the real environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "whisperer.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// documentedDefaults stands in for core/app's OwnedDefaults, which this
// package's tests cannot import: the values config.koanf.yaml documents,
// which TestDocumentedDefaultsAreThePackages holds equal to the packages'.
// The file allows loopback for local development; the default is none.
func documentedDefaults(c *Config) {
	fk := koanf.New(".")
	if err := fk.Load(file.Provider(documentedAbs), yaml.Parser()); err != nil {
		panic(err)
	}
	if err := c.apply(fk); err != nil {
		panic(err)
	}
	c.Delivery.AllowNetworks = []string{}
}

// documentedAbs is documented for tests that change directory.
var documentedAbs, _ = filepath.Abs(documented)

// load is Load with the documented defaults for the settings other
// packages own.
func load(opts LoadOptions) (*Config, error) {
	if opts.Owned == nil {
		opts.Owned = documentedDefaults
	}
	return Load(opts)
}

func mustLoad(t *testing.T, opts LoadOptions) *Config {
	t.Helper()
	if opts.Getenv == nil {
		opts.Getenv = env(nil)
	}
	c, err := load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// The documented file must load and must document exactly the defaults:
// every key present, every value the default except the development
// allow_networks it says it changes.
func TestDocumentedFile(t *testing.T) {
	fk := koanf.New(".")
	if err := fk.Load(file.Provider(documented), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !fk.Exists(key) {
			t.Errorf("config.koanf.yaml does not document %s", key)
		}
	}

	got := mustLoad(t, LoadOptions{File: documented})
	want := Default(documentedDefaults)
	want.Source = documented
	// Its relative sqlite:// path is the file's directory's.
	dir, _ := filepath.Abs(filepath.Dir(documented))
	want.Database.URL = "sqlite://" + filepath.Join(dir, "whisperer.db")
	want.DatabaseURLFrom = "database.url sqlite://whisperer.db in " + filepath.Join(dir, "config.koanf.yaml")
	want.Delivery.AllowNetworks = []string{"127.0.0.0/8", "::1/128"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.koanf.yaml differs from the defaults:\n got %+v\nwant %+v", got, want)
	}
}

// Every key a package consumes defaults, in config.koanf.yaml, to that
// package's own default, so the server and a package used alone (tests,
// tools) behave alike. The keys no package defaults are listed, so that a
// new key must be placed in one list or the other.
func TestDocumentedDefaultsAreThePackages(t *testing.T) {
	doc := mustLoad(t, LoadOptions{File: documented})
	a := api.Config{}.WithDefaults()
	d := delivery.Config{}.WithDefaults()
	p := plugin.Config{}.WithDefaults()
	r := retention.Config{}.WithDefaults()
	cs := console.Config{}.WithDefaults()
	owned := map[string][2]any{
		"server.base_path":                 {doc.Server.BasePath, a.BasePath},
		"server.max_body_bytes":            {doc.Server.MaxBodyBytes, a.MaxBodyBytes},
		"server.public_url":                {doc.Server.PublicURL, a.PublicURL},
		"request_timeout":                  {[2]time.Duration{doc.RequestTimeout.Connect, doc.RequestTimeout.Read}, [2]time.Duration{d.ConnectTimeout, d.ReadTimeout}},
		"delivery.workers":                 {doc.Delivery.Workers, d.Workers},
		"delivery.batch_size":              {doc.Delivery.BatchSize, d.BatchSize},
		"delivery.max_retries":             {doc.Delivery.MaxRetries, d.MaxRetries},
		choiceKey:                          {doc.Delivery.DefaultRetryCountdown.Choice, d.DefaultCountdown.Choice},
		kwargsKey:                          {string(doc.Delivery.DefaultRetryCountdown.Kwargs), string(d.DefaultCountdown.Kwargs)},
		"delivery.max_response_bytes":      {doc.Delivery.MaxResponseBytes, d.MaxResponseBytes},
		"delivery.deny_networks":           {len(doc.Delivery.DenyNetworks), len(d.DenyNetworks)},
		"delivery.lease":                   {doc.Delivery.Lease, delivery.Config{}.Lease}, // 0: derived
		"delivery.poll_interval":           {doc.Delivery.PollInterval, d.PollInterval},
		"delivery.callback_workers":        {doc.Delivery.CallbackWorkers, d.CallbackWorkers},
		"plugins.dir":                      {doc.Plugins.Dir, p.Dir},
		"plugins.cache_dir":                {doc.Plugins.CacheDir, plugin.Config{}.CacheDir}, // "": derived
		"plugins.call_timeout":             {doc.Plugins.CallTimeout, p.CallTimeout},
		"plugins.callback_timeout":         {doc.Plugins.CallbackTimeout, p.CallbackTimeout},
		"plugins.memory_limit_mb":          {doc.Plugins.MemoryLimitMB, p.MemoryLimitMB},
		"plugins.pool_size":                {doc.Plugins.PoolSize, p.PoolSize},
		"plugins.idle_timeout":             {doc.Plugins.IdleTimeout, p.IdleTimeout},
		"security.secret_rotation_overlap": {doc.Security.SecretRotationOverlap, a.SecretRotationOverlap},
		"limits.hooks_per_user":            {doc.Limits.HooksPerUser, a.HooksPerUser},
		"limits.max_page_size":             {doc.Limits.MaxPageSize, a.MaxPageSize},
		"retention.interval":               {doc.Retention.Interval, r.Interval},
		"retention.batch_size":             {doc.Retention.BatchSize, r.BatchSize},
		"database.max_open_conns":          {doc.Database.MaxOpenConns, store.DefaultMaxOpenConns},
		"console.session_ttl":              {doc.Console.SessionTTL, cs.SessionTTL},
		"console.frame_ancestors":          {len(doc.Console.FrameAncestors), len(cs.FrameAncestors)},
		"console.app_name":                 {doc.Console.AppName, cs.AppName},
		"console.logo_url":                 {doc.Console.LogoURL, cs.LogoURL},
		"console.accent_color":             {doc.Console.AccentColor, cs.AccentColor},
	}
	// Keys read by two packages: both must default alike.
	shared := map[string][2]any{
		"plugins.callback_timeout (delivery)": {doc.Plugins.CallbackTimeout, d.CallbackTimeout},
		"delivery.default_retry_countdown (api)": {
			string(doc.Delivery.DefaultRetryCountdown.Choice) + string(doc.Delivery.DefaultRetryCountdown.Kwargs),
			string(a.DefaultRetryCountdown.Choice) + string(a.DefaultRetryCountdown.Kwargs),
		},
	}
	owned["delivery.allow_networks"] = [2]any{len(Default(documentedDefaults).Delivery.AllowNetworks), len(d.AllowNetworks)}
	// The server's own settings, and those whose package treats zero as
	// "off" (the store's auth cache and hook deactivation, retention).
	unowned := []string{
		"server.addr", "server.read_timeout", "server.write_timeout", "server.shutdown_timeout",
		"server.auth_cache_ttl", "server.tls_cert", "server.tls_key", "database.url", "delivery.disable_after",
		"event_types", "log.level", "log.format", "retention.days", "security.encryption_keys",
		"console.enabled",
	}
	for _, key := range Keys() {
		v, ok := owned[key]
		if !ok {
			if !slices.Contains(unowned, key) {
				t.Errorf("%s is in neither list of this test: say which package owns its default", key)
			}
			continue
		}
		if !reflect.DeepEqual(v[0], v[1]) {
			t.Errorf("%s: config.koanf.yaml documents %v, its package defaults to %v", key, v[0], v[1])
		}
	}
	for key, v := range shared {
		if !reflect.DeepEqual(v[0], v[1]) {
			t.Errorf("%s: config.koanf.yaml documents %v, the package defaults to %v", key, v[0], v[1])
		}
	}
}

func TestDefaults(t *testing.T) {
	d := Default(documentedDefaults)
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if d.Delivery.Lease != 0 {
		t.Errorf("lease = %v, want 0: the dispatcher derives it", d.Delivery.Lease)
	}

	// No file given and none in the working directory: the defaults.
	t.Chdir(t.TempDir())
	if got := mustLoad(t, LoadOptions{}); !reflect.DeepEqual(got, d) {
		t.Errorf("Load with nothing = %+v, want %+v", got, d)
	}
}

func TestEnvNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		n := EnvName(k)
		if other, ok := seen[n]; ok {
			t.Errorf("%s and %s share %s", k, other, n)
		}
		seen[n] = k
	}
	if got := EnvName("delivery.max_retries"); got != "WHISPERER_DELIVERY_MAX_RETRIES" {
		t.Errorf("EnvName = %s", got)
	}
}

func TestFileLookup(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(DefaultFile, []byte("delivery: {workers: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := writeFile(t, "delivery: {workers: 5}\n")

	c := mustLoad(t, LoadOptions{})
	if c.Delivery.Workers != 3 || c.Source != DefaultFile {
		t.Errorf("working directory file: workers %d from %q", c.Delivery.Workers, c.Source)
	}
	c = mustLoad(t, LoadOptions{Getenv: env(map[string]string{"WHISPERER_CONFIG": other})})
	if c.Delivery.Workers != 5 {
		t.Errorf("WHISPERER_CONFIG: workers %d, want 5", c.Delivery.Workers)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("config", "", "")
	if err := fs.Parse([]string{"--config", other}); err != nil {
		t.Fatal(err)
	}
	c = mustLoad(t, LoadOptions{Flags: fs})
	if c.Delivery.Workers != 5 {
		t.Errorf("--config flag: workers %d, want 5", c.Delivery.Workers)
	}

	_, err := load(LoadOptions{File: filepath.Join(dir, "missing.yaml"), Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml does not exist") {
		t.Errorf("missing named file: %v", err)
	}
}

// Each layer overrides the one before: defaults < file < env < flags <
// overrides.
func TestPrecedence(t *testing.T) {
	path := writeFile(t, `
server: {addr: "0.0.0.0:1"}
database: {url: "sqlite://file.db"}
delivery: {workers: 2, max_retries: 2, batch_size: 2}
log: {level: debug}
`)
	vars := map[string]string{
		"WHISPERER_DATABASE_URL":         "sqlite://env.db",
		"WHISPERER_DELIVERY_WORKERS":     "3",
		"WHISPERER_DELIVERY_MAX_RETRIES": "3",
		// Unrelated and meta variables must not break loading.
		"WHISPERER_TEST_POSTGRES": "1",
		"WHISPERER_CONFIG":        "/nonexistent-but-File-wins.yaml",
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.Int("delivery.workers", 0, "")
	fs.Int("delivery.max_retries", 0, "")
	fs.String("addr", "", "")
	fs.Duration("plugins.call_timeout", 0, "")
	fs.Float64("request_timeout", 0, "")
	fs.StringSlice("event_types", nil, "")
	fs.String("log.format", "text", "") // unchanged: must not override
	fs.Bool("admin", false, "")         // not a key: ignored
	if err := fs.Parse([]string{"--delivery.workers=4", "--delivery.max_retries=4", "--addr=0.0.0.0:4", "--admin",
		"--plugins.call_timeout=250ms", "--request_timeout=2.5", "--event_types=x,y"}); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, LoadOptions{
		File:      path,
		Getenv:    env(vars),
		Flags:     fs,
		FlagKeys:  map[string]string{"addr": "server.addr"},
		Overrides: map[string]any{"delivery.max_retries": 5},
	})
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.shutdown_timeout (default)", c.Server.ShutdownTimeout, 30 * time.Second},
		{"delivery.batch_size (file)", c.Delivery.BatchSize, 2},
		{"log.level (file)", c.Log.Level, "debug"},
		{"database.url (env)", c.Database.URL, "sqlite://env.db"},
		{"delivery.workers (flag)", c.Delivery.Workers, 4},
		{"server.addr (aliased flag)", c.Server.Addr, "0.0.0.0:4"},
		{"log.format (unchanged flag)", c.Log.Format, "text"},
		{"delivery.max_retries (override)", c.Delivery.MaxRetries, 5},
		{"plugins.call_timeout (duration flag)", c.Plugins.CallTimeout, 250 * time.Millisecond},
		{"request_timeout (float flag)", c.RequestTimeout, RequestTimeout{2500 * time.Millisecond, 2500 * time.Millisecond}},
		{"event_types (slice flag)", c.EventTypes, []string{"x", "y"}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
}

func TestEnvForms(t *testing.T) {
	c := mustLoad(t, LoadOptions{Getenv: env(map[string]string{
		"WHISPERER_EVENT_TYPES":                             "a, b,,c",
		"WHISPERER_DELIVERY_ALLOW_NETWORKS":                 "127.0.0.0/8,::1/128",
		"WHISPERER_PLUGINS_CALL_TIMEOUT":                    "0.25",
		"WHISPERER_DELIVERY_DISABLE_AFTER":                  "0",
		"WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_CHOICE": "fixed",
		"WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_KWARGS": `{"seconds": 5}`,
	})})
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(c.EventTypes, want) {
		t.Errorf("event_types = %q, want %q", c.EventTypes, want)
	}
	if want := []string{"127.0.0.0/8", "::1/128"}; !reflect.DeepEqual(c.Delivery.AllowNetworks, want) {
		t.Errorf("allow_networks = %q, want %q", c.Delivery.AllowNetworks, want)
	}
	if c.Plugins.CallTimeout != 250*time.Millisecond {
		t.Errorf("call_timeout = %v", c.Plugins.CallTimeout)
	}
	if c.Delivery.DisableAfter != 0 {
		t.Errorf("explicit disable_after 0 became %v", c.Delivery.DisableAfter)
	}
	if cd := c.Delivery.DefaultRetryCountdown; cd.Choice != "fixed" || string(cd.Kwargs) != `{"seconds":5}` {
		t.Errorf("countdown = %s %s", cd.Choice, cd.Kwargs)
	}
	if p := Prefixes(c.Delivery.AllowNetworks); len(p) != 2 || p[1].String() != "::1/128" {
		t.Errorf("Prefixes = %v", p)
	}
}

// A countdown is one value: kwargs of an earlier layer never leak into
// another choice.
func TestCountdownLayers(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		choice     string
		kwargs     string
	}{
		{"default", "", nil, "exponential", `{"base":2}`},
		{"file replaces kwargs", "delivery: {default_retry_countdown: {choice: fixed, kwargs: {seconds: 5}}}", nil, "fixed", `{"seconds":5}`},
		{"choice alone has no kwargs", "delivery: {default_retry_countdown: {choice: fixed}}", nil, "fixed", `{}`},
		{"kwargs alone keeps choice", "delivery: {default_retry_countdown: {kwargs: {base: 3, limit: 60}}}", nil, "exponential", `{"base":3,"limit":60}`},
		{"env choice drops file kwargs", "delivery: {default_retry_countdown: {choice: linear, kwargs: {base: 3}}}",
			map[string]string{"WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_CHOICE": "random"}, "random", `{}`},
		{"plugin kwargs of any key", "delivery: {default_retry_countdown: {choice: custom, kwargs: {factor: 3, nested: {a: 1}}}}", nil, "custom", `{"factor":3,"nested":{"a":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, LoadOptions{File: writeFile(t, tc.file), Getenv: env(tc.env)})
			cd := c.Delivery.DefaultRetryCountdown
			if cd.Choice != tc.choice || string(cd.Kwargs) != tc.kwargs {
				t.Errorf("got %s %s, want %s %s", cd.Choice, cd.Kwargs, tc.choice, tc.kwargs)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	s := time.Second
	tests := []struct {
		name          string
		file          string
		env           string
		connect, read time.Duration
		err           string
	}{
		{name: "default", connect: 10 * s, read: 10 * s},
		{name: "int", file: "request_timeout: 5", connect: 5 * s, read: 5 * s},
		{name: "float", file: "request_timeout: 5.5", connect: 5500 * time.Millisecond, read: 5500 * time.Millisecond},
		{name: "half", file: "request_timeout: 0.5", connect: s / 2, read: s / 2},
		{name: "pair", file: "request_timeout: [5, 10]", connect: 5 * s, read: 10 * s},
		{name: "go durations", file: `request_timeout: ["500ms", 2m]`, connect: s / 2, read: 2 * time.Minute},
		{name: "env number", env: "5", connect: 5 * s, read: 5 * s},
		{name: "env pair", env: "5,10", connect: 5 * s, read: 10 * s},
		{name: "env pair with spaces", env: " 3 , 4.5 ", connect: 3 * s, read: 4500 * time.Millisecond},
		{name: "env over file", file: "request_timeout: [1, 2]", env: "7", connect: 7 * s, read: 7 * s},
		{name: "word", file: "request_timeout: abc",
			err: `request_timeout: expected a number of seconds or [connect, read], got "abc"`},
		{name: "env word", env: "abc",
			err: `request_timeout: expected a number of seconds or [connect, read], got "abc"`},
		{name: "three", file: "request_timeout: [1, 2, 3]",
			err: `request_timeout: expected a number of seconds or [connect, read], got [1,2,3]`},
		{name: "empty list", file: "request_timeout: []",
			err: `request_timeout: expected a number of seconds or [connect, read], got []`},
		{name: "mapping", file: "request_timeout: {connect: 1}",
			err: `request_timeout: expected a number of seconds or [connect, read], got a mapping with keys connect`},
		{name: "zero", file: "request_timeout: 0",
			err: `request_timeout: connect and read must be positive, got [0s, 0s]`},
		{name: "negative read", env: "1,-1",
			err: `request_timeout: connect and read must be positive, got [1s, -1s]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(LoadOptions{
				File:   writeFile(t, tc.file),
				Getenv: env(map[string]string{"WHISPERER_REQUEST_TIMEOUT": tc.env}),
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.RequestTimeout.Connect != tc.connect || c.RequestTimeout.Read != tc.read {
				t.Errorf("got %+v, want connect %v read %v", c.RequestTimeout, tc.connect, tc.read)
			}
			if c.Delivery.Lease != 0 {
				t.Errorf("lease = %v, want 0: the dispatcher derives it from the request timeout", c.Delivery.Lease)
			}
		})
	}
}

// Every bad value is an error naming its key and what is expected.
func TestValidationErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		name string
		file string
		env  map[string]string
		err  string
	}{
		{"unknown key", "delivery: {wokers: 3}", nil, `delivery.wokers: unknown key (did you mean "delivery.workers"?)`},
		{"unknown section", "metrics: {enabled: true}", nil, `metrics.enabled: unknown key`},
		{"scalar section", "server: 8000", nil, `server: expected a mapping with keys addr, base_path`},
		{"bad yaml", "server: [", nil, `config file`},
		{"addr", `server: {addr: "8000"}`, nil, `server.addr: expected host:port, got "8000"`},
		{"base path", `server: {base_path: "/api"}`, nil, `server.base_path: must start and end with "/", got "/api"`},
		{"max body", "server: {max_body_bytes: 0}", nil, `server.max_body_bytes: must be at least 1, got 0`},
		{"read timeout", "server: {read_timeout: -1s}", nil, `server.read_timeout: must not be negative, got -1s`},
		{"shutdown timeout", "server: {shutdown_timeout: 0}", nil, `server.shutdown_timeout: must be a positive duration, got 0s`},
		{"duration word", "server: {read_timeout: soon}", nil, `server.read_timeout: expected a duration like "5s" or "100ms" or a number of seconds, got "soon"`},
		{"database scheme", `database: {url: "mysql://u:secret@h/db"}`, nil, `database.url: unsupported scheme "mysql" (want sqlite:// or postgres://)`},
		{"database no scheme", `database: {url: "whisperer.db"}`, nil, `database.url: expected sqlite://PATH or postgres://…, got no scheme`},
		{"database empty path", `database: {url: "sqlite://"}`, nil, `database.url: expected sqlite://PATH with a file path`},
		{"max open conns", "database: {max_open_conns: 0}", nil, `database.max_open_conns: must be at least 1, got 0`},
		{"workers", "delivery: {workers: 0}", nil, `delivery.workers: must be at least 1, got 0`},
		{"workers env", "", map[string]string{"WHISPERER_DELIVERY_WORKERS": "many"}, `delivery.workers: expected an integer, got "many"`},
		{"workers float", "delivery: {workers: 2.5}", nil, `delivery.workers: expected an integer, got 2.5`},
		{"batch size", "delivery: {batch_size: -1}", nil, `delivery.batch_size: must be at least 1, got -1`},
		{"max retries", "delivery: {max_retries: 0}", nil, `delivery.max_retries: must be at least 1, got 0`},
		{"countdown choice", `delivery: {default_retry_countdown: {choice: ""}}`, nil, `delivery.default_retry_countdown.choice: must name a countdown`},
		{"countdown kwargs", `delivery: {default_retry_countdown: {kwargs: [1]}}`, nil, `delivery.default_retry_countdown.kwargs: expected a mapping, got [1]`},
		{"countdown kwargs env", "", map[string]string{"WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_KWARGS": "base=2"}, `delivery.default_retry_countdown.kwargs: expected a JSON object, got "base=2"`},
		{"max response bytes", "delivery: {max_response_bytes: -1}", nil, `delivery.max_response_bytes: must be at least 0, got -1`},
		{"allow networks", `delivery: {allow_networks: ["10.0.0.0/8", "10.0.0/8"]}`, nil, `delivery.allow_networks[1]: "10.0.0/8" is not a CIDR`},
		{"allow networks bare ip", `delivery: {allow_networks: ["::1"]}`, nil, `delivery.allow_networks[0]: "::1" is not a CIDR`},
		{"allow networks env", "", map[string]string{"WHISPERER_DELIVERY_ALLOW_NETWORKS": "127.0.0.0/8,localhost"}, `delivery.allow_networks[1]: "localhost" is not a CIDR`},
		{"allow networks type", `delivery: {allow_networks: [1]}`, nil, `delivery.allow_networks: expected a list of strings, element 0 is 1`},
		{"deny networks", `delivery: {deny_networks: ["x"]}`, nil, `delivery.deny_networks[0]: "x" is not a CIDR`},
		{"lease", "delivery: {lease: 15s}", nil, `delivery.lease: must be at least twice request_timeout connect + read, plus plugins.call_timeout and 1s (41.1s), got 15s`},
		{"lease vs env timeout", "delivery: {lease: 60s}", map[string]string{"WHISPERER_REQUEST_TIMEOUT": "30,30"}, `delivery.lease: must be at least twice request_timeout connect + read, plus plugins.call_timeout and 1s (2m1.1s), got 1m0s`},
		{"poll interval", "delivery: {poll_interval: 0}", nil, `delivery.poll_interval: must be a positive duration, got 0s`},
		{"callback workers", "delivery: {callback_workers: 0}", nil, `delivery.callback_workers: must be at least 1, got 0`},
		{"disable after", "delivery: {disable_after: -1h}", nil, `delivery.disable_after: must not be negative, got -1h0m0s`},
		{"plugins dir", `plugins: {dir: ""}`, nil, `plugins.dir: must not be empty`},
		{"call timeout", "plugins: {call_timeout: 0}", nil, `plugins.call_timeout: must be a positive duration, got 0s`},
		{"callback timeout", "plugins: {callback_timeout: -5}", nil, `plugins.callback_timeout: must be a positive duration, got -5s`},
		{"memory limit", "plugins: {memory_limit_mb: 4096}", nil, `plugins.memory_limit_mb: must be between 1 and 2048, got 4096`},
		{"pool size", "plugins: {pool_size: 0}", nil, `plugins.pool_size: must be at least 1, got 0`},
		{"event type empty", `event_types: [a, ""]`, nil, `event_types[1]: event type must not be empty`},
		{"event type space", `event_types: ["order created"]`, nil, `event_types[0]: event type "order created" must not contain whitespace or control characters`},
		{"event type control", "event_types: [\"a\\tb\"]", nil, `event_types[0]: event type "a\tb" must not contain whitespace`},
		{"event type long", "event_types: [" + long + "]", nil, `event_types[0]: event type "xxxxxxxxxxxxxxxxxxxx"… is longer than 255 characters`},
		{"event type twice", `event_types: [a, b, a]`, nil, `event_types[2]: "a" is listed twice`},
		{"event types scalar map", `event_types: {a: 1}`, nil, `event_types: expected a list of strings, got a mapping with keys a`},
		{"log level", "log: {level: verbose}", nil, `log.level: expected debug, info, warn or error, got "verbose"`},
		{"log format", "log: {format: xml}", nil, `log.format: expected text or json, got "xml"`},
		{"encryption key short", `security: {encryption_keys: ["c2hvcnQ="]}`, nil, `security.encryption_keys[0]: expected standard base64 of 32 bytes (make a key with ` + "`whisperer keys generate`" + `), got 5 bytes`},
		{"encryption key env", "", map[string]string{"WHISPERER_SECURITY_ENCRYPTION_KEYS": testKey + ",not-a-key!"}, `security.encryption_keys[1]: expected standard base64 of 32 bytes (make a key with ` + "`whisperer keys generate`" + `), got text that is not base64`},
		{"encryption key all zero", `security: {encryption_keys: ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}`, nil, `security.encryption_keys[0]: is not a random key: its 32 bytes are all the same (make a key with ` + "`whisperer keys generate`" + `)`},
		{"encryption key one byte repeated", "", map[string]string{"WHISPERER_SECURITY_ENCRYPTION_KEYS": testKey + ",//////////////////////////////////////////8="}, `security.encryption_keys[1]: is not a random key: its 32 bytes are all the same`},
		{"encryption key twice", "", map[string]string{"WHISPERER_SECURITY_ENCRYPTION_KEYS": testKey + "," + testKey}, `security.encryption_keys[1]: is the same key as security.encryption_keys[0]`},
		{"rotation overlap", "security: {secret_rotation_overlap: 0}", nil, `security.secret_rotation_overlap: must be a positive duration, got 0s`},
		{"hooks per user", "limits: {hooks_per_user: 0}", nil, `limits.hooks_per_user: must be at least 1, got 0`},
		{"hooks per user env", "", map[string]string{"WHISPERER_LIMITS_HOOKS_PER_USER": "lots"}, `limits.hooks_per_user: expected an integer, got "lots"`},
		{"max page size", "limits: {max_page_size: 5000}", nil, `limits.max_page_size: must be between 1 and 1000, got 5000`},
		{"max page size zero", "limits: {max_page_size: 0}", nil, `limits.max_page_size: must be between 1 and 1000, got 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(LoadOptions{File: writeFile(t, tc.file), Getenv: env(tc.env)})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "secret@") {
				t.Errorf("error leaks the database password: %v", err)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "c2hvcnQ") || strings.Contains(err.Error(), "not-a-key") {
				t.Errorf("error quotes an encryption key: %v", err)
			}
		})
	}
}

// testKey is an encryption key for tests: base64 of 32 bytes.
const testKey = "d2hpc3BlcmVyIHRlc3Qga2V5LCBub3Qgc2VjcmV0ISE="

func TestEncryptionKeysFromEnv(t *testing.T) {
	other := "b3RoZXIga2V5LCB0aGlydHktdHdvIGJ5dGVzIGxvbmc="
	c, err := load(LoadOptions{File: writeFile(t, ""), Getenv: env(map[string]string{
		"WHISPERER_SECURITY_ENCRYPTION_KEYS": testKey + ", " + other})})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Security.EncryptionKeys) != 2 || c.Security.EncryptionKeys[0] != testKey || c.Security.EncryptionKeys[1] != other {
		t.Fatalf("keys = %d, want both in order", len(c.Security.EncryptionKeys))
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default(documentedDefaults)
	c.Delivery.Workers = 0
	c.Log.Format = "xml"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "delivery.workers") || !strings.Contains(err.Error(), "log.format") {
		t.Fatalf("Validate = %v, want both problems", err)
	}
}

func TestUnknownOverride(t *testing.T) {
	_, err := load(LoadOptions{Getenv: env(nil), File: writeFile(t, ""), Overrides: map[string]any{"delivery.wrokers": 1}})
	if err == nil || !strings.Contains(err.Error(), `unknown key "delivery.wrokers"`) {
		t.Fatalf("error = %v", err)
	}
}

func TestDatabase(t *testing.T) {
	tests := []struct {
		url, dialect, dsn string
	}{
		{"sqlite://whisperer.db", "sqlite", "whisperer.db"},
		{"sqlite:///var/lib/whisperer/w.db", "sqlite", "/var/lib/whisperer/w.db"},
		{"sqlite://data/w.db?_pragma=busy_timeout(5000)", "sqlite", "data/w.db?_pragma=busy_timeout(5000)"},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{"postgresql://u:p@db/whisperer", "postgres", "postgresql://u:p@db/whisperer"},
	}
	for _, tc := range tests {
		d := Database{URL: tc.url}
		dsn, err := d.DSN()
		if d.Dialect() != tc.dialect || dsn != tc.dsn || err != nil {
			t.Errorf("%s: Dialect %q DSN %q %v, want %q %q", tc.url, d.Dialect(), dsn, err, tc.dialect, tc.dsn)
		}
	}
	if got := (Database{URL: "postgres://u:hunter2@db/w"}).Redacted(); strings.Contains(got, "hunter2") {
		t.Errorf("Redacted = %s", got)
	}
}

func TestValidateEventType(t *testing.T) {
	for _, ok := range []string{"package-created", "order.created", "ünïcode", strings.Repeat("é", 255)} {
		if err := ValidateEventType(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a b", "a\nb", "a\x00b", "\xff", strings.Repeat("x", 256), "whisperer.hook.disabled", "whisperer.mine"} {
		if ValidateEventType(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The kwargs stay valid JSON objects for the countdown registry.
func TestDefaultKwargsIsObject(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(Default(documentedDefaults).Delivery.DefaultRetryCountdown.Kwargs, &m); err != nil || m["base"] != 2.0 {
		t.Fatalf("kwargs %s: %v", Default(documentedDefaults).Delivery.DefaultRetryCountdown.Kwargs, err)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := load(LoadOptions{Getenv: env(nil), File: writeFile(t, "delivery: {workers: 0}\nrequest_timeout: abc\n")})
	if err == nil || !strings.Contains(err.Error(), "delivery.workers: must be at least 1") || !strings.Contains(err.Error(), `request_timeout: expected`) {
		t.Fatalf("error = %v, want both problems", err)
	}
}

// server.public_url is an http(s) origin with an optional path: anything a
// link could not safely start with is refused.
func TestPublicURL(t *testing.T) {
	for _, bad := range []string{
		"evil.example", "//evil.example", "javascript:alert(1)", "ftp://files.example", "http://",
		"https://user:pw@api.example", "https://api.example/?a=b", "https://api.example/?",
		"https://api.example/#top", "https://api.example/a b", `https://api.example\@evil.example`,
		"https://api.example/\n", "http://[::1", "/relative/path",
	} {
		_, err := load(LoadOptions{File: writeFile(t, ""), Getenv: env(map[string]string{"WHISPERER_SERVER_PUBLIC_URL": bad})})
		if err == nil || !strings.Contains(err.Error(), "server.public_url: expected http(s)://host[:port][/path]") {
			t.Errorf("%q: error = %v, want it refused", bad, err)
		}
	}
	for _, good := range []string{"", "https://api.example", "https://api.example:8443/whisperer-proxy/", "http://[2001:db8::1]:8000"} {
		c, err := load(LoadOptions{File: writeFile(t, ""), Overrides: map[string]any{"server.public_url": good}})
		if err != nil || c.Server.PublicURL != good {
			t.Errorf("%q: %v, %q", good, err, c.Server.PublicURL)
		}
	}
}
