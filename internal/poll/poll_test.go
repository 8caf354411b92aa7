package poll

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalT records Fatalf and ends the goroutine, as testing.T does.
type fatalT struct{ msg string }

func (*fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(f func(*fatalT)) string {
	t, done := &fatalT{}, make(chan struct{})
	go func() { defer close(done); f(t) }()
	<-done
	return t.msg
}

func TestUntilReportsWhatNeverHappened(t *testing.T) {
	msg := run(func(ft *fatalT) { Until(ft, 0, "the moon", func() bool { return false }) })
	if !strings.Contains(msg, "timed out waiting for the moon") {
		t.Fatalf("got %q", msg)
	}
	calls := 0
	if msg := run(func(ft *fatalT) {
		Until(ft, 0, "x", func() bool { calls++; return calls == 1 })
	}); msg != "" {
		t.Fatalf("a condition that holds failed: %q", msg)
	}
}

func TestUntilNilReportsTheLastError(t *testing.T) {
	msg := run(func(ft *fatalT) { UntilNil(ft, 0, func() error { return errors.New("3 of 4 delivered") }) })
	if !strings.Contains(msg, "3 of 4 delivered") {
		t.Fatalf("got %q", msg)
	}
}

func TestHealthy(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	if err := Healthy(ok.URL, 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	exited := make(chan struct{})
	close(exited)
	if err := Healthy(down.URL, 10*time.Second, exited); !errors.Is(err, ErrExited) {
		t.Fatalf("got %v, want ErrExited", err)
	}
	if err := Healthy(down.URL, 0, nil); err == nil {
		t.Fatal("a server answering 503 was called healthy")
	}
}
