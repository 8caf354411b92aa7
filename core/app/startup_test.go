package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// buildExamples builds the Go example plugins named (directories of
// examples/) into dir as <name>.wasm, as scripts/build-plugins.sh does.
func buildExamples(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, ex := range names {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, ex+".wasm"), "./examples/"+ex)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", ex, err, out)
		}
	}
}

// A first start compiles the Go example plugins for seconds (an empty
// compilation cache): the node answers /healthz and publishes meanwhile,
// lists the plugins as loading, answers a hook naming a plugin's countdown
// 503 with Retry-After, and holds back the delivery of a hook whose
// countdown and callback are the plugins' until they are loaded; then it
// uses them, not the default countdown. The checks made while loading
// take milliseconds where the compilation takes seconds.
func TestStartServesWhilePluginsCompile(t *testing.T) {
	if raceEnabled {
		t.Skip("compiling a Go guest under -race takes minutes; the plugin package covers the background load under -race")
	}
	dir := t.TempDir()
	buildExamples(t, dir, "custom-countdown", "callback")
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			w.WriteHeader(http.StatusInternalServerError) // two failures: retries 0 and 1 need the countdown
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()

	n := serveNode(t, "sqlite", dir, func(c *config.Config) { c.Plugins.CacheDir = filepath.Join(t.TempDir(), "empty") })
	res, err := http.Get(n.url + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while loading: %v %v", res, err)
	}
	res.Body.Close()
	if !n.Plugins.Loading() {
		t.Fatal("the plugins were loaded before the first request: this test needs them compiling")
	}
	user, token := storetest.User(t, n.Store, "alice", webhook.RoleUser)
	_, root := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
	var list struct {
		Results []struct {
			File    string `json:"file"`
			Loading bool   `json:"loading"`
		} `json:"results"`
	}
	n.do(t, "GET", "/whisperer/plugins/", token, nil, http.StatusOK, &list)
	if len(list.Results) != 2 || !list.Results[1].Loading {
		t.Errorf("plugins while loading: %+v, want both listed, the second loading", list.Results)
	}
	cd := map[string]any{"choice": "custom", "kwargs": map[string]any{"factor": 1000}}
	req, _ := http.NewRequest("POST", n.url+"/whisperer/hooks/", strings.NewReader(
		fmt.Sprintf(`{"event_type":"package-created","target_url":%q,"retry_countdown_config":{"choice":"custom","kwargs":{"factor":1000}}}`, recv.URL)))
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("hook naming a loading plugin's countdown: %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}

	// A hook from before this start (written as a previous run's API did)
	// names the plugins' countdown and callback; its event is published now.
	kwargs, _ := json.Marshal(cd["kwargs"])
	hook, err := n.Store.CreateWebhook(t.Context(), webhook.Webhook{
		UserID: user.ID, TargetURL: recv.URL, EventType: "package-created", IsActive: true,
		Callback: "foo.bar.app.callback", RetryCountdown: webhook.CountdownConfig{Choice: "custom", Kwargs: kwargs},
	})
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Events []struct {
			UUID    string `json:"uuid"`
			Webhook int64  `json:"webhook"`
		} `json:"events"`
	}
	n.do(t, "POST", "/whisperer/events/", root, map[string]any{"event_type": "package-created", "payload": 1}, http.StatusAccepted, &pub)
	if len(pub.Events) != 1 || pub.Events[0].Webhook != hook.ID {
		t.Fatalf("published %+v", pub.Events)
	}
	if !n.Plugins.Loading() {
		t.Fatal("the plugins were loaded before the checks ended: this test needs them compiling")
	}
	if hits.Load() != 0 {
		t.Fatal("delivered while its plugins were loading")
	}

	<-n.Plugins.Loaded()
	type event struct {
		RetryCount    int       `json:"retry_count"`
		NextAttemptAt time.Time `json:"next_attempt_at"`
		Attempts      []struct {
			Error string `json:"error"`
		} `json:"attempts"`
	}
	var ev event
	poll.UntilNil(t, 30*time.Second, func() error {
		n.do(t, "GET", "/whisperer/hook_events/"+pub.Events[0].UUID+"/", token, nil, http.StatusOK, &ev)
		if ev.RetryCount < 2 {
			return notYet("two attempts, have", fmt.Sprint(ev.RetryCount))
		}
		return nil
	})
	// custom with factor 1000 waits 0 s after the first failure and
	// 1000 s after the second; the default countdown would wait 1 s, 2 s.
	if wait := time.Until(ev.NextAttemptAt); wait < 900*time.Second {
		t.Errorf("next attempt in %v, want about 1000 s (the plugin's countdown)", wait)
	}
	for _, a := range ev.Attempts {
		if strings.Contains(a.Error, "default countdown") {
			t.Errorf("an attempt fell back on the default countdown: %q", a.Error)
		}
	}
	poll.Until(t, 30*time.Second, "the plugin callback's log line", func() bool {
		return strings.Contains(n.logs.String(), "delivery of package-created event "+pub.Events[0].UUID)
	})
	for _, want := range []string{`msg="loading plugins"`, `msg="plugin compiled" component=plugin plugin=callback.wasm`, `msg="plugins loaded"`} {
		if !strings.Contains(n.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// A plugin that fails to load ends the loading all the same: it is listed
// with its error, and a hook naming a name nobody registers is refused as
// before (400), not held (503).
func TestFailedPluginEndsLoading(t *testing.T) {
	n := startNode(t, "sqlite", []string{"badmanifest.wasm"}, nil)
	_, token := storetest.User(t, n.Store, "alice", webhook.RoleUser)
	var list struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	n.do(t, "GET", "/whisperer/plugins/", token, nil, http.StatusOK, &list)
	if len(list.Results) != 1 || list.Results[0].Error == "" {
		t.Fatalf("plugins: %+v, want the bad file with its error", list.Results)
	}
	if !strings.Contains(n.logs.String(), `msg="plugin not loaded"`) {
		t.Error("the failure is not logged")
	}
	n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{"event_type": "package-created",
		"target_url": "http://127.0.0.1:9/", "callback": "nobody.registers"}, http.StatusBadRequest, nil)
}
