package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/testlog"
	"go.uber.org/goleak"
)

// scratch is a per-run directory: Go guests built once per `go test` run.
var scratch string

// compileCache is the wazero compilation cache of every host of a run, kept
// across runs: the race detector's instrumented compiler takes a minute per
// Go guest, where reading it back takes milliseconds, so .ci/run's plain
// test run warms it for the -race one. Entries are keyed by the module's
// hash and the CPU's features, and written atomically, so concurrent runs
// and edited modules are safe; the directory is per wazero version (a test
// binary has no build info, so wazero files every version as "dev").
// WHISPERER_TEST_WASM_CACHE overrides the directory; "off" keeps it per run.
var compileCache string

func testCompileCache() string {
	d := os.Getenv("WHISPERER_TEST_WASM_CACHE")
	if d != "" && d != "off" {
		return d
	}
	mod, err := os.ReadFile(filepath.Join("..", "..", "..", "go.mod"))
	base, cerr := os.UserCacheDir()
	if d == "off" || err != nil || cerr != nil {
		return filepath.Join(scratch, "cache")
	}
	for line := range strings.Lines(string(mod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
			return filepath.Join(base, "whisperer-test", "wazero-"+f[1])
		}
	}
	return filepath.Join(scratch, "cache")
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "whisperer-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	compileCache = testCompileCache()
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildMu  sync.Mutex
	builds   = map[string]string{}
	buildErr = map[string]error{}
)

// goWasm builds the Go package pkg (relative to the module root) for
// wasip1 as a reactor, once per test run; the go build cache makes reruns
// fast.
func goWasm(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builds[pkg]; ok {
		return p
	}
	if err, ok := buildErr[pkg]; ok {
		t.Fatal(err)
	}
	out := filepath.Join(scratch, "go", strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_")+".wasm")
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		buildErr[pkg] = fmt.Errorf("build %s: %v\n%s", pkg, err, b)
		t.Fatal(buildErr[pkg])
	}
	builds[pkg] = out
	return out
}

// goTool is the go command on PATH: the test runs under it, so it exists.
func goTool() string { return "go" }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil || !fileExists(filepath.Join(dir, "go.mod")) {
		t.Fatalf("module root not found from %s", dir)
	}
	return dir
}

// testConfig is a config for dir with the run's shared compilation cache.
func testConfig(dir string) Config {
	return Config{Dir: dir, CacheDir: compileCache, PollInterval: -1}
}

// memSink is the registries in miniature: what core/app does over
// countdown.Registry and callback.Registry, with the same conflict rule.
type memSink struct {
	mu         sync.Mutex
	countdowns map[string]webhook.Countdown
	callbacks  map[string]webhook.CallbackFunc
	filters    map[string]webhook.Filter
	transforms map[string]webhook.Transform
	sources    map[string]string // key → source, every kind ("cd:", "cb:", "fi:", "tr:" prefixed)
}

func newSink() *memSink {
	return &memSink{countdowns: map[string]webhook.Countdown{}, callbacks: map[string]webhook.CallbackFunc{},
		filters: map[string]webhook.Filter{}, transforms: map[string]webhook.Transform{}, sources: map[string]string{}}
}

func (s *memSink) Apply(source string, r webhook.Registrations) error {
	cds, cbs := r.Countdowns, r.Callbacks
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range cds {
		if src, ok := s.sources["cd:"+k]; ok && src != source {
			return fmt.Errorf("%s: key %q is already registered by %s", source, k, src)
		}
	}
	for k := range cbs {
		if src, ok := s.sources["cb:"+k]; ok && src != source {
			return fmt.Errorf("%s: key %q is already registered by %s", source, k, src)
		}
	}
	for k := range r.Filters {
		if src, ok := s.sources["fi:"+k]; ok && src != source {
			return fmt.Errorf("%s: filter %q is already registered by %s", source, k, src)
		}
	}
	for k := range r.Transforms {
		if src, ok := s.sources["tr:"+k]; ok && src != source {
			return fmt.Errorf("%s: transform %q is already registered by %s", source, k, src)
		}
	}
	for k, src := range maps.Clone(s.sources) {
		if src == source {
			delete(s.sources, k)
			switch k[:3] {
			case "cd:":
				delete(s.countdowns, k[3:])
			case "cb:":
				delete(s.callbacks, k[3:])
			case "fi:":
				delete(s.filters, k[3:])
			case "tr:":
				delete(s.transforms, k[3:])
			}
		}
	}
	for k, v := range r.Filters {
		s.filters[k], s.sources["fi:"+k] = v, source
	}
	for k, v := range r.Transforms {
		s.transforms[k], s.sources["tr:"+k] = v, source
	}
	for k, v := range cds {
		s.countdowns[k], s.sources["cd:"+k] = v, source
	}
	for k, v := range cbs {
		s.callbacks[k], s.sources["cb:"+k] = v, source
	}
	return nil
}

func (s *memSink) countdown(t testing.TB, name string) webhook.Countdown {
	t.Helper()
	return lookup(t, s, s.countdowns, "countdown", name)
}

func (s *memSink) callback(t testing.TB, name string) webhook.CallbackFunc {
	t.Helper()
	return lookup(t, s, s.callbacks, "callback", name)
}

func (s *memSink) filter(t testing.TB, name string) webhook.Filter {
	t.Helper()
	return lookup(t, s, s.filters, "filter", name)
}

func (s *memSink) transform(t testing.TB, name string) webhook.Transform {
	t.Helper()
	return lookup(t, s, s.transforms, "transform", name)
}

// lookup returns m[name] under s's lock, failing t when it is missing.
func lookup[T any](t testing.TB, s *memSink, m map[string]T, kind, name string) T {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[name]
	if !ok {
		t.Fatalf("%s %q not registered; have %v", kind, name, s.sources)
	}
	return v
}

func (s *memSink) has(kind, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sources[kind+":"+key]
	return ok
}

// copyFile puts src into dir under name.
func copyFile(t testing.TB, src, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newLogger(t testing.TB) (*slog.Logger, *testlog.Buffer) {
	lb := &testlog.Buffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// startHost starts a host over dir and closes it at cleanup.
func startHost(t testing.TB, cfg Config, sink Sink) (*Host, *testlog.Buffer) {
	t.Helper()
	logger, lb := newLogger(t)
	h, err := New(cfg, sink, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return h, lb
}

// infoOf returns the Info of file.
func infoOf(t testing.TB, h *Host, file string) Info {
	t.Helper()
	for _, i := range h.Plugins() {
		if i.File == file {
			return i
		}
	}
	t.Fatalf("no plugin %s in %+v", file, h.Plugins())
	return Info{}
}
