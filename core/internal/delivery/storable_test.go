package delivery_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// Whatever bytes a receiver answers, the attempt is recorded and the other
// results of its batch with it: PostgreSQL refuses NUL and invalid UTF-8 in
// text, which a body cut in the middle of a character also is.
func TestReceiverBytesAreRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		bodies := map[string]string{
			"/nul":  "ok\x00done",
			"/bad":  "ok\xff\xfe",
			"/cut":  strings.Repeat("é", 40), // 80 bytes; kept: 63, mid-character
			"/good": "fine",
		}
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, bodies[r.URL.Path])
		})
		for path := range bodies {
			f.hook(t, rc.URL+path)
		}
		f.start(t, delivery.Config{Workers: 4, BatchSize: 10, MaxResponseBytes: 63})
		evs := storetest.Publish(t, s, "package-created", `{}`)
		for _, ev := range evs {
			poll.Until(t, 15*time.Second, "delivered and recorded", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
			j := f.event(t, ev.ID)
			got := j.Event.Attempts[0].Body
			switch path := strings.TrimPrefix(j.Webhook.TargetURL, rc.URL); path {
			case "/nul":
				if got != "ok\uFFFDdone" {
					t.Errorf("%s: body %q", path, got)
				}
			case "/bad":
				if got != "ok\uFFFD" {
					t.Errorf("%s: body %q", path, got)
				}
			case "/cut":
				if got != strings.Repeat("é", 31)+"\uFFFD" {
					t.Errorf("%s: body %q", path, got)
				}
			case "/good":
				if got != "fine" {
					t.Errorf("%s: body %q", path, got)
				}
			}
		}
	})
}
