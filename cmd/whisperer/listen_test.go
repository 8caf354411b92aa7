package main

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app/apptest"
	"github.com/whisperer/whisperer/internal/poll"
	"github.com/whisperer/whisperer/internal/testlog"
)

// listener is one `whisperer listen` process.
type listener struct {
	cmd            *exec.Cmd
	addr           string
	stdout, stderr *testlog.Buffer
	done           chan struct{}
	err            error
}

func startListen(t *testing.T, args ...string) *listener {
	t.Helper()
	l := &listener{addr: freeAddr(t), stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, done: make(chan struct{})}
	l.cmd = exec.Command(binary(t), append([]string{"listen", "--addr", l.addr}, args...)...)
	l.cmd.Stdout, l.cmd.Stderr = l.stdout, l.stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.err = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-l.done
		if t.Failed() {
			t.Logf("listen %s:\n%s%s", l.addr, l.stderr, l.stdout)
		}
	})
	waitFor(t, l.stderr, "listening on")
	return l
}

// waitFor polls b until it contains every one of want.
func waitFor(t *testing.T, b *testlog.Buffer, want ...string) {
	t.Helper()
	poll.UntilNil(t, 15*time.Second, func() error {
		s := b.String()
		for _, w := range want {
			if !strings.Contains(s, w) {
				return fmt.Errorf("output lacks %q:\n%s", w, s)
			}
		}
		return nil
	})
}

// stop sends SIGINT and expects a clean exit with a summary.
func (l *listener) stop(t *testing.T) {
	t.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not exit after SIGINT")
	}
	if l.err != nil {
		t.Errorf("listen exited with %v", l.err)
	}
	waitFor(t, l.stderr, "received ")
}

// `whisperer listen` verifies both signatures of real deliveries from a
// real server, and one that fails every request makes the server retry.
func TestListen(t *testing.T) {
	env := baseEnv(apptest.URL(t, "sqlite"))
	n := startNode(t, env)
	ok := startListen(t, "--secret", "s3cret")
	failing := startListen(t, "--secret", "s3cret", "--fail-rate", "1")
	pub := lastLine(cli(t, env, "users", "create", "pub", "--publisher"))
	sub := lastLine(cli(t, env, "users", "create", "sub"))
	for _, l := range []*listener{ok, failing} {
		code, body := do(t, "POST", "http://"+n.addr+"/whisperer/hooks/", sub, map[string]any{
			"event_type": "order-created", "target_url": "http://" + l.addr + "/", "secret_key": "s3cret",
			"retry_countdown_config": map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 1}},
		})
		if code != 201 {
			t.Fatalf("register hook: %d %s", code, body)
		}
	}
	code, body := do(t, "POST", "http://"+n.addr+"/whisperer/events/", pub, map[string]any{
		"event_type": "order-created", "payload": map[string]any{"id": 7, "name": "box"},
	})
	if code != 202 {
		t.Fatalf("publish: %d %s", code, body)
	}
	waitFor(t, ok.stdout, "  order-created  ", "→ 200", "X-Whisperer-Signature: verified",
		"webhook-signature: verified", "\"name\": \"box\"")
	waitFor(t, failing.stdout, "→ 500, failed on purpose", "(request 2 for this event)")
	if strings.Contains(ok.stdout.String()+failing.stdout.String(), "invalid") {
		t.Error("a signature did not verify")
	}
	ok.stop(t)
	failing.stop(t)
	if s := ok.stderr.String(); !strings.Contains(s, "received 1 deliveries, 0 failed on purpose") {
		t.Errorf("summary: %s", s)
	}
}
