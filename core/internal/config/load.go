package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// DefaultFile is read when neither LoadOptions.File nor WHISPERER_CONFIG
// names a file and it exists in the working directory.
const DefaultFile = "config.koanf.yaml"

// EnvPrefix starts every environment variable Load reads.
const EnvPrefix = "WHISPERER_"

// LoadOptions says where Load looks besides the built-in defaults.
type LoadOptions struct {
	// File is the YAML file (--config). Empty falls back to
	// $WHISPERER_CONFIG, then to DefaultFile if it exists. A named file
	// that does not exist is an error.
	File string
	// Getenv reads the environment. Nil means os.Getenv. Only the variables
	// of known keys are read (see EnvName); an empty value counts as unset.
	Getenv func(string) string
	// Flags are applied after the environment: every flag the user set
	// whose name is a dotted key ("server.addr", "request_timeout") or is
	// mapped by FlagKeys. A set "config" flag is used as File when File is
	// empty. Other flags are ignored.
	Flags *pflag.FlagSet
	// FlagKeys maps short flag names to keys, e.g. "addr" → "server.addr".
	FlagKeys map[string]string
	// Overrides are applied last, by dotted key; an unknown key is an error.
	Overrides map[string]any
	// Owned gives the defaults of the settings other packages own (see
	// Default); nil leaves them zero, which Validate reports.
	Owned Owned
	// Environ is the whole environment ("NAME=value"), and Warn gets one
	// line for each WHISPERER_* variable in it that Load does not know
	// (see UnknownEnv). Both nil: no warnings.
	Environ []string
	Warn    func(msg string)
}

// Load reads the configuration in order: built-in defaults, the YAML file,
// WHISPERER_* environment variables, flags, Overrides. It returns a
// validated Config or an error naming each bad key.
func Load(opts LoadOptions) (*Config, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ko := koanf.New(".")

	// The file.
	path, required := opts.File, true
	if path == "" && opts.Flags != nil {
		if f := opts.Flags.Lookup("config"); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	if path == "" {
		path = getenv(EnvPrefix + "CONFIG")
	}
	if path == "" {
		path, required = DefaultFile, false
	}
	source := ""
	urlFrom := "" // the default
	if _, err := os.Stat(path); err == nil || required {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("config file %s does not exist", path)
			}
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := checkKeys(fk); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if fk.Exists(dbKey) {
			abs, _ := filepath.Abs(path)
			urlFrom = fmt.Sprintf("%s %s in %s", dbKey, redacted(fk.Get(dbKey)), abs)
			resolveSQLite(fk, filepath.Dir(abs))
		}
		if err := merge(ko, fk); err != nil {
			return nil, err
		}
		source = path
	}

	// The environment.
	if opts.Warn != nil {
		for _, w := range UnknownEnv(opts.Environ) {
			opts.Warn(w)
		}
	}
	env := map[string]any{}
	for _, key := range Keys() {
		if v := getenv(EnvName(key)); v != "" {
			env[key] = v
		}
	}
	if v, ok := env[dbKey]; ok {
		urlFrom = fmt.Sprintf("%s=%s", EnvName(dbKey), redacted(v))
	}
	if err := mergeMap(ko, env); err != nil {
		return nil, err
	}

	// Flags.
	if opts.Flags != nil {
		known := keySet()
		fk := koanf.New(".")
		p := posflag.ProviderWithFlag(opts.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			key := f.Name
			if k, ok := opts.FlagKeys[key]; ok {
				key = k
			}
			if !f.Changed || !known[key] {
				return "", nil
			}
			if key == dbKey {
				urlFrom = fmt.Sprintf("--%s %s", f.Name, redacted(f.Value.String()))
			}
			// Decoders read strings of every kind; only lists and
			// durations need their typed form.
			switch v := posflag.FlagVal(opts.Flags, f).(type) {
			case []string, time.Duration:
				return key, v
			}
			return key, f.Value.String()
		})
		if err := fk.Load(p, nil); err != nil {
			return nil, fmt.Errorf("read flags: %w", err)
		}
		if err := merge(ko, fk); err != nil {
			return nil, err
		}
	}

	// Overrides.
	known := keySet()
	for key := range opts.Overrides {
		if !known[key] {
			return nil, fmt.Errorf("override: unknown key %q", key)
		}
	}
	if v, ok := opts.Overrides[dbKey]; ok {
		urlFrom = fmt.Sprintf("the override %s %s", dbKey, redacted(v))
	}
	if err := mergeMap(ko, opts.Overrides); err != nil {
		return nil, err
	}

	c := defaults()
	if opts.Owned != nil {
		opts.Owned(c)
	}
	c.Source = source
	c.DatabaseURLFrom = urlFrom
	// A value that failed to decode keeps its default, so validating the
	// rest still reports only real problems: the user sees them all at once.
	decodeErr := c.apply(ko)
	c.derive()
	if err := errors.Join(decodeErr, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

const dbKey = "database.url"

// redacted is a database URL for a message, without its password.
func redacted(v any) string { return Database{URL: fmt.Sprint(v)}.Redacted() }

// resolveSQLite makes a relative sqlite:// path in a config file's layer
// relative to the file's directory, dir: where the file is, not where the
// process happens to start, decides which database it means. A relative
// path from the environment or a flag stays relative to the working
// directory, as a shell user expects.
func resolveSQLite(fk *koanf.Koanf, dir string) {
	raw, ok := fk.Get(dbKey).(string)
	if !ok {
		return // not a string: its decoder reports it
	}
	d := Database{URL: raw}
	if d.Dialect() != "sqlite" {
		return
	}
	_, rest, _ := strings.Cut(raw, "://")
	p, query, hasQuery := strings.Cut(rest, "?")
	if p == "" || p == ":memory:" || filepath.IsAbs(p) {
		return
	}
	resolved := "sqlite://" + filepath.Join(dir, p)
	if hasQuery {
		resolved += "?" + query
	}
	_ = fk.Set(dbKey, resolved)
}

const (
	countdownKey = "delivery.default_retry_countdown"
	choiceKey    = countdownKey + ".choice"
	kwargsKey    = countdownKey + ".kwargs"
)

// merge lays src over ko. A countdown is one value: kwargs never mix with
// those of an earlier layer, where they may belong to another choice.
func merge(ko, src *koanf.Koanf) error {
	if src.Exists(choiceKey) || src.Exists(kwargsKey) {
		ko.Delete(kwargsKey)
	}
	return ko.Merge(src)
}

func mergeMap(ko *koanf.Koanf, flat map[string]any) error {
	if len(flat) == 0 {
		return nil
	}
	l := koanf.New(".")
	if err := l.Load(confmap.Provider(flat, "."), nil); err != nil {
		return err
	}
	return merge(ko, l)
}

// apply decodes every key present in ko over c.
func (c *Config) apply(ko *koanf.Koanf) error {
	var errs []error
	for _, f := range c.fields() {
		if !ko.Exists(f.key) {
			continue
		}
		if err := f.set(ko.Get(f.key)); err != nil {
			errs = append(errs, &Error{Key: f.key, Problem: err.Error()})
		}
	}
	// A new choice without kwargs starts from none, not the old choice's.
	if ko.Exists(choiceKey) && !ko.Exists(kwargsKey) {
		c.Delivery.DefaultRetryCountdown.Kwargs = json.RawMessage(`{}`)
	}
	return errors.Join(errs...)
}

// checkKeys rejects keys a file may not have, so that a typo is an error
// rather than a silently ignored setting.
func checkKeys(fk *koanf.Koanf) error {
	known := keySet()
	var errs []error
	reported := map[string]bool{}
	for _, key := range fk.Keys() {
		if known[key] || strings.HasPrefix(key, kwargsKey+".") {
			continue
		}
		// A mapping where a value belongs: let the value's decoder say
		// what it expected.
		if leaf := leafOf(key); leaf != nil {
			if !reported[leaf.key] {
				reported[leaf.key] = true
				if err := leaf.set(fk.Get(leaf.key)); err != nil {
					errs = append(errs, &Error{Key: leaf.key, Problem: err.Error()})
				}
			}
			continue
		}
		if children := childKeys(key); len(children) > 0 {
			if m, ok := fk.Get(key).(map[string]any); ok && len(m) == 0 {
				continue // an empty section
			}
			errs = append(errs, errorf(key, "expected a mapping with keys %s, got %s", strings.Join(children, ", "), describe(fk.Get(key))))
			continue
		}
		msg := "unknown key"
		if s := suggest(key); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		errs = append(errs, errorf(key, "%s", msg))
	}
	return errors.Join(errs...)
}

// leafOf returns the field of a known key that key is nested under.
func leafOf(key string) *field {
	for _, f := range new(Config).fields() {
		if strings.HasPrefix(key, f.key+".") {
			return &f
		}
	}
	return nil
}

func childKeys(parent string) []string {
	var out []string
	for _, k := range Keys() {
		if rest, ok := strings.CutPrefix(k, parent+"."); ok {
			child, _, _ := strings.Cut(rest, ".")
			if !slices.Contains(out, child) {
				out = append(out, child)
			}
		}
	}
	return out
}

// suggest returns the known key closest to key, if it is close enough to
// be a typo.
func suggest(key string) string { return closest(key, Keys(), 3) }

// closest returns the name of names nearest to s, if it is less than
// maxDist edits away.
func closest(s string, names []string, maxDist int) string {
	best, bestDist := "", maxDist
	for _, n := range names {
		if d := editDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Keys lists every configuration key, dotted, in documentation order.
// delivery.default_retry_countdown.kwargs is an object of any keys.
func Keys() []string {
	fields := new(Config).fields()
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

func keySet() map[string]bool {
	m := map[string]bool{}
	for _, k := range Keys() {
		m[k] = true
	}
	return m
}

// EnvName is the environment variable that sets key:
// "delivery.max_retries" → WHISPERER_DELIVERY_MAX_RETRIES. Lists are
// comma-separated, request_timeout is "5" or "5,10", and
// delivery.default_retry_countdown.kwargs is a JSON object.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

type field struct {
	key string
	set func(any) error
}

// fields is the table of keys: each key with the decoder that stores its
// value in c.
func (c *Config) fields() []field {
	return []field{
		{"server.addr", setString(&c.Server.Addr)},
		{"server.base_path", setString(&c.Server.BasePath)},
		{"server.max_body_bytes", setInt(&c.Server.MaxBodyBytes)},
		{"server.read_timeout", setDuration(&c.Server.ReadTimeout)},
		{"server.write_timeout", setDuration(&c.Server.WriteTimeout)},
		{"server.shutdown_timeout", setDuration(&c.Server.ShutdownTimeout)},
		{"server.auth_cache_ttl", setDuration(&c.Server.AuthCacheTTL)},
		{"server.public_url", setString(&c.Server.PublicURL)},
		{"server.tls_cert", setString(&c.Server.TLSCert)},
		{"server.tls_key", setString(&c.Server.TLSKey)},
		{"database.url", setString(&c.Database.URL)},
		{"database.max_open_conns", setInt(&c.Database.MaxOpenConns)},
		{"request_timeout", c.RequestTimeout.set},
		{"delivery.workers", setInt(&c.Delivery.Workers)},
		{"delivery.batch_size", setInt(&c.Delivery.BatchSize)},
		{"delivery.max_retries", setInt(&c.Delivery.MaxRetries)},
		{choiceKey, setString(&c.Delivery.DefaultRetryCountdown.Choice)},
		{kwargsKey, setObject(&c.Delivery.DefaultRetryCountdown.Kwargs)},
		{"delivery.max_response_bytes", setInt(&c.Delivery.MaxResponseBytes)},
		{"delivery.allow_networks", setList(&c.Delivery.AllowNetworks)},
		{"delivery.deny_networks", setList(&c.Delivery.DenyNetworks)},
		{"delivery.lease", setDuration(&c.Delivery.Lease)},
		{"delivery.poll_interval", setDuration(&c.Delivery.PollInterval)},
		{"delivery.callback_workers", setInt(&c.Delivery.CallbackWorkers)},
		{"delivery.disable_after", setDuration(&c.Delivery.DisableAfter)},
		{"plugins.dir", setString(&c.Plugins.Dir)},
		{"plugins.cache_dir", setString(&c.Plugins.CacheDir)},
		{"plugins.call_timeout", setDuration(&c.Plugins.CallTimeout)},
		{"plugins.callback_timeout", setDuration(&c.Plugins.CallbackTimeout)},
		{"plugins.memory_limit_mb", setInt(&c.Plugins.MemoryLimitMB)},
		{"plugins.pool_size", setInt(&c.Plugins.PoolSize)},
		{"plugins.idle_timeout", setDuration(&c.Plugins.IdleTimeout)},
		{"event_types", setList(&c.EventTypes)},
		{"log.level", setString(&c.Log.Level)},
		{"log.format", setString(&c.Log.Format)},
		{"retention.days", setInt(&c.Retention.Days)},
		{"retention.interval", setDuration(&c.Retention.Interval)},
		{"retention.batch_size", setInt(&c.Retention.BatchSize)},
		{"security.encryption_keys", setList(&c.Security.EncryptionKeys)},
		{"security.secret_rotation_overlap", setDuration(&c.Security.SecretRotationOverlap)},
		{"limits.hooks_per_user", setInt(&c.Limits.HooksPerUser)},
		{"limits.max_page_size", setInt(&c.Limits.MaxPageSize)},
		{"console.enabled", setInverted(&c.Console.Disabled)},
		{"console.session_ttl", setDuration(&c.Console.SessionTTL)},
		{"console.frame_ancestors", setList(&c.Console.FrameAncestors)},
		{"console.app_name", setString(&c.Console.AppName)},
		{"console.logo_url", setString(&c.Console.LogoURL)},
		{"console.accent_color", setString(&c.Console.AccentColor)},
	}
}

func setString(p *string) func(any) error {
	return func(v any) error {
		switch v := v.(type) {
		case string:
			*p = v
		case int, int64, uint64, float64, bool:
			// YAML reads `addr: 8000` or `choice: yes` as non-strings.
			*p = fmt.Sprint(v)
		default:
			return fmt.Errorf("expected a string, got %s", describe(v))
		}
		return nil
	}
}

func setInt[T int | int64](p *T) func(any) error {
	return func(v any) error {
		n, ok := toInt(v)
		if !ok {
			return fmt.Errorf("expected an integer, got %s", describe(v))
		}
		*p = T(n)
		return nil
	}
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		return int64(v), v <= math.MaxInt64
	case float64:
		return int64(v), v == math.Trunc(v) && math.Abs(v) < 1<<53
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func setDuration(p *time.Duration) func(any) error {
	return func(v any) error {
		d, ok := toDuration(v)
		if !ok {
			return fmt.Errorf(`expected a duration like "5s" or "100ms" or a number of seconds, got %s`, describe(v))
		}
		*p = d
		return nil
	}
}

// toDuration reads Go duration syntax ("1m30s") or a number of seconds,
// integer or not (5, 0.5, "2.5").
func toDuration(v any) (time.Duration, bool) {
	var secs float64
	switch v := v.(type) {
	case time.Duration:
		return v, true
	case int:
		secs = float64(v)
	case int64:
		secs = float64(v)
	case uint64:
		secs = float64(v)
	case float64:
		secs = v
	case string:
		s := strings.TrimSpace(v)
		if d, err := time.ParseDuration(s); err == nil {
			return d, true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		secs = f
	default:
		return 0, false
	}
	if math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(math.Round(secs * float64(time.Second))), true
}

// setList reads a YAML list of strings or, from the environment and
// flags, a comma-separated string.
func setList(p *[]string) func(any) error {
	return func(v any) error {
		switch v := v.(type) {
		case nil:
			*p = []string{}
		case string:
			out := []string{}
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			*p = out
		case []string:
			*p = slices.Clone(v)
		case []any:
			out := make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("expected a list of strings, element %d is %s", i, describe(e))
				}
				out[i] = s
			}
			*p = out
		default:
			return fmt.Errorf("expected a list of strings, got %s", describe(v))
		}
		return nil
	}
}

// setInverted reads a boolean (YAML's, or "true"/"false" from the
// environment) into *p inverted: for a key "enabled" whose field is
// "Disabled", so that the zero value means on.
func setInverted(p *bool) func(any) error {
	return func(v any) error {
		var b bool
		switch v := v.(type) {
		case bool:
			b = v
		case string:
			var err error
			if b, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("expected true or false, got %q", v)
			}
		default:
			return fmt.Errorf("expected true or false, got %s", describe(v))
		}
		*p = !b
		return nil
	}
}

// setObject reads a mapping, or a JSON object from the environment.
func setObject(p *json.RawMessage) func(any) error {
	return func(v any) error {
		if s, ok := v.(string); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
				return fmt.Errorf("expected a JSON object, got %q", s)
			}
			v = m
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("expected a mapping, got %s", describe(v))
		}
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("expected a mapping of JSON values: %v", err)
		}
		*p = b
		return nil
	}
}

// set reads request_timeout: a number of seconds for both, a [connect,
// read] list, or from the environment "5" or "5,10".
func (t *RequestTimeout) set(v any) error {
	bad := fmt.Errorf("expected a number of seconds or [connect, read], got %s", describe(v))
	var parts []any
	switch x := v.(type) {
	case []any:
		parts = x
	case []string:
		for _, s := range x {
			parts = append(parts, s)
		}
	case string:
		s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(x), "["), "]")
		for p := range strings.SplitSeq(s, ",") {
			parts = append(parts, p)
		}
	default:
		parts = []any{v}
	}
	var ds []time.Duration
	for _, p := range parts {
		d, ok := toDuration(p)
		if !ok {
			return bad
		}
		ds = append(ds, d)
	}
	switch len(ds) {
	case 1:
		t.Connect, t.Read = ds[0], ds[0]
	case 2:
		t.Connect, t.Read = ds[0], ds[1]
	default:
		return bad
	}
	return nil
}

// describe shows a value in an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "a mapping with keys " + strings.Join(keys, ", ")
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
