package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// scrape fetches and parses the node's /metrics.
func (n *node) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the series of family name whose labels
// include labels (name, value pairs): a counter's or gauge's value, a
// histogram's sample count. ok is false when there is no such series.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Metrics move as a real node publishes and delivers to real receivers:
// one hook's receiver answers 200, the other's 500 until the event is
// given up; the failing hook's countdown and callback are a plugin that
// traps.
func TestMetricsFollowDeliveries(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, backend, []string{"trap.wasm"}, func(c *config.Config) {
				c.Delivery.MaxRetries = 2
				c.Delivery.DefaultRetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: []byte(`{"seconds":1}`)}
			})
			ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(ok.Close)
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(bad.Close)

			before := n.scrape(t)
			for _, name := range []string{"whisperer_queue_events", "whisperer_queue_oldest_due_age_seconds",
				"whisperer_callbacks_dropped_total", "whisperer_callback_errors_total", "go_sql_open_connections",
				"whisperer_delivery_attempt_duration_seconds", "whisperer_publish_messages_total"} {
				if _, found := value(before, name); !found {
					t.Errorf("%s missing before any delivery", name)
				}
			}
			if v, _ := value(before, "go_sql_open_connections", "db_name", "whisperer"); v < 1 {
				t.Errorf("go_sql_open_connections = %v, want at least 1", v)
			}

			_, token := storetest.User(t, n.Store, "root", webhook.RoleAdmin)
			n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{
				"event_type": "package-created", "target_url": ok.URL + "/",
				"retry_countdown_config": map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": 1}},
			}, http.StatusCreated, nil)
			n.do(t, "POST", "/whisperer/hooks/", token, map[string]any{
				"event_type": "package-created", "target_url": bad.URL + "/", "callback": "trap",
				"retry_countdown_config": map[string]any{"choice": "trap", "kwargs": map[string]any{}},
			}, http.StatusCreated, nil)
			n.do(t, "POST", "/whisperer/events/", token, map[string]any{
				"event_type": "package-created", "payload": map[string]any{"id": 1},
			}, http.StatusAccepted, nil)

			var mfs map[string]*dto.MetricFamily
			poll.UntilNil(t, 15*time.Second, func() error {
				mfs = n.scrape(t)
				g, _ := value(mfs, "whisperer_delivery_attempts_total", "outcome", "given_up", "status_class", "5xx")
				cb, _ := value(mfs, "whisperer_callback_errors_total")
				// Attempts are observed before their results are written
				// back: wait for the queue to empty too.
				leased, _ := value(mfs, "whisperer_queue_events", "phase", "leased")
				if g < 1 || cb < 2 || leased > 0 {
					return notYet(fmt.Sprintf("given_up %v, callback errors %v, leased %v", g, cb, leased))
				}
				return nil
			})
			for _, c := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"whisperer_delivery_attempts_total", []string{"outcome", "delivered", "status_class", "2xx"}, 1},
				{"whisperer_delivery_attempts_total", []string{"outcome", "failed", "status_class", "5xx"}, 1},
				{"whisperer_delivery_attempts_total", []string{"outcome", "given_up", "status_class", "5xx"}, 1},
				{"whisperer_delivery_attempt_duration_seconds", []string{"outcome", "delivered"}, 1},
				{"whisperer_delivery_attempt_duration_seconds", []string{"outcome", "failed"}, 1},
				{"whisperer_delivery_attempt_duration_seconds", []string{"outcome", "given_up"}, 1},
				{"whisperer_publish_messages_total", nil, 1},
				{"whisperer_publish_webhook_events_total", nil, 2},
				// The failed attempt asked the plugin for its countdown, which
				// trapped; every attempt ran the trapping callback.
				{"whisperer_plugin_call_failures_total", []string{"plugin", "trap.wasm", "call", "countdown"}, 1},
				{"whisperer_plugin_call_failures_total", []string{"plugin", "trap.wasm", "call", "callback"}, 2},
				{"whisperer_plugin_call_duration_seconds", []string{"plugin", "trap.wasm", "call", "validate"}, 1},
				{"whisperer_callback_errors_total", nil, 2},
				{"whisperer_queue_events", []string{"phase", "due"}, 0},
				{"whisperer_queue_events", []string{"phase", "scheduled"}, 0},
				{"whisperer_queue_events", []string{"phase", "leased"}, 0},
				{"whisperer_queue_oldest_due_age_seconds", nil, 0},
			} {
				if got, found := value(mfs, c.name, c.labels...); !found || got != c.want {
					t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, found, c.want)
				}
			}
		})
	}
}

// A due event that no worker takes shows in the queue gauges and ages.
func TestMetricsQueueDepth(t *testing.T) {
	n := startNode(t, "sqlite", nil, func(c *config.Config) {
		// A poll far away and no notification: nothing is claimed.
		c.Delivery.PollInterval = time.Hour
	})
	u, _ := storetest.User(t, n.Store, "alice", webhook.RoleUser)
	storetest.Hook(t, n.Store, u.ID, "package-created", "http://127.0.0.1:1/")
	storetest.Publish(t, n.Store, "package-created", `{}`)
	poll.UntilNil(t, 5*time.Second, func() error {
		mfs := n.scrape(t)
		due, _ := value(mfs, "whisperer_queue_events", "phase", "due")
		age, _ := value(mfs, "whisperer_queue_oldest_due_age_seconds")
		if due != 1 || age <= 0 {
			return notYet(fmt.Sprintf("due %v, oldest due age %v", due, age))
		}
		return nil
	})
}
