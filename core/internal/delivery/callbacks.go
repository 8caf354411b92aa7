package delivery

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// callbackTask is one post-delivery callback waiting to run. The document is
// built by the callback goroutine, off the delivery path.
type callbackTask struct {
	job  webhook.Job
	sent Sent
	res  webhook.Result
}

// callbackQueues holds the callbacks waiting to run: one bounded FIFO per
// source (the plugin file that registered the callback), so that a slow
// plugin's callbacks, which may each run for callback_timeout, neither fill
// another plugin's queue nor take every runner. A freed runner takes the next
// callback of the source with the fewest running (round-robin among equals),
// and no source occupies every runner: runners may be busy for seconds, and
// a source that arrives later must find one.
type callbackQueues struct {
	mu      sync.Mutex
	wake    sync.Cond
	limit   int // waiting callbacks per source
	runners int
	sources []*callbackSource // in first-seen order, for round-robin
	byName  map[string]*callbackSource
	next    int // round-robin start
	closed  bool
}

type callbackSource struct {
	name    string
	tasks   []callbackTask
	running int
	dropped int64
}

func newCallbackQueues(limit, runners int) *callbackQueues {
	q := &callbackQueues{limit: limit, runners: runners, byName: map[string]*callbackSource{}}
	q.wake.L = &q.mu
	return q
}

// push queues t for source; false means source's queue is full and t was
// dropped (and counted).
func (q *callbackQueues) push(source string, t callbackTask) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.byName[source]
	if s == nil {
		s = &callbackSource{name: source}
		q.byName[source] = s
		q.sources = append(q.sources, s)
	}
	if len(s.tasks) >= q.limit {
		s.dropped++
		return false
	}
	s.tasks = append(s.tasks, t)
	q.wake.Signal()
	return true
}

// pop waits for the next callback to run; false once the queues are closed
// and empty. The caller reports the end of the run with done.
func (q *callbackQueues) pop() (callbackTask, *callbackSource, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if s := q.pick(); s != nil {
			t := s.tasks[0]
			s.tasks[0] = callbackTask{} // release the payload
			s.tasks = s.tasks[1:]
			s.running++
			return t, s, true
		}
		if q.closed && q.empty() {
			return callbackTask{}, nil, false
		}
		q.wake.Wait()
	}
}

// pick returns the source whose callback runs next, or nil.
func (q *callbackQueues) pick() *callbackSource {
	most := q.runners
	if most > 1 {
		most-- // a runner stays free for the other sources
	}
	var best *callbackSource
	bestAt := 0
	for i := range q.sources {
		at := (q.next + i) % len(q.sources)
		s := q.sources[at]
		if len(s.tasks) > 0 && s.running < most && (best == nil || s.running < best.running) {
			best, bestAt = s, at
		}
	}
	if best != nil {
		q.next = bestAt + 1
	}
	return best
}

func (q *callbackQueues) empty() bool {
	for _, s := range q.sources {
		if len(s.tasks) > 0 {
			return false
		}
	}
	return true
}

// done ends a run that pop started: its source may take a runner again.
func (q *callbackQueues) done(s *callbackSource) {
	q.mu.Lock()
	s.running--
	q.mu.Unlock()
	q.wake.Broadcast()
}

// close lets the runners return once every queued callback has run.
func (q *callbackQueues) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake.Broadcast()
}

// dropped returns the callbacks dropped so far by source.
func (q *callbackQueues) dropped() map[string]int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]int64, len(q.sources))
	for _, s := range q.sources {
		if s.dropped > 0 {
			out[s.name] = s.dropped
		}
	}
	return out
}

// CallbacksDroppedBySource returns, by callback source (the plugin file
// that registered it, "builtin", or "unregistered"), the callbacks dropped
// because that source's queue was full.
func (d *Dispatcher) CallbacksDroppedBySource() map[string]int64 { return d.callbacks.dropped() }

// enqueueCallback hands t to the callback runners without ever blocking a
// delivery: when its source's queue is full the callback is dropped and
// logged. Stop closes the queues only after every attempt has finished.
func (d *Dispatcher) enqueueCallback(t callbackTask) {
	source := d.cb.Source(t.job.Webhook.Callback)
	if source == "" {
		source = "unregistered"
	}
	if !d.callbacks.push(source, t) {
		d.stats.cbDropped.Add(1)
		d.log.Warn("callback queue full; callback dropped", "event_uuid", t.job.Event.UUID,
			"webhook_id", t.job.Webhook.ID, "attempt", t.res.RetryCount, "callback", t.job.Webhook.Callback,
			"source", source)
	}
}

func (d *Dispatcher) callbackWorker() {
	defer d.cbWorkers.Done()
	for {
		t, src, ok := d.callbacks.pop()
		if !ok {
			return
		}
		err := d.runCallback(&t)
		d.callbacks.done(src)
		if err != nil {
			d.stats.cbErrors.Add(1)
			d.log.Error("callback failed; the delivery outcome stands", "event_uuid", t.job.Event.UUID,
				"webhook_id", t.job.Webhook.ID, "attempt", t.res.RetryCount, "callback", t.job.Webhook.Callback, "error", err)
		}
	}
}

func (d *Dispatcher) runCallback(t *callbackTask) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = d.recovered("callback", p, "callback", t.job.Webhook.Callback, "event_uuid", t.job.Event.UUID)
		}
	}()
	doc := callbackDoc(t)
	ctx, cancel := context.WithTimeout(d.runCtx, d.cfg.CallbackTimeout)
	defer cancel()
	return d.cb.Call(ctx, t.job.Webhook.Callback, &doc)
}

// callbackDoc is dj-whisperer's callback(response, event_type, instance,
// payload) as one document.
func callbackDoc(t *callbackTask) webhook.CallbackDoc {
	ev, hook, a := &t.job.Event, &t.job.Webhook, &t.sent.Attempt
	headers := make(map[string]string, len(t.sent.Header))
	for name, values := range t.sent.Header {
		headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	instance := ev.Payload
	if len(instance) == 0 {
		instance = json.RawMessage("null")
	}
	return webhook.CallbackDoc{
		EventType:  ev.EventType,
		EventUUID:  ev.UUID,
		RetryCount: t.res.RetryCount,
		Delivered:  t.res.State == webhook.StateDelivered,
		Webhook: webhook.CallbackWebhook{
			ID: hook.ID, TargetURL: webhook.RedactURL(hook.TargetURL), EventType: hook.EventType, Callback: hook.Callback,
		},
		Response: webhook.CallbackResp{
			Status: a.Status, Headers: headers, Body: a.Body, Error: a.Error,
			DurationMS: float64(a.Duration.Microseconds()) / 1000,
		},
		Instance: instance,
		Payload:  t.sent.Body,
	}
}
