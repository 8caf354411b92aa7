package main

// End-to-end tests: the real whisperer binary as subprocesses, a real
// receiver, real databases. They cover what only whole processes show:
// crash safety (SIGKILL mid-flight), several nodes sharing one PostgreSQL,
// and graceful shutdown.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app/apptest"
	"github.com/whisperer/whisperer/internal/poll"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds cmd/whisperer once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "whisperer-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "whisperer")
		out, err := releaseBuild(binPath).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// receiver counts deliveries by webhook-id (the event uuid).
type receiver struct {
	*httptest.Server
	gate chan struct{} // requests wait until it is closed
	mu   sync.Mutex
	seen map[string]int
	got  chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{seen: map[string]int{}, got: make(chan struct{}, 1), gate: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		<-r.gate
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.seen[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) counts() (unique, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		total += n
	}
	return len(r.seen), total
}

// node is one `whisperer serve` process.
type node struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// baseEnv configures a node: its database (with the test encryption key on
// PostgreSQL, which requires one; SQLite makes its own key file), loopback
// deliveries allowed, no plugins, short retries.
func baseEnv(dbURL string) []string {
	env := os.Environ()
	if strings.HasPrefix(dbURL, "postgres") {
		env = append(env, "WHISPERER_SECURITY_ENCRYPTION_KEYS="+apptest.Key)
	}
	return append(env,
		"WHISPERER_CONFIG=/dev/null",
		"WHISPERER_DATABASE_URL="+dbURL,
		"WHISPERER_DELIVERY_ALLOW_NETWORKS=127.0.0.0/8",
		"WHISPERER_PLUGINS_DIR="+os.TempDir()+"/whisperer-no-plugins",
		"WHISPERER_REQUEST_TIMEOUT=2",
		"WHISPERER_DELIVERY_LEASE=10s",
		"WHISPERER_DELIVERY_POLL_INTERVAL=200ms",
		"WHISPERER_LOG_LEVEL=warn",
	)
}

func cli(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("whisperer %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func startNode(t *testing.T, env []string) *node {
	t.Helper()
	n := &node{addr: freeAddr(t), logs: &bytes.Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(binary(t), "serve", "--addr", n.addr)
	n.cmd.Env = env
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.err = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-n.done
		if t.Failed() {
			t.Logf("node %s logs:\n%s", n.addr, n.logs)
		}
	})
	switch err := poll.Healthy("http://"+n.addr+"/healthz", 30*time.Second, n.done); {
	case errors.Is(err, poll.ErrExited):
		t.Fatalf("node exited: %v\n%s", n.err, n.logs)
	case err != nil:
		t.Fatalf("node %s never became healthy: %v\n%s", n.addr, err, n.logs)
	}
	return n
}

func do(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// setup creates a publisher and a subscriber with one hook to target.
func setup(t *testing.T, env []string, n *node, target string) (pubToken string) {
	t.Helper()
	pubToken = lastLine(cli(t, env, "users", "create", "pub", "--publisher"))
	subToken := lastLine(cli(t, env, "users", "create", "sub"))
	code, body := do(t, "POST", "http://"+n.addr+"/whisperer/hooks/", subToken, map[string]any{
		"event_type": "order-created", "target_url": target, "secret_key": "s3cret",
		"retry_countdown_config": map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 1}},
	})
	if code != 201 {
		t.Fatalf("register hook: %d %s", code, body)
	}
	return pubToken
}

// publishAll publishes count events from a few goroutines, spreading them
// over the nodes.
func publishAll(t *testing.T, nodes []*node, token string, count int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, count)
	per := count / 4
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := nodes[(w+i)%len(nodes)]
				code, body := do(t, "POST", "http://"+n.addr+"/whisperer/events/", token,
					map[string]any{"event_type": "order-created", "payload": map[string]any{"i": w*per + i}})
				if code != 202 {
					errs <- fmt.Sprintf("publish: %d %s", code, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// waitDelivered polls the database until every event is delivered.
func waitDelivered(t *testing.T, dbURL string, want int64) {
	t.Helper()
	s, err := apptest.Open(context.Background(), dbURL, apptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	poll.UntilNil(t, 90*time.Second, func() error {
		c, err := s.Counts(context.Background())
		if err == nil && c["delivered"] != want {
			err = fmt.Errorf("not all delivered: %v (want %d delivered)", c, want)
		}
		return err
	})
}

// A node killed with SIGKILL mid-flight loses nothing: after a restart
// every event is received at least once and every row ends delivered.
func TestCrashSafetySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dbURL := apptest.URL(t, apptest.Postgres)
	env := baseEnv(dbURL)
	rcv := newReceiver(t)
	n := startNode(t, env)
	token := setup(t, env, n, rcv.URL)

	// Every event is accepted while the receiver holds the first requests;
	// then deliveries flow and the node is killed in the middle of them.
	const count = 2000
	publishAll(t, []*node{n}, token, count)
	close(rcv.gate)
	for u, _ := rcv.counts(); u < 300; u, _ = rcv.counts() {
		<-rcv.got
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.done
	before, _ := rcv.counts()
	startNode(t, env)
	waitDelivered(t, dbURL, count)
	unique, total := rcv.counts()
	if unique != count {
		t.Fatalf("receiver saw %d distinct events, want %d", unique, count)
	}
	t.Logf("killed after %d received; %d deliveries in all, %d duplicates (at-least-once)", before, total, total-unique)
}

// Three nodes on one PostgreSQL share the work with no coordinator: every
// event is delivered, and without faults none twice.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dbURL := apptest.URL(t, apptest.Postgres)
	env := baseEnv(dbURL)
	rcv := newReceiver(t)
	close(rcv.gate)
	nodes := []*node{startNode(t, env), startNode(t, env), startNode(t, env)}
	token := setup(t, env, nodes[0], rcv.URL)

	const count = 3000
	publishAll(t, nodes, token, count)
	waitDelivered(t, dbURL, count)
	unique, total := rcv.counts()
	if unique != count || total != count {
		t.Fatalf("received %d distinct, %d in all; want %d and %d", unique, total, count, count)
	}
}

// SIGTERM finishes in-flight deliveries and exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dbURL := apptest.URL(t, apptest.SQLite)
	env := baseEnv(dbURL)
	release := make(chan struct{})
	var inflight sync.WaitGroup
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Done()
		<-release
	}))
	defer slow.Close()
	n := startNode(t, env)
	token := setup(t, env, n, slow.URL)
	inflight.Add(1)
	code, body := do(t, "POST", "http://"+n.addr+"/whisperer/events/", token, map[string]any{"event_type": "order-created", "payload": 1})
	if code != 202 {
		t.Fatalf("publish: %d %s", code, body)
	}
	inflight.Wait() // the delivery is in flight
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	select {
	case <-n.done:
		if n.err != nil {
			t.Fatalf("exit: %v\n%s", n.err, n.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	s, err := apptest.Open(context.Background(), dbURL, apptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.Counts(context.Background())
	if c["delivered"] != 1 {
		t.Fatalf("in-flight delivery not finished before exit: %v\n%s", c, n.logs)
	}
}

func TestCLIHelpAndErrors(t *testing.T) {
	bin := binary(t)
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"users", "create", "--help"}, {"tokens", "revoke", "--help"}, {"version"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("whisperer %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(os.Environ(), "WHISPERER_CONFIG=/dev/null", "WHISPERER_DATABASE_URL=mysql://x")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "database.url") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "tokens", "create", "--bogus", "x")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown flag: --bogus") {
		t.Fatalf("unknown flag: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "frobnicate")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown verb") {
		t.Fatalf("unknown verb: %v\n%s", err, out)
	}
}
