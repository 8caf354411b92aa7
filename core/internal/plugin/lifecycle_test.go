package plugin

import (
	"context"
	"errors"
	"testing"

	"github.com/whisperer/whisperer/core/internal/service"
)

// The host keeps the service rules: one Start, Stop before Start or twice
// is fine, and a stopped host does not start again.
func TestHostLifecycle(t *testing.T) {
	ctx := context.Background()
	idle, err := New(Config{Dir: t.TempDir()}, newSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := idle.Stop(ctx); err != nil {
			t.Fatalf("Stop without Start: %v", err)
		}
	}
	if err := idle.Start(ctx); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("Start after Stop: %v", err)
	}

	h, err := New(Config{Dir: t.TempDir()}, newSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	for range 2 {
		if err := h.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
}
