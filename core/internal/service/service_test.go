package service_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/whisperer/whisperer/core/internal/service"
)

func TestFuncLifecycle(t *testing.T) {
	ctx := t.Context()
	ran := make(chan struct{})
	f := service.NewFunc(func(ctx context.Context) error {
		close(ran)
		<-ctx.Done()
		return errors.New("listener gave up")
	})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
	<-ran
	if err := f.Stop(ctx); err == nil || err.Error() != "listener gave up" {
		t.Fatalf("Stop: %v, want the function's error", err)
	}
	if err := f.Stop(ctx); err == nil {
		t.Fatal("a second Stop lost the function's error")
	}
	if err := f.Start(ctx); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("Start after Stop: %v, want ErrStarted", err)
	}
}

func TestStopWithoutStart(t *testing.T) {
	ran := false
	f := service.NewFunc(func(context.Context) error { ran = true; return nil })
	for range 2 {
		if err := f.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Start(t.Context()); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("Start after Stop: %v, want ErrStarted", err)
	}
	if ran {
		t.Fatal("a stopped service ran")
	}
}

// Stop gives up waiting when its context ends, and says so.
func TestStopWaitsUpToContext(t *testing.T) {
	release := make(chan struct{})
	f := service.NewFunc(func(context.Context) error { <-release; return nil })
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Stop(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with an ended context: %v", err)
	}
	close(release)
	if err := f.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// recorder notes starts and stops in one log; fail makes its Start fail.
type recorder struct {
	name string
	fail bool
	log  *[]string
}

func (r recorder) Start(context.Context) error {
	if r.fail {
		return errors.New("refused")
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r recorder) Stop(context.Context) error {
	*r.log = append(*r.log, "stop "+r.name)
	return nil
}

func TestStartAllInOrderStopAllInReverse(t *testing.T) {
	var log []string
	ss := []service.Service{recorder{"a", false, &log}, recorder{"b", false, &log}}
	if err := service.StartAll(t.Context(), ss...); err != nil {
		t.Fatal(err)
	}
	if err := service.StopAll(t.Context(), ss...); err != nil {
		t.Fatal(err)
	}
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

// A start error stops what started, in reverse, and names the service.
func TestStartAllUndoesOnError(t *testing.T) {
	var log []string
	err := service.StartAll(t.Context(), recorder{"a", false, &log}, recorder{"b", false, &log},
		service.Named{Name: "c", Service: recorder{"c", true, &log}}, recorder{"d", false, &log})
	if err == nil || err.Error() != "c: refused" {
		t.Fatalf("StartAll: %v", err)
	}
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}
