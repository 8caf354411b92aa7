package console_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"github.com/whisperer/whisperer/core/internal/config"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/testlog"
)

// node is a whole Whisperer node (the real wiring: API, console,
// dispatcher) on a real SQLite database and a real listener, with three
// users: alice and bob (role user) and root (admin).
type node struct {
	*app.App
	url                       string
	alice, bob, root          webhook.User
	aliceKey, bobKey, rootKey string
}

const eventType = "package-created"

// startNode starts a node; opts change its configuration first.
func startNode(t *testing.T, opts ...func(*config.Config)) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := app.DefaultConfig()
	cfg.Database.URL = storetest.URL(t, store.SQLite)
	cfg.Delivery.AllowNetworks = []string{"127.0.0.0/8"}
	cfg.Delivery.PollInterval = 50 * time.Millisecond
	cfg.Plugins.Dir = dir
	cfg.Plugins.CacheDir = dir
	// Above 5 s: http.Server.Shutdown waits that long for a connection
	// that never sent a request (chromium's preconnected sockets).
	cfg.Server.ShutdownTimeout = 15 * time.Second
	for _, o := range opts {
		o(cfg)
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.NewLogger(cfg.Log, logs))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n := &node{App: a, url: "http://" + ln.Addr().String()}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", logs)
		}
	})
	<-a.Plugins.Loaded() // the node loads them in the background
	n.alice, n.aliceKey = storetest.User(t, a.Store, "alice", webhook.RoleUser)
	n.bob, n.bobKey = storetest.User(t, a.Store, "bob", webhook.RoleUser)
	n.root, n.rootKey = storetest.User(t, a.Store, "root", webhook.RoleAdmin)
	return n
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	// cookie is sent as it is on every request (the portal's, which the
	// jar keeps for https only).
	cookie string
}

func (n *node) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: n.url, c: &http.Client{Jar: jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, headers ...string) answer {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(body)}
}

func (b *browser) get(path string) answer { b.t.Helper(); return b.do(http.MethodGet, path, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf returns the synchronizer token of the first form on path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	p := b.get(path)
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("GET %s: no csrf field in %d %s", path, p.status, p.body)
	}
	return m[1]
}

// signIn signs in with key and fails t unless it worked.
func (b *browser) signIn(key string) {
	b.t.Helper()
	tok := b.csrf("/sign-in")
	p := b.do(http.MethodPost, "/sign-in", url.Values{"csrf": {tok}, "token": {key}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/hooks" {
		b.t.Fatalf("sign-in = %d %s", p.status, p.body)
	}
}

// publish publishes payload through the API with root's token.
func (n *node) publish(t *testing.T, evType, payload string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"event_type": evType, "payload": json.RawMessage(payload)})
	req, _ := http.NewRequest(http.MethodPost, n.url+"/whisperer/events/", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Token "+n.rootKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK && res.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("publish = %d %s", res.StatusCode, b)
	}
}

// attempted publishes payload as evType, held so that the node's
// dispatcher leaves the events to the test, and records one attempt of
// each with status, body and errText, leaving it in state.
func (n *node) attempted(t *testing.T, evType, payload string, state webhook.State, status int, body, errText string) []webhook.Event {
	t.Helper()
	ctx := context.Background()
	pub, err := n.Store.Publish(ctx, webhook.PublishRequest{EventType: evType, Payload: json.RawMessage(payload), Hold: time.Hour})
	if err != nil || len(pub.Events) == 0 {
		t.Fatalf("publish: %v, %v", pub, err)
	}
	for _, e := range pub.Events {
		if _, err := n.Store.DB().ExecContext(ctx, `INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error) VALUES (?, ?, 1000, ?, ?, ?)`,
			e.ID, time.Now().UTC(), status, body, errText); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Store.DB().ExecContext(ctx, `UPDATE webhook_events SET state = ?, delivered = ?, retry_count = 1, response_http_status = ? WHERE id = ?`,
			string(state), state == webhook.StateDelivered, status, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	return pub.Events
}

// withCustomCountdown puts the committed example plugin that registers
// the "custom" countdown (kwarg factor, an integer >= 1) in the node's
// plugin directory.
func withCustomCountdown(t *testing.T) func(*config.Config) {
	return withPlugin(t, filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm"), "custom.wasm")
}
