package delivery_test

import (
	"context"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/delivery"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/store/storetest"
	"github.com/whisperer/whisperer/core/webhook"
)

// A callback that panics is logged once with its stack, which shows where
// it panicked; the delivery outcome stands.
func TestCallbackPanicLogsStack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		f.cb.Register("test", "panics", func(context.Context, *webhook.CallbackDoc) error {
			panic("callback bug")
		})
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL, func(w *webhook.Webhook) { w.Callback = "panics" })
		d := f.start(t, delivery.Config{})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		eventually(t, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		eventually(t, "the callback error counted", func() bool { return d.Stats().CallbackErrors == 1 })
		logs := f.logs.String()
		if strings.Count(logs, "callback panicked") != 1 || strings.Count(logs, "stack=") != 1 ||
			!strings.Contains(logs, "callbackpanic_test.go") {
			t.Errorf("the panic must be logged once with its stack:\n%s", logs)
		}
	})
}
