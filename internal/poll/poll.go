// Package poll waits for a state that other goroutines or processes
// reach in their own time: a row delivered, a plugin registered, a node
// answering /healthz. Tests poll rather than sleep a fixed time, so they
// are as fast as the machine allows and fail only when the state never
// comes. It lives under the module's internal/ so every package of the
// module (tests and the bench tool) can share one loop.
package poll

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// T is the part of testing.TB the waits need; taking it rather than
// testing.TB keeps "testing" out of the bench binary.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// every is the pause between two looks: short next to the timeouts, long
// enough not to starve the goroutines being waited for.
const every = 10 * time.Millisecond

// Until polls cond until it holds, failing t after timeout with "timed
// out waiting for what".
func Until(t T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilNil(t, timeout, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("timed out waiting for %s", what)
	})
}

// UntilNil polls cond until it returns nil, failing t with its last
// error after timeout, so the failure says what was still missing.
func UntilNil(t T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(every)
	}
}

// ErrExited is Healthy's answer when the process it waits for ends first.
var ErrExited = errors.New("exited before it became healthy")

// Healthy GETs url every 50ms until it answers 200 OK. It returns
// ErrExited as soon as exited is closed (the process died: waiting on is
// pointless) and an error after timeout.
func Healthy(url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return ErrExited
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s never answered 200 in %s", url, timeout)
}
