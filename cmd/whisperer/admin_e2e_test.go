package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/app/apptest"
	"github.com/whisperer/whisperer/internal/poll"
)

// The daily verbs of the real binary alongside a real server: a delivery
// fails, shows up in `events list --failed` and `events show`, is
// redelivered by hand once the receiver is fixed, and `hooks disable`
// stops the server from queueing new events for the hook.
func TestCLIWithServer(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dbURL := apptest.URL(t, apptest.SQLite)
	env := append(baseEnv(dbURL), "WHISPERER_DELIVERY_MAX_RETRIES=1")
	var healthy atomic.Bool
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if !healthy.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}
	}))
	defer rcv.Close()
	n := startNode(t, env)
	token := setup(t, env, n, rcv.URL)
	base := "http://" + n.addr + "/whisperer/"
	if code, body := do(t, "POST", base+"events/", token, map[string]any{"event_type": "order-created", "payload": map[string]any{"id": 7}}); code != 202 {
		t.Fatalf("publish: %d %s", code, body)
	}

	// With max_retries 1 the single failed attempt gives the event up.
	var failed []app.EventInfo
	poll.Until(t, 20*time.Second, "the failed delivery to show up in events list --failed", func() bool {
		if err := json.Unmarshal([]byte(cliOut(t, env, "events", "list", "--failed", "--json")), &failed); err != nil {
			t.Fatal(err)
		}
		return len(failed) > 0
	})
	uuid := failed[0].UUID
	show := cliOut(t, env, "events", "show", uuid)
	if !strings.Contains(show, "503") || !strings.Contains(show, "down for maintenance") || !strings.Contains(show, "given_up") {
		t.Errorf("events show:\n%s", show)
	}

	healthy.Store(true)
	cliOut(t, env, "events", "redeliver", uuid)
	waitDelivered(t, dbURL, 1)

	hooks := cliOut(t, env, "hooks", "list", "--json")
	var list []app.HookInfo
	if err := json.Unmarshal([]byte(hooks), &list); err != nil || len(list) != 1 {
		t.Fatalf("hooks list --json: %v\n%s", err, hooks)
	}
	cliOut(t, env, "hooks", "disable", fmt.Sprint(list[0].ID))
	before := got.Load()
	if code, body := do(t, "POST", base+"events/", token, map[string]any{"event_type": "order-created", "payload": 8}); code != 202 {
		t.Fatalf("publish: %d %s", code, body)
	}
	if out := cliOut(t, env, "events", "list", "--json"); strings.Count(out, `"uuid"`) != 1 {
		t.Errorf("an event was queued for a disabled hook:\n%s", out)
	}
	if got.Load() != before {
		t.Error("the disabled hook received a delivery")
	}

	// Exit codes of the real binary: 1 for an unknown id, 2 for bad input.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"hooks", "show", "42"}, 1},
		{[]string{"events", "list", "--since", "soon"}, 2},
	} {
		cmd := exec.Command(binary(t), tc.args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tc.code {
			t.Errorf("whisperer %v: %v, want exit %d\n%s", tc.args, err, tc.code, out)
		}
	}
}

// cliOut runs the binary and returns its stdout only.
func cliOut(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("whisperer %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
