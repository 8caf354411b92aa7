package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// hookReceiver records the requests of several hooks (one path each),
// checking both signatures of each with secret over the received bytes.
type hookReceiver struct {
	secret string
	mu     sync.Mutex
	bodies map[string][]string // by path
	bad    []string            // paths of requests with a wrong signature
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(h.secret))
	mac.Write(body)
	legacy := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	mac.Reset()
	fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp"), body)
	standard := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("X-Whisperer-Signature") != legacy || r.Header.Get("Webhook-Signature") != standard {
		h.bad = append(h.bad, r.URL.Path)
	}
	h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], string(body))
}

func (h *hookReceiver) got(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies[path]...)
}

// Issue 13's hostile corpus on a whole node: the hostile filter and
// transform plugins (core/internal/plugin/testdata/evilfilter.wat and
// eviltransform.wat) sit in the plugin directory next to the good
// examples, each named by a hook of the same event type. Publishing
// through the API never answers a 5xx; the healthy hook and the good
// plugins' hooks receive every event, signed; a hook whose filter loops,
// traps or fails receives every event too (a failing filter delivers) and
// the failures are counted in /metrics; a hook whose transform fails
// receives nothing, each of its events failing with error_class
// "transform" and an error naming the transform and the cause, retried
// and given up.
func TestHostilePluginsOnANode(t *testing.T) {
	// The Go example transform is built once for both backends; under
	// -race compiling a Go guest takes minutes, so its hook is left out.
	goDir := t.TempDir()
	if !raceEnabled {
		buildExamples(t, goDir, "transform")
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testHostilePlugins(t, backend, goDir)
		})
	}
}

func testHostilePlugins(t *testing.T, backend, goDir string) {
	const maxRetries, events = 2, 3
	dir := t.TempDir()
	copyPlugin(t, dir, "evilfilter.wasm")
	copyPlugin(t, dir, "eviltransform.wasm")
	copyInto(t, filepath.Join("..", "..", "examples", "filter", "field-equals.wasm"), dir)
	if !raceEnabled {
		copyInto(t, filepath.Join(goDir, "transform.wasm"), dir)
	}
	n := serveNode(t, backend, dir, func(c *config.Config) {
		c.Delivery.MaxRetries = maxRetries
		c.Delivery.DefaultRetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":0}`)}
		c.Plugins.CallTimeout = 50 * time.Millisecond
	})
	<-n.Plugins.Loaded()
	_, root := storetest.User(t, n.Store, "root", webhook.RoleAdmin)

	rcv := &hookReceiver{secret: "hook-secret", bodies: map[string][]string{}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	ops := &opsReceiver{t: t, secret: "ops-secret"}
	opsSrv := httptest.NewServer(ops)
	t.Cleanup(opsSrv.Close)
	n.do(t, "POST", "/whisperer/hooks/", root, map[string]any{"event_type": webhook.EventGivenUp,
		"target_url": opsSrv.URL + "/", "secret_key": ops.secret}, http.StatusCreated, nil)

	// Hooks by receiver path: those that receive every event and those
	// whose transform fails, with what the error must say.
	delivering := map[string]map[string]any{
		"/healthy": nil,
		"/good-filter": {"filter": map[string]any{"plugin": "field-equals",
			"kwargs": map[string]any{"field": "status", "equals": "paid"}}},
		"/floop": {"filter": map[string]any{"plugin": "floop"}},
		"/ftrap": {"filter": map[string]any{"plugin": "ftrap"}},
		"/fcode": {"filter": map[string]any{"plugin": "fcode"}},
	}
	if !raceEnabled {
		delivering["/good-transform"] = map[string]any{"transform": map[string]any{"name": "chat",
			"kwargs": map[string]any{"template": "{event_type} {payload.id} is {payload.status}"}}}
	}
	failing := map[string]string{
		"tloop":      "call exceeded its time limit (50ms)",
		"ttrap":      "unreachable",
		"thuge":      "result of 2097152 bytes is over the 1048576 byte limit",
		"tinvalid":   "result document is not a valid JSON object",
		"tprotected": `"Content-Length", which is protected`,
		"tbadheader": `result header "X-Bad" has a control character`,
		"toutside":   "outside memory",
		"tnegative":  "tnegative: template refused",
	}
	hookPath := map[int64]string{}
	create := func(path string, extra map[string]any) {
		body := map[string]any{"event_type": "package-created", "target_url": srv.URL + path, "secret_key": rcv.secret}
		for k, v := range extra {
			body[k] = v
		}
		var h struct {
			ID int64 `json:"id"`
		}
		n.do(t, "POST", "/whisperer/hooks/", root, body, http.StatusCreated, &h)
		hookPath[h.ID] = path
	}
	for path, extra := range delivering {
		create(path, extra)
	}
	for name := range failing {
		create("/"+name, map[string]any{"transform": map[string]any{"name": name}})
	}
	// A filter validator answering invalid JSON refuses the kwargs: a 400.
	var refused map[string]any
	n.do(t, "POST", "/whisperer/hooks/", root, map[string]any{"event_type": "package-created",
		"target_url": srv.URL + "/fvjson", "filter": map[string]any{"plugin": "fvjson", "kwargs": map[string]any{"a": 1}}},
		http.StatusBadRequest, &refused)
	if !strings.Contains(fmt.Sprint(refused), `The validator of filter "fvjson" failed`) {
		t.Errorf("fvjson's invalid JSON answered %v", refused)
	}

	// The first publish inline: its answer holds each hook's first outcome.
	type outcome struct {
		ID         int64  `json:"id"`
		UUID       string `json:"uuid"`
		WebhookID  int64  `json:"webhook"`
		Delivered  bool   `json:"delivered"`
		Error      string `json:"error"`
		ErrorClass string `json:"error_class"`
	}
	var all []outcome
	uuids := map[string]bool{}
	for i := range events {
		var out struct {
			Events []outcome `json:"events"`
		}
		body := map[string]any{"event_type": "package-created", "payload": map[string]any{"id": i, "status": "paid"}}
		want := http.StatusAccepted
		if i == 0 {
			body["async"], want = false, http.StatusOK
		}
		n.do(t, "POST", "/whisperer/events/", root, body, want, &out)
		if len(out.Events) != len(hookPath) {
			t.Fatalf("publish %d made %d events, want one per hook (%d)", i, len(out.Events), len(hookPath))
		}
		for _, o := range out.Events {
			uuids[o.UUID] = true
			all = append(all, o)
			if i > 0 {
				continue // published async: no outcome yet
			}
			path := hookPath[o.WebhookID]
			name := strings.TrimPrefix(path, "/")
			if cause, ok := failing[name]; ok {
				if o.Delivered || o.ErrorClass != string(webhook.ClassTransform) ||
					!strings.Contains(o.Error, fmt.Sprintf("transform %q failed", name)) || !strings.Contains(o.Error, cause) {
					t.Errorf("%s's inline outcome %+v, want error_class transform naming it and %q", path, o, cause)
				}
			} else if !o.Delivered || o.Error != "" {
				t.Errorf("%s's inline outcome %+v, want delivered", path, o)
			}
		}
	}

	// Every event ends: delivered or given up.
	type attempt struct {
		Status *int   `json:"status"`
		Error  string `json:"error"`
	}
	type hookEvent struct {
		State      webhook.State `json:"state"`
		RetryCount int           `json:"retry_count"`
		Attempts   []attempt     `json:"attempts"`
	}
	final := map[int64]hookEvent{}
	poll.UntilNil(t, 60*time.Second, func() error {
		for _, o := range all {
			if _, done := final[o.ID]; done {
				continue
			}
			var ev hookEvent
			n.do(t, "GET", fmt.Sprintf("/whisperer/hook_events/%d/", o.ID), root, nil, http.StatusOK, &ev)
			if ev.State == webhook.StatePending {
				return notYet(hookPath[o.WebhookID], "event", o.UUID, "pending")
			}
			final[o.ID] = ev
		}
		if got := len(ops.of(webhook.EventGivenUp)); got < len(failing)*events {
			return notYet(fmt.Sprintf("%d given_up events of %d", got, len(failing)*events))
		}
		return nil
	})
	for _, o := range all {
		path, ev := hookPath[o.WebhookID], final[o.ID]
		name := strings.TrimPrefix(path, "/")
		cause, fails := failing[name]
		if !fails {
			if ev.State != webhook.StateDelivered || len(ev.Attempts) != 1 || ev.Attempts[0].Status == nil || *ev.Attempts[0].Status != http.StatusOK {
				t.Errorf("%s's event %s: %+v, want delivered at the first attempt", path, o.UUID, ev)
			}
			continue
		}
		if ev.State != webhook.StateGivenUp || ev.RetryCount != maxRetries || len(ev.Attempts) != maxRetries {
			t.Errorf("%s's event %s: %+v, want given up after %d attempts", path, o.UUID, ev, maxRetries)
		}
		for _, a := range ev.Attempts {
			if a.Status != nil || !strings.Contains(a.Error, fmt.Sprintf("transform %q failed", name)) || !strings.Contains(a.Error, cause) {
				t.Errorf("%s's attempt %+v, want no response and an error naming %s and %q", path, a, name, cause)
			}
		}
	}

	// The receiver: every event on each delivering hook, signed; nothing
	// for the failing transforms.
	for path := range delivering {
		bodies := rcv.got(path)
		if len(bodies) != events {
			t.Errorf("%s received %d requests, want %d", path, len(bodies), events)
			continue
		}
		for _, b := range bodies {
			if path == "/good-transform" {
				if !strings.HasPrefix(b, `{"text":"package-created `) || !strings.HasSuffix(b, ` is paid"}`) {
					t.Errorf("%s received %s", path, b)
				}
				continue
			}
			var d opsDelivery
			if err := json.Unmarshal([]byte(b), &d); err != nil || !uuids[d.Event.UUID] || d.Payload["status"] != "paid" {
				t.Errorf("%s received %s (%v)", path, b, err)
			}
		}
	}
	for name := range failing {
		if got := rcv.got("/" + name); len(got) != 0 {
			t.Errorf("/%s's failing transform let %d requests through: %q", name, len(got), got)
		}
	}
	rcv.mu.Lock()
	if len(rcv.bad) != 0 {
		t.Errorf("requests with a wrong signature on %v", rcv.bad)
	}
	rcv.mu.Unlock()

	// The given_up operational events name the class, for every event of
	// the failing transforms and no other.
	for _, d := range ops.of(webhook.EventGivenUp) {
		p := d.Payload
		id, _ := p["hook_id"].(float64)
		// target_url is the receiver's origin only (no path): the hook is
		// found by its id.
		if _, ok := failing[strings.TrimPrefix(hookPath[int64(id)], "/")]; !ok || p["target_url"] != srv.URL ||
			p["error_class"] != string(webhook.ClassTransform) || p["retry_count"] != float64(maxRetries) || p["last_status"] != nil {
			t.Errorf("given_up %v", p)
		}
	}
	if ops.bad != 0 {
		t.Errorf("%d operational events with a wrong signature", ops.bad)
	}

	// Each failing filter was called once per event, and counted.
	mfs := n.scrape(t)
	for _, name := range []string{"floop", "ftrap", "fcode"} {
		if v, _ := value(mfs, "whisperer_publish_filter_failures_total", "filter", name); v != events {
			t.Errorf("whisperer_publish_filter_failures_total{filter=%q} = %v, want %d", name, v, events)
		}
	}
	if v, _ := value(mfs, "whisperer_publish_filter_failures_total", "filter", "field-equals"); v != 0 {
		t.Errorf("the good filter failed %v times", v)
	}
	logs := n.logs.String()
	if !strings.Contains(logs, "filter failed at fan-out; the event is delivered") || strings.Contains(logs, "panic") {
		t.Errorf("the node's log has no filter failure or has a panic")
	}
	// The node still serves.
	res, err := http.Get(n.url + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the hostile plugins: %v %v", res, err)
	}
	res.Body.Close()
}
