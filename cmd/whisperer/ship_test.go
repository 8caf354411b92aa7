package main

// What ships: the release build's flags (the binary every end-to-end test
// runs is built with them), `whisperer version`, `whisperer health` (the
// container's health check) and the container image's configuration.

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whisperer/whisperer/internal/poll"
	"github.com/whisperer/whisperer/internal/testlog"
)

// The -X values the test binary is built with.
const (
	testVersion  = "v0.0.0-shiptest"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

// releaseBuild is the command that builds cmd/whisperer to out as
// scripts/release.sh and the Containerfile do: static, stripped, no build
// paths, version given with -X.
func releaseBuild(out string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.buildVersion="+testVersion+" -X main.buildRevision="+testRevision,
		"-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

func TestVersionVerb(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version", "--json"}, nil, &out, &errb); err != nil {
		t.Fatalf("version --json: %v\n%s", err, errb.String())
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("version --json printed %q: %v", out.String(), err)
	}
	if v.Version == "" || v.GoVersion != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json = %+v, want a version, %s and %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "whisperer "+v.Version+"\n") || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("version printed %q", out.String())
	}
	if err := run(context.Background(), []string{"version", "extra"}, nil, &out, &errb); !errors.Is(err, errUsage) {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8000":  "http://127.0.0.1:8000/readyz",
		"0.0.0.0:8000":    "http://127.0.0.1:8000/readyz",
		":8000":           "http://127.0.0.1:8000/readyz",
		"[::]:9000":       "http://[::1]:9000/readyz",
		"10.1.2.3:80":     "http://10.1.2.3:80/readyz",
		"whisperer:8000":  "http://whisperer:8000/readyz",
		"[2001:db8::1]:1": "http://[2001:db8::1]:1/readyz",
	} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestHealthVerb(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"detail": "The database is unavailable; try again shortly."}`))
	}))
	defer srv.Close()
	health := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"health"}, args...), nil, &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := health("--url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "database is unavailable") {
		t.Errorf("health on a 503: %v (%s), want an error quoting the answer", err, out)
	}
	status = http.StatusOK
	if out, err := health("--url", srv.URL+"/readyz"); err != nil || !strings.Contains(out, "healthy") {
		t.Errorf("health on a 200: %v (%s)", err, out)
	}
	// From the configuration: server.addr, the path /readyz.
	var out, errb bytes.Buffer
	vars := []string{"WHISPERER_CONFIG=/dev/null", "WHISPERER_SERVER_ADDR=" + strings.TrimPrefix(srv.URL, "http://")}
	if err := run(context.Background(), []string{"health"}, vars, &out, &errb); err != nil {
		t.Errorf("health from server.addr: %v\n%s", err, errb.String())
	}
	srv.Close()
	if out, err := health("--url", srv.URL+"/readyz", "--timeout", "2s"); err == nil || !strings.Contains(err.Error(), "unhealthy") {
		t.Errorf("health with nothing listening: %v (%s)", err, out)
	}
	for _, bad := range [][]string{{"--url", "ftp://x/readyz"}, {"--url", "not a url"}, {"--timeout", "0s"}, {"extra"}} {
		if out, err := health(bad...); !errors.Is(err, errUsage) {
			t.Errorf("health %v: %v (%s), want a usage error", bad, err, out)
		}
	}
}

// TestReleaseBinary checks the binary the e2e tests run, built with the
// release flags: static, stripped, still reporting its version, and
// serving with the container image's configuration, which health finds
// ready.
func TestReleaseBinary(t *testing.T) {
	bin := binary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release binary has an ELF interpreter: it is not static (CGO_ENABLED=0)")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the release binary has a symbol table: -s did not strip it")
	}
	f.Close()

	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --json printed %q: %v", out, err)
	}
	// The go command's own vcs.revision, where it could read .git, wins
	// over -X; the explicit version always does.
	if v.Version != testVersion || v.Revision == "" || v.GoVersion != runtime.Version() {
		t.Errorf("stripped binary's version = %+v, want %s, a revision and %s", v, testVersion, runtime.Version())
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	env := append(os.Environ(),
		"WHISPERER_CONFIG="+filepath.Join("..", "..", "contrib", "container", "whisperer.yaml"),
		"WHISPERER_SERVER_ADDR="+addr,
		"WHISPERER_DATABASE_URL=sqlite://"+filepath.Join(dir, "whisperer.db"),
		"WHISPERER_PLUGINS_DIR="+filepath.Join(dir, "plugins"),
		"WHISPERER_PLUGINS_CACHE_DIR="+filepath.Join(dir, "cache"),
	)
	if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	health := exec.Command(bin, "health", "--timeout", "2s")
	health.Env = env
	if out, err := health.CombinedOutput(); err == nil {
		t.Fatalf("health before serve succeeded: %s", out)
	}

	var logs testlog.Buffer
	srv := exec.Command(bin, "serve")
	srv.Env, srv.Stdout, srv.Stderr = env, &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = srv.Wait(); close(exited) }()
	defer func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	}()
	poll.UntilNil(t, 60*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("serve exited: %v", waitErr)
		default:
		}
		h := exec.Command(bin, "health", "--timeout", "2s")
		h.Env = env
		if out, err := h.CombinedOutput(); err != nil {
			return errors.New(strings.TrimSpace(string(out)))
		}
		return nil
	})
	// The container's configuration logs JSON (the line may follow the
	// first answer: the server answers once it listens).
	poll.UntilNil(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), `"msg":"serving"`) {
			return errors.New("serve with the container's config did not log JSON")
		}
		return nil
	})
	// systemctl reload (contrib/systemd) sends SIGHUP: the plugin
	// directory is loaded again and the server goes on; SIGHUP's default
	// action would end it.
	if err := os.WriteFile(filepath.Join(dir, "plugins", "bad.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = srv.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the reload to report bad.wasm", func() bool { return strings.Contains(logs.String(), "bad.wasm") })
	h := exec.Command(bin, "health")
	h.Env = env
	if out, err := h.CombinedOutput(); err != nil {
		t.Fatalf("health after SIGHUP: %v: %s", err, out)
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	<-exited
	if waitErr != nil {
		t.Errorf("serve after SIGTERM: %v", waitErr)
	}
}

// TestSystemdUnit runs systemd-analyze verify on contrib/systemd's unit,
// whose ExecStart is pointed at the test binary: any warning fails.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", "whisperer.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=whisperer", "SystemCallFilter=@system-service", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "\nMemoryDenyWriteExecute=") {
		t.Error("MemoryDenyWriteExecute is set: wazero's compiled plugins would fail to load")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	path := filepath.Join(t.TempDir(), "whisperer.service")
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/whisperer"), []byte(binary(t)))
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
