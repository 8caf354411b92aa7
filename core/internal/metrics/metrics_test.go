package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/metrics"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// Outcomes and status classes are fixed small sets, whatever the status.
func TestAttemptLabels(t *testing.T) {
	m := metrics.New()
	for _, a := range []struct {
		state  webhook.State
		status int
	}{
		{webhook.StateDelivered, 204}, {webhook.StatePending, 503}, {webhook.StatePending, 0},
		{webhook.StateGivenUp, 404}, {webhook.StatePending, 999}, {webhook.StatePending, 302},
	} {
		m.ObserveAttempt(a.state, a.status, time.Millisecond)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`whisperer_delivery_attempts_total{outcome="delivered",status_class="2xx"} 1`,
		`whisperer_delivery_attempts_total{outcome="failed",status_class="5xx"} 1`,
		`whisperer_delivery_attempts_total{outcome="failed",status_class="none"} 2`,
		`whisperer_delivery_attempts_total{outcome="failed",status_class="3xx"} 1`,
		`whisperer_delivery_attempts_total{outcome="given_up",status_class="4xx"} 1`,
		`whisperer_delivery_attempt_duration_seconds_count{outcome="failed"} 4`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}

// A queue query that fails makes the scrape report the error, not lose
// every other metric.
func TestQueueFailureKeepsOtherMetrics(t *testing.T) {
	m := metrics.New()
	m.ObservePublish(3, 1)
	if err := m.Register(metrics.Queue(func(context.Context) (webhook.QueueDepth, error) {
		return webhook.QueueDepth{}, errors.New("database is down")
	}, time.Second)); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, m)
	if !strings.Contains(out, "whisperer_publish_webhook_events_total 3") {
		t.Errorf("publish counter lost when the queue query failed:\n%s", out)
	}
	if !strings.Contains(out, "whisperer_publish_filtered_total 1") {
		t.Errorf("filtered counter missing:\n%s", out)
	}
}

// Dropped callbacks are counted in total and by plugin file.
func TestCallbacksDroppedByPlugin(t *testing.T) {
	m := metrics.New()
	if err := m.Register(metrics.Callbacks(func() metrics.CallbackStats {
		return metrics.CallbackStats{Dropped: 5, Errors: 1, DroppedBy: map[string]int64{"slow.wasm": 5}}
	})); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		"whisperer_callbacks_dropped_total 5",
		`whisperer_plugin_callbacks_dropped_total{plugin="slow.wasm"} 5`,
		"whisperer_callback_errors_total 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}

// The oldest due age is the queue's own (measured by the database), not
// this node's clock minus the database's time.
func TestQueueOldestDueAgeIsTheQueues(t *testing.T) {
	m := metrics.New()
	if err := m.Register(metrics.Queue(func(context.Context) (webhook.QueueDepth, error) {
		return webhook.QueueDepth{Due: 1, OldestDue: time.Now().Add(-time.Hour), OldestDueAge: 5 * time.Second}, nil
	}, time.Second)); err != nil {
		t.Fatal(err)
	}
	if out := scrape(t, m); !strings.Contains(out, "whisperer_queue_oldest_due_age_seconds 5\n") {
		t.Errorf("want an oldest due age of 5s in\n%s", out)
	}
}

// PluginCalls sums a file's calls of every kind, and splits them by call
// for the console's plugins page.
func TestPluginCallsByCall(t *testing.T) {
	m := metrics.New()
	m.ObservePluginCall("a.wasm", "filter", 2*time.Millisecond, nil)
	m.ObservePluginCall("a.wasm", "filter", 4*time.Millisecond, errors.New("trap"))
	m.ObservePluginCall("a.wasm", "transform", 9*time.Millisecond, nil)
	m.ObservePluginCall("b.wasm", "countdown", time.Millisecond, nil)
	got := m.PluginCalls()
	a := got["a.wasm"]
	if a.Calls != 3 || a.Failures != 1 || a.Mean.Round(time.Microsecond) != 5*time.Millisecond {
		t.Errorf("a.wasm total = %+v", a.CallStats)
	}
	if f := a.ByCall["filter"]; f.Calls != 2 || f.Failures != 1 || f.Mean.Round(time.Microsecond) != 3*time.Millisecond {
		t.Errorf("a.wasm filter = %+v", f)
	}
	if tr := a.ByCall["transform"]; tr.Calls != 1 || tr.Failures != 0 || tr.Mean.Round(time.Microsecond) != 9*time.Millisecond {
		t.Errorf("a.wasm transform = %+v", tr)
	}
	if b := got["b.wasm"]; b.Calls != 1 || len(b.ByCall) != 1 || b.ByCall["countdown"].Calls != 1 {
		t.Errorf("b.wasm = %+v", b)
	}
}
