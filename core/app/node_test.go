package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/internal/testlog"
)

// node is a whole Whisperer node in this process: the real wiring, a real
// database, a real listener.
type node struct {
	*app.App
	url   string
	logs  *testlog.Buffer
	dbURL string
}

// startNode serves a node on backend with loopback deliveries allowed,
// short polls, the given plugin files (from ../plugin/testdata) and cfg
// changed by mutate. It stops when t ends.
func startNode(t *testing.T, backend string, plugins []string, mutate func(*config.Config)) *node {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugins {
		copyPlugin(t, dir, p)
	}
	n := serveNode(t, backend, dir, mutate)
	<-n.Plugins.Loaded() // the node loads them in the background
	return n
}

// copyPlugin copies the plugin file name from ../plugin/testdata into dir.
func copyPlugin(t *testing.T, dir, name string) {
	t.Helper()
	copyInto(t, filepath.Join("..", "internal", "plugin", "testdata", name), dir)
}

// copyInto copies the file src into dir under its own name.
func copyInto(t *testing.T, src, dir string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serveNode serves a node as startNode does over the plugin directory dir,
// and returns without waiting for its plugins.
func serveNode(t *testing.T, backend, dir string, mutate func(*config.Config)) *node {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.Database.URL = storetest.URL(t, backend)
	cfg.Delivery.AllowNetworks = []string{"127.0.0.0/8"}
	cfg.Delivery.PollInterval = 50 * time.Millisecond
	cfg.Plugins.Dir = dir
	cfg.Plugins.CacheDir = filepath.Join(dir, ".cache")
	cfg.Server.ShutdownTimeout = 5 * time.Second
	if backend == "postgres" {
		cfg.Security.EncryptionKeys = []string{storetest.Key} // required there
	}
	if mutate != nil {
		mutate(cfg)
	}
	n := &node{logs: &testlog.Buffer{}, dbURL: cfg.Database.URL}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.NewLogger(cfg.Log, n.logs))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n.App = a
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n.url = "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", n.logs)
		}
	})
	return n
}

// do sends a JSON request with token and decodes the JSON answer into out
// (when not nil), failing t unless the status is want.
func (n *node) do(t *testing.T, method, path, token string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

var errNotYet = errors.New("not yet")

// notYet says what is still missing.
func notYet(what ...string) error {
	return errors.Join(errNotYet, errors.New(strings.Join(what, " ")))
}
