// Package opsevent publishes Whisperer's operational events
// (webhook.OpsEventTypes): a hook deactivated by the endpoint-health
// check, an event given up, a plugin that failed. The store and the plugin
// host report what happened on this node (Emitter.Changes,
// Emitter.PluginFailed); the emitter queues it in memory and, in batches,
// publishes it through the ordinary publish path, so the events are
// fanned out, signed and retried like any other. Nothing is looked up or
// written for a type no active hook subscribes to. See docs/API.md,
// "Operational events".
package opsevent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Store is what the emitter reads and publishes through.
type Store interface {
	Subscribed(ctx context.Context, eventType string) (bool, error)
	GivenUpSubjects(ctx context.Context, ids []int64) ([]webhook.OpsSubject, error)
	DisabledSubjects(ctx context.Context, ids []int64) ([]webhook.OpsSubject, error)
	PublishBatch(ctx context.Context, reqs []webhook.PublishRequest) ([]webhook.Published, []error)
}

// Config is the emitter's configuration; zero fields take the defaults.
type Config struct {
	// Node names this node in whisperer.plugin.failed (a plugin fails on
	// one node). Defaults to "".
	Node string
	// DisableAfter is delivery.disable_after, told in
	// whisperer.hook.disabled.
	DisableAfter time.Duration
	// PluginEvery is the least time between two whisperer.plugin.failed
	// events of one plugin file: the failures between are counted into the
	// next. Defaults to a minute.
	PluginEvery time.Duration
	// Interval is the least time between two batches. Defaults to 200ms.
	Interval time.Duration
	// MaxQueued bounds the given-up events and deactivated hooks waiting
	// for a batch; past it they are dropped and counted in the log.
	// Defaults to 10000.
	MaxQueued int
	// Notify, when set, wakes this node's dispatcher after a publish.
	Notify func()
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// maxErrorLen bounds a plugin error's text in an event.
const maxErrorLen = 1000

// clipError cuts msg to maxErrorLen bytes, ellipsis included, at a
// character's boundary: the payload is JSON, and a split character would
// become U+FFFD.
func clipError(msg string) string {
	if len(msg) <= maxErrorLen {
		return msg
	}
	const ellipsis = "…"
	n := maxErrorLen - len(ellipsis)
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + ellipsis
}

// chunk bounds the ids of one lookup and the requests of one publish.
const chunk = 256

// Emitter queues what happened and publishes it. Its methods are safe for
// concurrent use.
type Emitter struct {
	cfg   Config
	store Store
	log   *slog.Logger
	wake  chan struct{}
	life  service.Lifecycle

	mu       sync.Mutex
	givenUp  []givenUp
	disabled []webhook.HookDisabled
	plugins  map[string]*pluginState
	ready    []pluginFailure // plugin failures due for an event
	dropped  int
}

// givenUp is what a given-up result tells (not its response body).
type givenUp struct {
	eventID    int64
	retryCount int
	status     int
	class      webhook.ErrorClass
	at         time.Time
}

// pluginState counts one plugin file's failures since its last event.
type pluginState struct {
	last    time.Time // of its last event
	count   int
	since   time.Time // first failure counted
	stage   string
	message string
}

type pluginFailure struct {
	file, stage, message string
	count                int
	since, at            time.Time
}

// New returns an emitter publishing through s. It publishes nothing until
// Start.
func New(cfg Config, s Store, log *slog.Logger) *Emitter {
	if cfg.PluginEvery <= 0 {
		cfg.PluginEvery = time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emitter{cfg: cfg, store: s, log: log, wake: make(chan struct{}, 1), plugins: map[string]*pluginState{}}
}

// Changes queues what a write of results changed (the store's
// OnChanges). It only appends: it runs on the delivery path.
func (e *Emitter) Changes(c webhook.Changes) {
	e.mu.Lock()
	for _, r := range c.GivenUp {
		if len(e.givenUp)+len(e.disabled) >= e.cfg.MaxQueued {
			e.dropped++
			continue
		}
		e.givenUp = append(e.givenUp, givenUp{eventID: r.EventID, retryCount: r.RetryCount, status: r.Attempt.Status,
			class: r.Attempt.Class, at: r.Attempt.AttemptedAt})
	}
	for _, d := range c.Disabled {
		if len(e.givenUp)+len(e.disabled) >= e.cfg.MaxQueued {
			e.dropped++
			continue
		}
		d.Last.Body, d.Last.Error = "", ""
		e.disabled = append(e.disabled, d)
	}
	e.mu.Unlock()
	e.signal()
}

// PluginFailed counts a failure of a plugin file at stage ("load",
// "register", or the call: "countdown", "validate", "callback", "filter",
// "transform"). A file's
// first failure after PluginEvery without an event makes one at once; the
// next ones are counted into the event made when PluginEvery has passed.
func (e *Emitter) PluginFailed(file, stage string, err error) {
	now := e.cfg.Now()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	msg = clipError(msg)
	e.mu.Lock()
	st := e.plugins[file]
	if st == nil {
		st = &pluginState{}
		e.plugins[file] = st
	}
	if st.count == 0 {
		st.since = now
	}
	st.count++
	st.stage, st.message = stage, msg
	due := e.duePlugin(file, st, now)
	e.mu.Unlock()
	if due {
		e.signal()
	}
}

// duePlugin moves st's failures to ready when PluginEvery has passed since
// its last event. e.mu is held.
func (e *Emitter) duePlugin(file string, st *pluginState, now time.Time) bool {
	if st.count == 0 || (!st.last.IsZero() && now.Sub(st.last) < e.cfg.PluginEvery) {
		return false
	}
	e.ready = append(e.ready, pluginFailure{file: file, stage: st.stage, message: st.message, count: st.count,
		since: st.since, at: now})
	st.last, st.count = now, 0
	return true
}

func (e *Emitter) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start runs the publishing loop and returns at once.
func (e *Emitter) Start(ctx context.Context) error {
	ctx, done, err := e.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("operational events: %w", err)
	}
	go func() {
		defer done()
		e.loop(ctx)
	}()
	return nil
}

// Stop publishes what is queued and stops the loop, or gives up waiting
// when ctx ends.
func (e *Emitter) Stop(ctx context.Context) error { return e.life.End(ctx) }

func (e *Emitter) loop(ctx context.Context) {
	tick := time.NewTicker(max(e.cfg.PluginEvery/4, e.cfg.Interval))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// What the draining dispatcher gave up last is published too.
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			e.flush(final)
			cancel()
			return
		case <-e.wake:
		case <-tick.C:
		}
		e.flush(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.Interval): // lets a burst gather into one batch
		}
	}
}

// flush publishes what is queued. A failure is logged, not retried: the
// change it reports is in the database and the log.
func (e *Emitter) flush(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("operational events: recovered panic", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	now := e.cfg.Now()
	e.mu.Lock()
	gu, dis := e.givenUp, e.disabled
	e.givenUp, e.disabled = nil, nil
	for file, st := range e.plugins {
		e.duePlugin(file, st, now)
		if st.count == 0 && now.Sub(st.last) >= e.cfg.PluginEvery {
			delete(e.plugins, file)
		}
	}
	pf := e.ready
	e.ready = nil
	dropped := e.dropped
	e.dropped = 0
	e.mu.Unlock()
	if dropped > 0 {
		e.log.Warn("operational events dropped: too many queued", "dropped", dropped, "max_queued", e.cfg.MaxQueued)
	}
	var reqs []webhook.PublishRequest
	if len(gu) > 0 && e.subscribed(ctx, webhook.EventGivenUp) {
		reqs = append(reqs, e.givenUpEvents(ctx, gu)...)
	}
	if len(dis) > 0 && e.subscribed(ctx, webhook.EventHookDisabled) {
		reqs = append(reqs, e.disabledEvents(ctx, dis)...)
	}
	if len(pf) > 0 && e.subscribed(ctx, webhook.EventPluginFailed) {
		for _, f := range pf {
			reqs = append(reqs, request(webhook.EventPluginFailed, PluginFailedPayload{
				Plugin: f.file, Node: e.cfg.Node, Stage: f.stage, Error: f.message, Failures: f.count,
				Since: Stamp(f.since), FailedAt: Stamp(f.at),
			}))
		}
	}
	published := 0
	for start := 0; start < len(reqs); start += chunk {
		part := reqs[start:min(start+chunk, len(reqs))]
		out, errs := e.store.PublishBatch(ctx, part)
		for i, err := range errs {
			if err != nil {
				e.log.Warn("operational event not published", "event_type", part[i].EventType, "error", err)
				continue
			}
			published += len(out[i].Events)
		}
	}
	if published > 0 && e.cfg.Notify != nil {
		e.cfg.Notify()
	}
}

// subscribed asks the store; a failure counts as no (logged).
func (e *Emitter) subscribed(ctx context.Context, eventType string) bool {
	ok, err := e.store.Subscribed(ctx, eventType)
	if err != nil {
		e.log.Warn("operational events: subscription check failed", "event_type", eventType, "error", err)
	}
	return ok
}

func (e *Emitter) givenUpEvents(ctx context.Context, gu []givenUp) []webhook.PublishRequest {
	byID := make(map[int64]givenUp, len(gu))
	ids := make([]int64, len(gu))
	for i, g := range gu {
		byID[g.eventID], ids[i] = g, g.eventID
	}
	var reqs []webhook.PublishRequest
	for start := 0; start < len(ids); start += chunk {
		subs, err := e.store.GivenUpSubjects(ctx, ids[start:min(start+chunk, len(ids))])
		if err != nil {
			e.log.Warn("operational events: given-up events not read", "error", err)
			continue
		}
		for _, s := range subs {
			if webhook.Reserved(s.EventType) {
				continue // an operational event's give-up reports nothing: no loop
			}
			g := byID[s.ID]
			reqs = append(reqs, request(webhook.EventGivenUp, GivenUpPayload{
				EventUUID: s.EventUUID, EventType: s.EventType, HookID: s.HookID, Owner: s.Owner, TargetURL: s.TargetURL,
				RetryCount: g.retryCount, LastStatus: orNil(g.status), ErrorClass: string(g.class), GivenUpAt: Stamp(g.at),
			}))
		}
	}
	return reqs
}

func (e *Emitter) disabledEvents(ctx context.Context, dis []webhook.HookDisabled) []webhook.PublishRequest {
	byID := make(map[int64]webhook.HookDisabled, len(dis))
	ids := make([]int64, len(dis))
	for i, d := range dis {
		byID[d.ID], ids[i] = d, d.ID
	}
	var reqs []webhook.PublishRequest
	for start := 0; start < len(ids); start += chunk {
		subs, err := e.store.DisabledSubjects(ctx, ids[start:min(start+chunk, len(ids))])
		if err != nil {
			e.log.Warn("operational events: deactivated hooks not read", "error", err)
			continue
		}
		for _, s := range subs {
			d := byID[s.ID]
			p := HookDisabledPayload{
				HookID: s.HookID, Owner: s.Owner, EventType: s.EventType, TargetURL: s.TargetURL,
				Reason: d.Reason, DisabledAt: Stamp(d.DisabledAt), FailingSince: stamp(d.FailingSince),
				DisableAfterSeconds: e.cfg.DisableAfter.Seconds(),
				LastStatus:          orNil(d.Last.Status), LastErrorClass: string(d.Last.Class),
			}
			reqs = append(reqs, request(webhook.EventHookDisabled, p))
		}
	}
	return reqs
}

func request(eventType string, payload any) webhook.PublishRequest {
	b, _ := json.Marshal(payload) // plain structs: cannot fail
	return webhook.PublishRequest{EventType: eventType, Payload: b}
}

// Stamp is a time as the API writes them: UTC, always microseconds.
type Stamp time.Time

// MarshalJSON writes s as "2006-01-02T15:04:05.000000Z".
func (s Stamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(s).UTC().Format("2006-01-02T15:04:05.000000Z") + `"`), nil
}

func stamp(t *time.Time) *Stamp {
	if t == nil {
		return nil
	}
	s := Stamp(*t)
	return &s
}

func orNil(status int) *int {
	if status == 0 {
		return nil
	}
	return &status
}

// The payloads, documented in docs/API.md ("Operational events"); keep
// them in step.

// GivenUpPayload is whisperer.event.given_up's payload.
type GivenUpPayload struct {
	EventUUID  string `json:"event_uuid"`
	EventType  string `json:"event_type"`
	HookID     int64  `json:"hook_id"`
	Owner      string `json:"owner"`
	TargetURL  string `json:"target_url"`
	RetryCount int    `json:"retry_count"`
	LastStatus *int   `json:"last_status"`
	ErrorClass string `json:"error_class"`
	GivenUpAt  Stamp  `json:"given_up_at"`
}

// HookDisabledPayload is whisperer.hook.disabled's payload.
type HookDisabledPayload struct {
	HookID              int64   `json:"hook_id"`
	Owner               string  `json:"owner"`
	EventType           string  `json:"event_type"`
	TargetURL           string  `json:"target_url"`
	Reason              string  `json:"reason"`
	DisabledAt          Stamp   `json:"disabled_at"`
	FailingSince        *Stamp  `json:"failing_since"`
	DisableAfterSeconds float64 `json:"disable_after_seconds"`
	LastStatus          *int    `json:"last_status"`
	LastErrorClass      string  `json:"last_error_class"`
}

// PluginFailedPayload is whisperer.plugin.failed's payload.
type PluginFailedPayload struct {
	Plugin   string `json:"plugin"`
	Node     string `json:"node"`
	Stage    string `json:"stage"`
	Error    string `json:"error"`
	Failures int    `json:"failures"`
	Since    Stamp  `json:"since"`
	FailedAt Stamp  `json:"failed_at"`
}
