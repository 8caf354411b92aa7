// Package clients_test runs the client code in clients/ against a real
// whisperer server: the Python publisher's unittest suite
// (clients/python), and the receivers of docs/RECEIVING.md
// (clients/receiving) on real deliveries. The server is the binary built
// from cmd/whisperer and driven through its CLI and REST API only.
package clients_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/internal/poll"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// build compiles pkg (relative to this directory) into a temporary
// directory once per test binary; the whisperer binary is shared.
func build(t *testing.T, pkg, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func whispererBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "whisperer-clients")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "whisperer")
		if b, err := exec.Command("go", "build", "-o", binPath, "../cmd/whisperer").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ../cmd/whisperer: %v\n%s", err, b)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// need skips the test when tool is missing, or fails it where
// WHISPERER_TEST_CLIENTS=1 (as in .ci/run) says the clients must be tested.
func need(t *testing.T, tool, what string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("WHISPERER_TEST_CLIENTS") == "1" {
		t.Fatalf("%s is not installed, and WHISPERER_TEST_CLIENTS=1: %s", tool, what)
	}
	t.Skipf("%s is not installed: %s (WHISPERER_TEST_CLIENTS=1 makes this a failure)", tool, what)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// server is one `whisperer serve` on SQLite in a temporary directory.
type server struct {
	url string
	env []string
}

func (s *server) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(whispererBinary(t), args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("whisperer %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// user creates a user and returns its token (the last line printed).
func (s *server) user(t *testing.T, args ...string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(s.cli(t, append([]string{"users", "create"}, args...)...)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	addr := "127.0.0.1:" + freePort(t)
	s := &server{url: "http://" + addr, env: append(os.Environ(),
		"WHISPERER_CONFIG=/dev/null",
		"WHISPERER_DATABASE_URL=sqlite://"+filepath.Join(dir, "whisperer.db"),
		// The receivers listen on loopback, which the SSRF guard refuses
		// by default.
		"WHISPERER_DELIVERY_ALLOW_NETWORKS=127.0.0.0/8",
		"WHISPERER_PLUGINS_DIR="+filepath.Join(dir, "plugins"),
		"WHISPERER_PLUGINS_CACHE_DIR="+filepath.Join(dir, "cache"),
		"WHISPERER_REQUEST_TIMEOUT=5",
		"WHISPERER_DELIVERY_POLL_INTERVAL=200ms",
		"WHISPERER_LOG_LEVEL=warn",
	)}
	logs := &bytes.Buffer{}
	cmd := exec.Command(whispererBinary(t), "serve", "--addr", addr)
	cmd.Env, cmd.Stdout, cmd.Stderr = s.env, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	if err := poll.Healthy(s.url+"/readyz", 30*time.Second, done); err != nil {
		t.Fatalf("server never became ready: %v\n%s", err, logs)
	}
	return s
}

func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
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

// TestPythonClient runs clients/python's unittest suite against a real
// server, as a publisher.
func TestPythonClient(t *testing.T) {
	t.Parallel() // each starts its own server
	python := need(t, "python3", "the Python client's tests need it")
	s := startServer(t)
	token := s.user(t, "python-publisher", "--publisher")
	cmd := exec.Command(python, "-m", "unittest", "discover", "-v", "-s", "tests")
	cmd.Dir = "python"
	cmd.Env = append(os.Environ(), "WHISPERER_URL="+s.url, "WHISPERER_TOKEN="+token,
		"WHISPERER_TEST_EVENT_TYPE=package-created", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
	// The suite skips its server tests without a server: make sure they ran.
	if bytes.Contains(out, []byte("skipped \"set WHISPERER_URL")) || !bytes.Contains(out, []byte("test_sync_publish_delivers_inline")) {
		t.Fatalf("the server tests did not run:\n%s", out)
	}
	t.Logf("%s", out)
}

// recorded is a delivery as a receiver got it.
type recorded struct {
	header http.Header
	body   []byte
}

// recorder is a hook target that keeps the last delivery per path.
type recorder struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]recorded
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{got: map[string]recorded{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got[req.URL.Path] = recorded{req.Header.Clone(), body}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) last(t *testing.T, path string) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	got, ok := r.got[path]
	if !ok {
		t.Fatalf("the recorder got nothing on %s", path)
	}
	return got
}

// receiver is one of clients/receiving's programs, listening on port.
type receiver struct {
	lang string
	url  string
}

// startReceiver runs argv (with PORT, WHISPERER_SECRET and
// WHISPERER_PREVIOUS_SECRET set) and waits until it listens.
func startReceiver(t *testing.T, lang, secret, previous string, argv ...string) receiver {
	t.Helper()
	port := freePort(t)
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "$PORT", port)
	}
	var logs bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "receiving"
	cmd.Env = append(os.Environ(), "PORT="+port, "WHISPERER_SECRET="+secret, "WHISPERER_PREVIOUS_SECRET="+previous)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s receiver output:\n%s", lang, logs.String())
		}
	})
	poll.UntilNil(t, 30*time.Second, func() error {
		select {
		case <-done:
			t.Fatalf("the %s receiver exited:\n%s", lang, logs.String())
		default:
		}
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err
	})
	return receiver{lang: lang, url: "http://127.0.0.1:" + port}
}

// receivers starts every snippet whose interpreter is installed.
func receivers(t *testing.T, secret, previous string) []receiver {
	t.Helper()
	// Python's and Node's are required (need); PHP's and Ruby's run where
	// their interpreter happens to be installed.
	need(t, "python3", "the Python receiver is tested with it")
	need(t, "node", "the Node receiver is tested with it")
	rs := []receiver{startReceiver(t, "go", secret, previous, build(t, "./receiving", "verify"))}
	for _, c := range []struct {
		lang string
		argv []string
	}{
		{"python", []string{"python3", "verify.py"}},
		{"node", []string{"node", "verify.js"}},
		{"php", []string{"php", "-S", "127.0.0.1:$PORT", "verify.php"}},
		{"ruby", []string{"rackup", "--host", "127.0.0.1", "--port", "$PORT", "verify.rb"}},
	} {
		if _, err := exec.LookPath(c.argv[0]); err != nil {
			t.Logf("%s is not installed: the %s receiver is not run", c.argv[0], c.lang)
			continue
		}
		rs = append(rs, startReceiver(t, c.lang, secret, previous, c.argv...))
	}
	return rs
}

// send POSTs a recorded delivery to url and returns the status.
func send(t *testing.T, url string, d recorded) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	for _, name := range []string{"Content-Type", "X-Whisperer-Event", "X-Whisperer-Signature", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		if v := d.header.Get(name); v != "" {
			req.Header.Set(name, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// resign is d signed as Whisperer signs it, with secret at ts: the
// test's own signer, to make a request that differs from a genuine one
// only in its timestamp.
func resign(d recorded, secret string, ts time.Time) recorded {
	h := d.header.Clone()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h.Get("Webhook-Id") + "." + stamp + "."))
	mac.Write(d.body)
	h.Set("Webhook-Timestamp", stamp)
	h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return recorded{h, d.body}
}

// TestReceivers runs each receiver of docs/RECEIVING.md as a hook's
// target: it must accept Whisperer's genuine deliveries, by both
// signatures, and refuse altered ones.
func TestReceivers(t *testing.T) {
	t.Parallel() // each starts its own server
	const (
		secret   = "s3cret-ü-with spaces" // not ASCII: the key is its UTF-8 bytes
		previous = "the-previous-secret"
		wrong    = "another-hook's-secret"
		rotated  = "the-rotated-secret"
	)
	s := startServer(t)
	pub := s.user(t, "pub", "--publisher")
	sub := s.user(t, "sub")
	rec := newRecorder(t)
	rs := receivers(t, secret, previous)

	hook := func(target, key string) int64 {
		t.Helper()
		code, body := call(t, "POST", s.url+"/whisperer/hooks/", sub, map[string]any{
			"event_type": "order-created", "target_url": target, "secret_key": key,
			"retry_countdown_config": map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 60}},
		})
		if code != 201 {
			t.Fatalf("register %s: %d %s", target, code, body)
		}
		var h struct{ ID int64 }
		_ = json.Unmarshal(body, &h)
		return h.ID
	}
	names := map[int64]string{}
	for _, r := range rs {
		names[hook(r.url+"/", secret)] = r.lang + " standard"
		names[hook(r.url+"/dj-whisperer", secret)] = r.lang + " dj-whisperer"
		names[hook(r.url+"/old/", previous)] = r.lang + " standard, previous secret"
		names[hook(r.url+"/dj-whisperer?old", previous)] = r.lang + " dj-whisperer, previous secret"
	}
	genuineID := hook(rec.URL+"/genuine", secret)
	hook(rec.URL+"/wrong", wrong)

	publish := func() {
		t.Helper()
		code, body := call(t, "POST", s.url+"/whisperer/events/", pub, map[string]any{
			"event_type": "order-created", "async": false,
			"payload": map[string]any{"id": 7, "name": "café", "note": "a \"quoted\" <tag>\n"},
		})
		if code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
		var got struct {
			Events []struct {
				Webhook      int64
				Delivered    bool
				Status       *int `json:"response_http_status"`
				Error, State string
			}
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		for _, e := range got.Events {
			if !e.Delivered {
				t.Errorf("the %s receiver refused a genuine delivery: %v %q %s", names[e.Webhook], e.Status, e.Error, e.State)
			}
		}
	}
	// Genuine deliveries: every receiver accepts them, by either signature
	// and with the secret first or second in its list.
	publish()
	if t.Failed() {
		return
	}
	genuine := rec.last(t, "/genuine")
	otherSecret := rec.last(t, "/wrong")

	tampered := recorded{genuine.header, bytes.Replace(genuine.body, []byte(`"id":7`), []byte(`"id":8`), 1)}
	if bytes.Equal(tampered.body, genuine.body) {
		t.Fatalf("the body has no \"id\":7: %s", genuine.body)
	}
	noSignature := recorded{genuine.header.Clone(), genuine.body}
	noSignature.header.Del("X-Whisperer-Signature")
	noSignature.header.Del("Webhook-Signature")

	cases := []struct {
		name     string
		d        recorded
		standard int // the answer of the Standard Webhooks route
		dj       int // of the dj-whisperer route
	}{
		{"genuine, replayed at once", genuine, 204, 204},
		{"body changed", tampered, 401, 401},
		{"signed with another secret", otherSecret, 401, 401},
		{"no signature", noSignature, 401, 401},
		// The test's signer reproduces Whisperer's (first case), so the
		// next ones differ from a genuine request only in the timestamp.
		{"re-signed now", resign(genuine, secret, time.Now()), 204, 204},
		{"timestamp 10 minutes old", resign(genuine, secret, time.Now().Add(-10*time.Minute)), 401, 204},
		{"timestamp 10 minutes ahead", resign(genuine, secret, time.Now().Add(10*time.Minute)), 401, 204},
		{"timestamp 4 minutes old", resign(genuine, secret, time.Now().Add(-4*time.Minute)), 204, 204},
		{"timestamp not a number", func() recorded {
			d := recorded{genuine.header.Clone(), genuine.body}
			d.header.Set("Webhook-Timestamp", "1e9")
			return d
		}(), 401, 204},
	}
	for _, r := range rs {
		for _, c := range cases {
			if got := send(t, r.url+"/", c.d); got != c.standard {
				t.Errorf("%s, Standard Webhooks: %s answered %d, want %d", r.lang, c.name, got, c.standard)
			}
			// X-Whisperer-Signature has no timestamp: a replay is caught
			// only by webhook-id (RECEIVING.md says so).
			if got := send(t, r.url+"/dj-whisperer", c.d); got != c.dj {
				t.Errorf("%s, dj-whisperer: %s answered %d, want %d", r.lang, c.name, got, c.dj)
			}
		}
	}

	// Rotation: for the overlap webhook-signature carries the new and the
	// old secret's signatures, X-Whisperer-Signature the new one only. The
	// receivers still know only the old secret (secret).
	code, body := call(t, "PATCH", fmt.Sprintf("%s/whisperer/hooks/%d/", s.url, genuineID), sub,
		map[string]any{"secret_key": rotated, "rotate": true})
	if code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	publish()
	during := rec.last(t, "/genuine")
	if sigs := strings.Fields(during.header.Get("Webhook-Signature")); len(sigs) != 2 {
		t.Fatalf("webhook-signature during a rotation = %q, want two signatures", sigs)
	}
	for _, r := range rs {
		if got := send(t, r.url+"/", during); got != 204 {
			t.Errorf("%s, Standard Webhooks: the old secret's signature, second of two, answered %d", r.lang, got)
		}
		if got := send(t, r.url+"/dj-whisperer", during); got != 401 {
			t.Errorf("%s, dj-whisperer: a rotated hook's X-Whisperer-Signature with the old secret answered %d", r.lang, got)
		}
	}
}

// TestReceivingDoc checks that every code block docs/RECEIVING.md takes
// from a file is that file, byte for byte, and that every receiver file
// is in the document: the documented code is the tested code.
func TestReceivingDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/RECEIVING.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- verbatim: "
	included := map[string]bool{}
	rest := string(doc)
	for {
		i := strings.Index(rest, marker)
		if i < 0 {
			break
		}
		rest = rest[i+len(marker):]
		name, after, ok := strings.Cut(rest, " -->\n")
		if !ok {
			t.Fatalf("unterminated %q", marker+rest[:min(40, len(rest))])
		}
		// The fence opens on the next line and closes on a line of its own.
		open, block, ok := strings.Cut(after, "\n")
		if !ok || !strings.HasPrefix(open, "```") {
			t.Fatalf("%s: no code block right after its marker", name)
		}
		block, _, ok = strings.Cut(block, "\n```\n")
		if !ok {
			t.Fatalf("%s: the code block is not closed", name)
		}
		file, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("RECEIVING.md includes %s: %v", name, err)
		}
		if block+"\n" != string(file) {
			t.Errorf("the %s block in docs/RECEIVING.md differs from the file: copy the file into the document", name)
		}
		included[name] = true
	}
	files, err := filepath.Glob("receiving/verify.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := "clients/" + filepath.ToSlash(f); !included[name] {
			t.Errorf("docs/RECEIVING.md does not include %s", name)
		}
	}
	if len(included) < 5 {
		t.Errorf("docs/RECEIVING.md includes %d files, want the five languages'", len(included))
	}
}
