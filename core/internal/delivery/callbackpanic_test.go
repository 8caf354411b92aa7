package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
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
		poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		poll.Until(t, 15*time.Second, "the callback error counted", func() bool { return d.Stats().CallbackErrors == 1 })
		logs := f.logs.String()
		if strings.Count(logs, "callback panicked") != 1 || strings.Count(logs, "stack=") != 1 ||
			!strings.Contains(logs, "callbackpanic_test.go") {
			t.Errorf("the panic must be logged once with its stack:\n%s", logs)
		}
	})
}

// A callback never sees the credentials of a target_url an earlier release
// stored with them (the sealing pass moves them at start; until then, or
// for a hook it could not rewrite, they stay out of the document).
func TestCallbackDocRedactsURLCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		docs := make(chan webhook.CallbackDoc, 1)
		f.cb.Register("test", "ok", func(_ context.Context, doc *webhook.CallbackDoc) error {
			docs <- *doc
			return nil
		})
		rc := newReceiver(t, nil)
		target := strings.Replace(rc.URL, "//", "//carol:url-pw@", 1)
		f.hook(t, target, func(w *webhook.Webhook) { w.Callback = "ok" })
		f.start(t, delivery.Config{})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		doc := <-docs
		if want := strings.Replace(rc.URL, "//", "//***@", 1); doc.Webhook.TargetURL != want {
			t.Errorf("callback doc target_url %q, want %q", doc.Webhook.TargetURL, want)
		}
	})
}
