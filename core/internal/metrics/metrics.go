// Package metrics is Whisperer's Prometheus instrumentation: the counters
// and histograms the delivery engine, the plugin host and the publish path
// feed as they work, and collectors that read the queue, the dispatcher and
// the database pool when Prometheus scrapes.
//
// Labels are bounded by design: attempt outcomes and status classes are
// fixed sets, and plugins are labelled by file name (one per file in the
// plugin directory). Nothing is labelled by URL, hook, user or event.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

const namespace = "whisperer"

// Metrics holds one node's metrics in a registry of its own, so that two
// nodes in one process (tests) do not collide. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg             *prometheus.Registry
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	publishes       prometheus.Counter
	published       prometheus.Counter
	filtered        prometheus.Counter
	filterFailures  *prometheus.CounterVec
	pluginDuration  *prometheus.HistogramVec
	pluginFailures  *prometheus.CounterVec
	// series caches the attempt series by outcome and status class (the
	// indexes of outcomes and statusClasses): WithLabelValues hashes its
	// labels on every call, once per attempt twice. A series is still made
	// by its first attempt.
	series [len(outcomes)][len(statusClasses)]atomic.Pointer[attemptSeries]
}

type attemptSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New returns metrics registered with a fresh registry, along with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "delivery", Name: "attempts_total",
			Help: "Delivery attempts by outcome (delivered, failed and to be retried, given_up) and response status class (2xx … 5xx, none when no response arrived).",
		}, []string{"outcome", "status_class"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "delivery", Name: "attempt_duration_seconds",
			Help: "Duration of delivery attempts, from dialing to the end of the response body, by outcome.",
			// Receivers answer in milliseconds to the request timeout (5+5 s
			// by default); the buckets span both.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "publish", Name: "messages_total",
			Help: "Events published through the API (idempotent replays excluded).",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "publish", Name: "webhook_events_total",
			Help: "Webhook events created by publishing: one per subscribed hook.",
		}),
		filtered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "publish", Name: "filtered_total",
			Help: "Deliveries a hook's filter refused at fan-out: no row, no attempt, no request.",
		}),
		filterFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "publish", Name: "filter_failures_total",
			Help: "Filters that failed at fan-out by plugin filter name (error, trap, timeout, batch budget spent), \"unregistered\" or \"uncompilable\" (a stored filter that does not compile): the event was delivered.",
		}, []string{"filter"}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "plugin", Name: "call_duration_seconds",
			Help: "Duration of plugin calls by plugin file and call (countdown, validate, callback, filter, transform).",
			// Countdowns run in microseconds and are capped at
			// plugins.call_timeout (100ms); callbacks may run for seconds.
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"plugin", "call"}),
		pluginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "plugin", Name: "call_failures_total",
			Help: "Plugin calls that failed (trap, timeout, bad output, unloaded) by plugin file and call.",
		}, []string{"plugin", "call"}),
	}
	m.reg.MustRegister(m.attempts, m.attemptDuration, m.publishes, m.published, m.filtered, m.filterFailures, m.pluginDuration, m.pluginFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The three outcomes exist from the start, so that rate() and alerts
	// see a zero before the first delivery instead of no series.
	for _, o := range outcomes {
		m.attemptDuration.WithLabelValues(o)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (the database is down) is reported in the answer
// while the other metrics are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Register adds collectors to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ObserveAttempt counts one delivery attempt; state is the state it left
// the event in. It implements delivery.Observer.
func (m *Metrics) ObserveAttempt(state webhook.State, status int, d time.Duration) {
	o, c := outcome(state), statusClass(status)
	se := m.series[o][c].Load()
	if se == nil {
		// Racing first attempts store the same series: the vectors make
		// each once.
		se = &attemptSeries{count: m.attempts.WithLabelValues(outcomes[o], statusClasses[c]),
			duration: m.attemptDuration.WithLabelValues(outcomes[o])}
		m.series[o][c].Store(se)
	}
	se.count.Inc()
	se.duration.Observe(d.Seconds())
}

// FilterFailed counts one failed plugin filter call at fan-out. name is
// a registered filter's (or "unregistered"): a bounded set.
func (m *Metrics) FilterFailed(name string) { m.filterFailures.WithLabelValues(name).Inc() }

// ObservePublish counts one publish that created events webhook events
// and was refused by filtered hooks' filters.
func (m *Metrics) ObservePublish(events, filtered int) {
	m.publishes.Inc()
	m.published.Add(float64(events))
	m.filtered.Add(float64(filtered))
}

// ObservePluginCall times one plugin call; err is the plugin's failure,
// not a validation answer. It implements plugin.Observer.
func (m *Metrics) ObservePluginCall(file, call string, d time.Duration, err error) {
	m.pluginDuration.WithLabelValues(file, call).Observe(d.Seconds())
	if err != nil {
		m.pluginFailures.WithLabelValues(file, call).Inc()
	}
}

// outcomes name what an attempt did: a pending event was not delivered
// and will be retried.
var outcomes = [...]string{"delivered", "failed", "given_up"}

// outcome is the index in outcomes of an attempt that left its event in s.
func outcome(s webhook.State) int {
	switch s {
	case webhook.StateDelivered:
		return 0
	case webhook.StateGivenUp:
		return 2
	}
	return 1
}

// statusClasses are "2xx" … "5xx", and "none" when no response arrived
// (or the status is outside 100–599).
var statusClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClass is the index in statusClasses of status.
func statusClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// DBStats returns a collector of a database pool's statistics
// (go_sql_open_connections, go_sql_wait_count_total, …) labelled
// db_name="whisperer".
func DBStats(db *sql.DB) prometheus.Collector {
	return collectors.NewDBStatsCollector(db, namespace)
}

// Queue returns a collector that asks depth for the queue's state at each
// scrape, within timeout.
func Queue(depth func(ctx context.Context) (webhook.QueueDepth, error), timeout time.Duration) prometheus.Collector {
	return &queueCollector{depth: depth, timeout: timeout}
}

var (
	queueEventsDesc = prometheus.NewDesc(namespace+"_queue_events",
		"Pending webhook events by phase: due (waiting for a worker), scheduled (waiting for a retry time), leased (being delivered).",
		[]string{"phase"}, nil)
	oldestDueDesc = prometheus.NewDesc(namespace+"_queue_oldest_due_age_seconds",
		"How long the longest-waiting due event has been due; 0 when none is.", nil, nil)
)

type queueCollector struct {
	depth   func(ctx context.Context) (webhook.QueueDepth, error)
	timeout time.Duration
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueEventsDesc
	ch <- oldestDueDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	q, err := c.depth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueEventsDesc, err)
		return
	}
	for _, p := range []struct {
		phase string
		n     int64
	}{{"due", q.Due}, {"scheduled", q.Scheduled}, {"leased", q.Leased}} {
		ch <- prometheus.MustNewConstMetric(queueEventsDesc, prometheus.GaugeValue, float64(p.n), p.phase)
	}
	ch <- prometheus.MustNewConstMetric(oldestDueDesc, prometheus.GaugeValue, max(0, q.OldestDueAge.Seconds()))
}

// CallbackStats are the dispatcher's callback counters since it started.
type CallbackStats struct {
	Dropped, Errors int64
	// DroppedBy splits Dropped by source: the plugin file that registered
	// the callback (each has its own queue).
	DroppedBy map[string]int64
}

var (
	callbacksDroppedDesc = prometheus.NewDesc(namespace+"_callbacks_dropped_total",
		"Post-delivery callbacks skipped because the callback queue was full.", nil, nil)
	callbackErrorsDesc = prometheus.NewDesc(namespace+"_callback_errors_total",
		"Post-delivery callbacks that failed or panicked.", nil, nil)
	pluginCallbacksDroppedDesc = prometheus.NewDesc(namespace+"_plugin_callbacks_dropped_total",
		"Post-delivery callbacks skipped because their plugin file's callback queue was full, by plugin file.",
		[]string{"plugin"}, nil)
)

// Callbacks returns a collector reading stats at each scrape.
func Callbacks(stats func() CallbackStats) prometheus.Collector {
	return callbackCollector(stats)
}

type callbackCollector func() CallbackStats

func (c callbackCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callbacksDroppedDesc
	ch <- callbackErrorsDesc
	ch <- pluginCallbacksDroppedDesc
}

func (c callbackCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	ch <- prometheus.MustNewConstMetric(callbacksDroppedDesc, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(callbackErrorsDesc, prometheus.CounterValue, float64(s.Errors))
	for plugin, n := range s.DroppedBy {
		ch <- prometheus.MustNewConstMetric(pluginCallbacksDroppedDesc, prometheus.CounterValue, float64(n), plugin)
	}
}
