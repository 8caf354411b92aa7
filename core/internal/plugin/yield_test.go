package plugin

import (
	"context"
	"github.com/whisperer/whisperer/internal/testlog"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// goroutineGuest builds a Go guest whose background worker goroutine is
// started at init: in package worker (imported path worker) or in main.
// Callback "work" hands each call's number to the worker and logs how many
// earlier calls the worker has not seen yet.
func goroutineGuest(t *testing.T, workerPath string, inMain bool) string {
	t.Helper()
	dir := t.TempDir()
	root := moduleRoot(t)
	mod := strings.SplitN(workerPath, "/", 3)[0] + "/" + strings.SplitN(workerPath, "/", 3)[1]
	files := map[string]string{
		"go.mod": "module " + mod + "\n\ngo 1.26\n\nrequire github.com/whisperer/whisperer v0.0.0\n\nreplace github.com/whisperer/whisperer => " + root + "\n",
		filepath.Join(strings.TrimPrefix(workerPath, mod+"/"), "w.go"): `package worker

var In = make(chan int, 64)
var Done int

func loop() {
	for v := range In {
		Done = v
	}
}

func Start() { go loop() }

func init() {
	if !` + strconv.FormatBool(inMain) + ` {
		Start()
	}
}
`,
		"main.go": `package main

import (
	"strconv"

	"` + workerPath + `"
	"github.com/whisperer/whisperer/sdk"
)

var n int

func init() {
	if ` + strconv.FormatBool(inMain) + ` {
		worker.Start()
	}
	sdk.RegisterCallback("work", func(d *sdk.Delivery) error {
		n++
		lag := n - 1 - worker.Done
		worker.In <- n
		sdk.Log(sdk.LevelInfo, "lag "+strconv.Itoa(lag))
		return nil
	})
}

func main() {}
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "guest.wasm")
	// -trimpath: the same bytes from every temporary directory, so that
	// the compilation cache kept across runs serves them (see compileCache).
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build guest: %v\n%s", err, b)
	}
	return out
}

// TestGoGuestGoroutinesRunAfterEveryCall: the SDK yields after every call
// while any goroutine besides the export's exists (ABI.md §11), whether
// the plugin's main package started it or a library's init did — one
// initialized before the SDK's ("example.com/..." sorts first) included.
func TestGoGuestGoroutinesRunAfterEveryCall(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		inMain     bool
	}{
		{"started in main's init", "example.com/guest/worker", true},
		{"started in a library's init", "example.com/guest/worker", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, goroutineGuest(t, tc.path, tc.inMain), dir, "work.wasm")
			var lb testlog.Buffer
			sink := newSink()
			h, err := New(testConfig(dir), sink, slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelInfo})))
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer h.Stop(context.Background())
			cb := sink.callback(t, "work")
			for i := range 20 {
				if err := cb(context.Background(), callbackDoc(t, 0)); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			maxLag := 0
			for _, m := range regexp.MustCompile(`lag (\d+)`).FindAllStringSubmatch(lb.String(), -1) {
				n, _ := strconv.Atoi(m[1])
				maxLag = max(maxLag, n)
			}
			if maxLag > 0 {
				t.Errorf("the plugin's worker goroutine fell %d calls behind: it was not yielded to after every call", maxLag)
			}
		})
	}
}
