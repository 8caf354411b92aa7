package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/whisperer/whisperer/core/webhook"
)

// callbackTask is one post-delivery callback waiting to run. The document is
// built by the callback goroutine, off the delivery path.
type callbackTask struct {
	job  webhook.Job
	sent Sent
	res  webhook.Result
}

// enqueueCallback hands t to the callback goroutines without ever blocking
// a delivery: when the queue is full the callback is dropped and logged.
// Stop closes the queue only after every attempt has finished.
func (d *Dispatcher) enqueueCallback(t callbackTask) {
	select {
	case d.callbacks <- t:
	default:
		d.stats.cbDropped.Add(1)
		d.log.Warn("callback queue full; callback dropped", "event_uuid", t.job.Event.UUID,
			"webhook_id", t.job.Webhook.ID, "attempt", t.res.RetryCount, "callback", t.job.Webhook.Callback)
	}
}

func (d *Dispatcher) callbackWorker() {
	defer d.cbWorkers.Done()
	for t := range d.callbacks {
		if err := d.runCallback(&t); err != nil {
			d.stats.cbErrors.Add(1)
			d.log.Error("callback failed; the delivery outcome stands", "event_uuid", t.job.Event.UUID,
				"webhook_id", t.job.Webhook.ID, "attempt", t.res.RetryCount, "callback", t.job.Webhook.Callback, "error", err)
		}
	}
}

func (d *Dispatcher) runCallback(t *callbackTask) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("callback panicked: %v", p)
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
			ID: hook.ID, TargetURL: hook.TargetURL, EventType: hook.EventType, Callback: hook.Callback,
		},
		Response: webhook.CallbackResp{
			Status: a.Status, Headers: headers, Body: a.Body, Error: a.Error,
			DurationMS: float64(a.Duration.Microseconds()) / 1000,
		},
		Instance: instance,
		Payload:  t.sent.Body,
	}
}
