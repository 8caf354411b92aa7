package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/internal/testlog"
)

// A service that fails to start fails Run with its error: the services
// started before it are stopped, the plugins stopped, the database closed.
func TestRunSurfacesStartError(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.Database.URL = storetest.URL(t, "sqlite")
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Plugins.Dir = t.TempDir()
	var logs testlog.Buffer
	a, err := app.New(t.Context(), cfg, app.NewLogger(cfg.Log, &logs))
	if err != nil {
		t.Fatal(err)
	}
	// The publisher, started once already, refuses Run's start.
	if err := a.Publisher.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Publisher.Stop(t.Context()) })
	err = a.Run(t.Context())
	if !errors.Is(err, service.ErrStarted) || !strings.Contains(err.Error(), "publish") {
		t.Fatalf("Run: %v, want the publisher's start error", err)
	}
	// The dispatcher, started before the publisher, was stopped.
	if _, err := a.Dispatcher.DeliverNow(t.Context(), []int64{1}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("the dispatcher was left running: DeliverNow says %v", err)
	}
	if err := a.Plugins.Start(t.Context()); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("the plugin host was not stopped: Start says %v", err)
	}
	if err := a.Store.Ping(t.Context()); err == nil {
		t.Fatal("the database is still open")
	}
	if strings.Contains(logs.String(), "serving") {
		t.Fatalf("a node that failed to start served:\n%s", logs.String())
	}
}
