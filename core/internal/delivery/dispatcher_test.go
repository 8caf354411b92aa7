package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/service"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
	"github.com/whisperer/whisperer/internal/testlog"
)

// recordingQueue is the real store, with every result it was asked to
// write kept so tests can read the schedule the dispatcher computed, and
// optional injected failures for the first calls.
type recordingQueue struct {
	*store.Store
	failClaims, failCompletes atomic.Int64
	claims                    atomic.Int64 // Claim calls that reached the store

	mu        sync.Mutex
	results   []webhook.Result
	postponed map[int64][]time.Time // event id → the times it was postponed to
}

var errInjected = errors.New("injected database failure")

func (q *recordingQueue) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error) {
	if q.failClaims.Add(-1) >= 0 {
		return nil, errInjected
	}
	defer q.claims.Add(1)
	return q.Store.Claim(ctx, owner, limit, lease)
}

func (q *recordingQueue) Complete(ctx context.Context, results []webhook.Result) error {
	if q.failCompletes.Add(-1) >= 0 {
		return errInjected
	}
	// Held across the write: a test that sees the committed state and
	// then asks resultsFor waits for the append instead of racing it.
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.Store.Complete(ctx, results); err != nil {
		return err
	}
	q.results = append(q.results, results...)
	return nil
}

func (q *recordingQueue) resultsFor(id int64) []webhook.Result {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []webhook.Result
	for _, r := range q.results {
		if r.EventID == id {
			out = append(out, r)
		}
	}
	return out
}

type fixture struct {
	s    *store.Store
	q    *recordingQueue
	user webhook.User
	cb   *callback.Registry
	logs *testlog.Buffer
	// cd and queue, when set, replace the countdown registry and q.
	cd    delivery.Countdowns
	queue delivery.Queue
}

func newFixture(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	u, _ := storetest.User(t, s, "alice", webhook.RoleAdmin)
	return &fixture{s: s, q: &recordingQueue{Store: s}, user: u, cb: &callback.Registry{}, logs: &testlog.Buffer{}}
}

// epoch is the dispatcher's fake clock: long past, so every retry it
// schedules is already due for the store's real clock, while the recorded
// times still show the schedule.
var epoch = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func (f *fixture) start(t *testing.T, cfg delivery.Config) *delivery.Dispatcher {
	t.Helper()
	cfg.AllowNetworks = loopback
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return epoch }
	}
	var q delivery.Queue = f.q
	if f.queue != nil {
		q = f.queue
	}
	var cd delivery.Countdowns = countdown.NewRegistry()
	if f.cd != nil {
		cd = f.cd
	}
	d, err := delivery.New(cfg, q, cd, f.cb,
		slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Stop(ctx)
		if t.Failed() {
			t.Logf("dispatcher log:\n%s", f.logs.String())
		}
	})
	return d
}

func (f *fixture) hook(t *testing.T, target string, mutate ...func(*webhook.Webhook)) webhook.Webhook {
	t.Helper()
	return storetest.Hook(t, f.s, f.user.ID, "package-created", target, mutate...)
}

func (f *fixture) event(t *testing.T, id int64) webhook.Job {
	t.Helper()
	j, err := f.s.Event(context.Background(), webhook.Scope{All: true}, fmt.Sprint(id))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func exponential2(w *webhook.Webhook) {
	w.RetryCountdown = webhook.CountdownConfig{Choice: "exponential", Kwargs: json.RawMessage(`{"base":2}`)}
}

func TestDispatcherDelivers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var got sync.Map
		var hits atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			got.Store(r.Header.Get("Webhook-Id"), true)
			io.WriteString(w, "thanks")
		})
		f.hook(t, rc.URL+"/a")
		f.hook(t, rc.URL+"/b")
		d := f.start(t, delivery.Config{Workers: 8, BatchSize: 10, PollInterval: time.Hour})
		var events []webhook.Event
		for i := range 30 {
			events = append(events, storetest.Publish(t, s, "package-created", fmt.Sprintf(`{"n":%d}`, i))...)
			d.Notify() // no polling: the wake-up alone must get them delivered
		}
		poll.Until(t, 15*time.Second, "60 deliveries", func() bool { return hits.Load() >= 60 })
		for _, ev := range events {
			poll.Until(t, 15*time.Second, "event written back", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
			j := f.event(t, ev.ID)
			if _, ok := got.Load(ev.UUID); !ok || j.Event.RetryCount != 1 || len(j.Event.Attempts) != 1 ||
				j.Event.ResponseContent != "thanks" || j.Event.ResponseHTTPStatus == nil || *j.Event.ResponseHTTPStatus != 200 {
				t.Fatalf("event %d: %+v", ev.ID, j.Event)
			}
		}
		if n := hits.Load(); n != 60 {
			t.Errorf("receiver hit %d times, want 60", n)
		}
		if st := d.Stats(); st.Delivered != 60 || st.Attempts != 60 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestDispatcherRetrySchedule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var calls atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= 4 {
				w.WriteHeader(503)
				return
			}
			w.WriteHeader(200)
		})
		f.hook(t, rc.URL, exponential2)
		f.start(t, delivery.Config{})
		ev := storetest.Publish(t, s, "package-created", `{"id":1}`)[0]
		poll.Until(t, 15*time.Second, "delivery after 4 failures", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })

		res := f.q.resultsFor(ev.ID)
		if len(res) != 5 {
			t.Fatalf("%d results, want 5: %+v", len(res), res)
		}
		for i, r := range res[:4] {
			want := time.Second << i // exponential base 2: 1, 2, 4, 8 s
			if r.RetryCount != i+1 || r.State != webhook.StatePending || r.Attempt.Status != 503 ||
				r.NextAttemptAt.Sub(r.Attempt.AttemptedAt) != want {
				t.Errorf("result %d: count %d state %s status %d wait %s, want %d pending 503 %s",
					i, r.RetryCount, r.State, r.Attempt.Status, r.NextAttemptAt.Sub(r.Attempt.AttemptedAt), i+1, want)
			}
		}
		if last := res[4]; last.RetryCount != 5 || last.State != webhook.StateDelivered {
			t.Errorf("last result %+v", last)
		}
		j := f.event(t, ev.ID)
		if j.Event.RetryCount != 5 || !j.Event.Delivered || len(j.Event.Attempts) != 5 {
			t.Fatalf("event %+v", j.Event)
		}
		for i, a := range j.Event.Attempts { // newest first
			want := 503
			if i == 0 {
				want = 200
			}
			if a.Status != want || !a.AttemptedAt.Equal(epoch) {
				t.Errorf("attempt %d: status %d at %s, want %d at %s", i, a.Status, a.AttemptedAt, want, epoch)
			}
		}
	})
}

func TestDispatcherGivesUpAndRedelivers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var calls atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(500)
		})
		f.hook(t, rc.URL, exponential2)
		d := f.start(t, delivery.Config{MaxRetries: 3})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		poll.Until(t, 15*time.Second, "given up", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateGivenUp })
		if j := f.event(t, ev.ID); j.Event.RetryCount != 3 || len(j.Event.Attempts) != 3 || calls.Load() != 3 {
			t.Fatalf("after give-up: retry_count %d, %d attempts, %d calls", j.Event.RetryCount, len(j.Event.Attempts), calls.Load())
		}

		// A redelivery starts a new series of MaxRetries attempts whose
		// countdown starts again from the beginning.
		if _, err := s.Redeliver(context.Background(), webhook.Scope{All: true}, ev.UUID, false); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		poll.Until(t, 15*time.Second, "given up again", func() bool {
			j := f.event(t, ev.ID)
			return j.Event.State == webhook.StateGivenUp && j.Event.RetryCount == 6
		})
		res := f.q.resultsFor(ev.ID)
		if len(res) != 6 {
			t.Fatalf("%d results, want 6", len(res))
		}
		for i, r := range res {
			wantState := webhook.StatePending
			if i == 2 || i == 5 {
				wantState = webhook.StateGivenUp
			}
			if r.State != wantState || r.RetryCount != i+1 {
				t.Errorf("result %d: %s count %d, want %s %d", i, r.State, r.RetryCount, wantState, i+1)
			}
			if wantState == webhook.StatePending {
				if want := time.Second << (i % 3); r.NextAttemptAt.Sub(r.Attempt.AttemptedAt) != want {
					t.Errorf("result %d waits %s, want %s", i, r.NextAttemptAt.Sub(r.Attempt.AttemptedAt), want)
				}
			}
		}
		if st := d.Stats(); st.GivenUp != 2 || st.Failed != 4 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestDispatcherCountdownFallsBackToDefault(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var calls atomic.Int64
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.WriteHeader(502)
			}
		})
		f.hook(t, rc.URL, func(w *webhook.Webhook) {
			w.RetryCountdown = webhook.CountdownConfig{Choice: "unloaded-plugin", Kwargs: json.RawMessage(`{}`)}
		})
		f.start(t, delivery.Config{DefaultCountdown: webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":7}`)}})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		res := f.q.resultsFor(ev.ID)
		if len(res) != 2 || res[0].NextAttemptAt.Sub(res[0].Attempt.AttemptedAt) != 7*time.Second {
			t.Fatalf("results %+v, want a 7s default wait", res)
		}
		if want := `retry countdown "unloaded-plugin" failed (countdown "unloaded-plugin" is not registered); retried on the server's default countdown`; res[0].Attempt.Error != want {
			t.Errorf("attempt error %q, want %q: the hook's owner sees why", res[0].Attempt.Error, want)
		}
		if logs := f.logs.String(); !strings.Contains(logs, "countdown failed; using delivery.default_retry_countdown") ||
			!strings.Contains(logs, "event_uuid="+ev.UUID) {
			t.Errorf("fallback not logged:\n%s", logs)
		}
	})
}

func TestDispatcherCallbacks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		docs := make(chan webhook.CallbackDoc, 10)
		f.cb.Register("test", "ok", func(ctx context.Context, doc *webhook.CallbackDoc) error {
			docs <- *doc
			return nil
		})
		var failing atomic.Int64
		f.cb.Register("test", "fails", func(context.Context, *webhook.CallbackDoc) error {
			failing.Add(1)
			return errors.New("callback exploded")
		})
		f.cb.Register("test", "panics", func(context.Context, *webhook.CallbackDoc) error {
			failing.Add(1)
			panic("callback panicked hard")
		})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.WriteHeader(201)
			io.WriteString(w, `{"ok":true}`)
		})
		okHook := f.hook(t, rc.URL+"/ok", func(w *webhook.Webhook) { w.Callback = "ok"; w.SecretKey = "not-in-logs" })
		f.hook(t, rc.URL+"/fails", func(w *webhook.Webhook) { w.Callback = "fails" })
		f.hook(t, rc.URL+"/panics", func(w *webhook.Webhook) { w.Callback = "panics" })
		d := f.start(t, delivery.Config{})
		evs := storetest.Publish(t, s, "package-created", `{"name":"pkg"}`)
		d.Notify()
		for _, ev := range evs {
			poll.Until(t, 15*time.Second, "delivered", func() bool { return f.event(t, ev.ID).Event.State == webhook.StateDelivered })
		}
		var doc webhook.CallbackDoc
		select {
		case doc = <-docs:
		case <-time.After(15 * time.Second):
			t.Fatal("callback not called")
		}
		var ev webhook.Event
		for _, e := range evs {
			if e.WebhookID == okHook.ID {
				ev = e
			}
		}
		want := webhook.RequestBody("package-created", ev.UUID, json.RawMessage(`{"name":"pkg"}`))
		if doc.EventType != "package-created" || doc.EventUUID != ev.UUID || doc.RetryCount != 1 || !doc.Delivered ||
			doc.Webhook != (webhook.CallbackWebhook{ID: okHook.ID, TargetURL: okHook.TargetURL, EventType: "package-created", Callback: "ok"}) ||
			doc.Response.Status != 201 || doc.Response.Body != `{"ok":true}` || doc.Response.Error != "" ||
			doc.Response.Headers["x-multi"] != "a, b" || doc.Response.Headers["content-length"] == "" || doc.Response.DurationMS <= 0 ||
			string(doc.Instance) != `{"name":"pkg"}` || string(doc.Payload) != string(want) {
			t.Errorf("callback doc = %+v", doc)
		}
		poll.Until(t, 15*time.Second, "failing callbacks", func() bool { return d.Stats().CallbackErrors == 2 })
		logs := f.logs.String()
		for _, s := range []string{"callback exploded", "callback panicked hard", "callback=fails", "callback=panics"} {
			if !strings.Contains(logs, s) {
				t.Errorf("log lacks %q:\n%s", s, logs)
			}
		}
		if strings.Contains(logs, "not-in-logs") {
			t.Error("secret logged")
		}
	})
}

func TestDispatcherDeliverNow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/bad") {
				w.WriteHeader(500)
			}
		})
		good := f.hook(t, rc.URL+"/good")
		f.hook(t, rc.URL+"/bad", exponential2)
		// A long poll and no Notify: only DeliverNow delivers.
		d := f.start(t, delivery.Config{PollInterval: time.Hour, Claimers: 1})
		poll.Until(t, 15*time.Second, "the first claim", func() bool { return f.q.claims.Load() == 1 })
		evs := storetest.Publish(t, s, "package-created", `{}`)
		ids := []int64{evs[0].ID, evs[1].ID}
		out, err := d.DeliverNow(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 {
			t.Fatalf("outcomes %+v", out)
		}
		for _, o := range out {
			j := f.event(t, o.EventID) // written before DeliverNow returned
			if o.WebhookID == good.ID {
				if !o.Delivered || o.Status != 200 || o.State != webhook.StateDelivered || j.Event.State != webhook.StateDelivered {
					t.Errorf("good: %+v, stored %s", o, j.Event.State)
				}
			} else if o.Delivered || o.Status != 500 || o.State != webhook.StatePending || o.RetryCount != 1 ||
				!o.NextAttemptAt.Equal(epoch.Add(time.Second)) || j.Event.RetryCount != 1 || j.Event.State != webhook.StatePending {
				t.Errorf("bad: %+v, stored %+v", o, j.Event)
			}
		}
		// Already delivered or leased events are skipped.
		if out, err := d.DeliverNow(context.Background(), ids[:1]); err != nil || len(out) != 0 {
			t.Errorf("second DeliverNow = %+v, %v", out, err)
		}
	})
}

func TestDispatcherStopDrainsInFlight(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		entered := make(chan struct{}, 10)
		release := make(chan struct{})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		})
		f.hook(t, rc.URL)
		d := f.start(t, delivery.Config{Workers: 2})
		var evs []webhook.Event
		for range 5 {
			evs = append(evs, storetest.Publish(t, s, "package-created", `{}`)...)
		}
		d.Notify()
		<-entered
		<-entered // both workers are in a request

		stopped := make(chan struct{})
		go func() {
			d.Stop(context.Background())
			close(stopped)
		}()
		select {
		case <-stopped:
			t.Fatal("Stop returned with deliveries in flight")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		<-stopped

		delivered := 0
		for _, ev := range evs {
			if f.event(t, ev.ID).Event.State == webhook.StateDelivered {
				delivered++
			}
		}
		if delivered != 2 {
			t.Errorf("%d delivered, want the 2 in flight", delivered)
		}
		// Nothing else is held: another node can claim the rest at once.
		jobs, err := s.Claim(context.Background(), "other", 10, time.Minute)
		if err != nil || len(jobs) != 3 {
			t.Errorf("other node claimed %d (%v), want 3", len(jobs), err)
		}
		if _, err := d.DeliverNow(context.Background(), nil); !errors.Is(err, delivery.ErrStopped) {
			t.Errorf("DeliverNow after Stop = %v", err)
		}
	})
}

func TestDispatcherStopOutOfTimeReleases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		entered := make(chan struct{}, 10)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-r.Context().Done() // hangs until the dispatcher gives up
		})
		f.hook(t, rc.URL)
		d := f.start(t, delivery.Config{Workers: 3, ReadTimeout: time.Minute})
		var evs []webhook.Event
		for range 3 {
			evs = append(evs, storetest.Publish(t, s, "package-created", `{}`)...)
		}
		d.Notify()
		for range 3 {
			<-entered
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		d.Stop(ctx)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("Stop took %s", el)
		}
		// Aborted attempts are not recorded and their leases are released.
		for _, ev := range evs {
			if j := f.event(t, ev.ID); j.Event.State != webhook.StatePending || j.Event.RetryCount != 0 {
				t.Errorf("event %d: %s retry_count %d", ev.ID, j.Event.State, j.Event.RetryCount)
			}
		}
		jobs, err := s.Claim(context.Background(), "other", 10, time.Minute)
		if err != nil || len(jobs) != 3 {
			t.Errorf("other node claimed %d (%v), want 3", len(jobs), err)
		}
	})
}

func TestDispatcherSurvivesDatabaseErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		f.q.failClaims.Store(2)
		f.q.failCompletes.Store(2)
		var hits atomic.Int64
		rc := newReceiver(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
		f.hook(t, rc.URL)
		evs := storetest.Publish(t, s, "package-created", `{}`)
		f.start(t, delivery.Config{})
		poll.Until(t, 15*time.Second, "delivered despite failures", func() bool { return f.event(t, evs[0].ID).Event.State == webhook.StateDelivered })
		if j := f.event(t, evs[0].ID); hits.Load() != 1 || len(j.Event.Attempts) != 1 {
			t.Errorf("%d hits, %d attempts, want 1 and 1 (a failed write must be retried, not the delivery)", hits.Load(), len(j.Event.Attempts))
		}
		if logs := f.logs.String(); !strings.Contains(logs, "claim due events failed") || !strings.Contains(logs, "write results failed") {
			t.Errorf("failures not logged:\n%s", logs)
		}
	})
}

func TestDispatchersShareWork(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		var mu sync.Mutex
		seen := map[string]int{}
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.Header.Get("Webhook-Id")]++
			mu.Unlock()
		})
		for i := range 10 {
			f.hook(t, fmt.Sprintf("%s/%d", rc.URL, i))
		}
		var evs []webhook.Event
		for range 30 {
			evs = append(evs, storetest.Publish(t, s, "package-created", `{}`)...)
		}
		a := f.start(t, delivery.Config{Workers: 4, BatchSize: 8, Owner: "node-a"})
		b := f.start(t, delivery.Config{Workers: 4, BatchSize: 8, Owner: "node-b"})
		poll.Until(t, 15*time.Second, "all delivered", func() bool {
			c, err := s.Counts(context.Background())
			return err == nil && c[webhook.StateDelivered] == int64(len(evs))
		})
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			if seen[ev.UUID] != 1 {
				t.Errorf("event %s received %d times", ev.UUID, seen[ev.UUID])
			}
		}
		if a.Stats().Delivered == 0 || b.Stats().Delivered == 0 {
			t.Logf("work split a=%d b=%d", a.Stats().Delivered, b.Stats().Delivered)
		}
	})
}

// BenchmarkDispatch measures end-to-end deliveries per second through the
// real store: claim, signed POST to a local receiver, batched write-back.
// Publishing happens before the timer starts.
//
//	go test -run '^$' -bench Dispatch -benchtime 20000x ./core/internal/delivery/
func BenchmarkDispatch(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := storetest.New(b, backend)
			u, _ := storetest.User(b, s, "bench", webhook.RoleAdmin)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(204)
			}))
			defer srv.Close()
			const fanout = 100
			for i := range fanout {
				storetest.Hook(b, s, u.ID, "bench", fmt.Sprintf("%s/%d", srv.URL, i), func(w *webhook.Webhook) { w.SecretKey = "secret" })
			}
			rounds := (b.N + fanout - 1) / fanout
			for i := range rounds {
				storetest.Publish(b, s, "bench", fmt.Sprintf(`{"n":%d}`, i))
			}
			total := int64(rounds * fanout)
			d, err := delivery.New(delivery.Config{AllowNetworks: loopback}, s, countdown.NewRegistry(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			if err := d.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			for d.Stats().Delivered < total {
				time.Sleep(2 * time.Millisecond)
			}
			for {
				c, err := s.Counts(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if c[webhook.StateDelivered] == total {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			d.Stop(context.Background())
			b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
		})
	}
}

// Stop before Start is fine, twice too, and no Start follows it.
func TestDispatcherStopWithoutStart(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	d, err := delivery.New(delivery.Config{}, s, countdown.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Stop(t.Context()); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if err := d.Start(t.Context()); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("Start after Stop: %v, want ErrStarted", err)
	}
}

func TestDispatcherStartContextEndsIt(t *testing.T) {
	s := storetest.New(t, store.SQLite)
	d, err := delivery.New(delivery.Config{}, s, countdown.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); !errors.Is(err, service.ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	cancel()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	// The first Stop waits for the shutdown the cancel began (goleak
	// checks it ended); the second is a no-op.
	for range 2 {
		if err := d.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if _, err := d.DeliverNow(context.Background(), []int64{1}); !errors.Is(err, delivery.ErrStopped) {
		t.Errorf("DeliverNow = %v, want ErrStopped", err)
	}
}

// A retry this node wrote is claimed when it falls due, not at the next
// poll: with an hour's poll interval and no wake-up, a failed attempt with
// a 1-second countdown is retried (the fake clock makes every retry due at
// once for the store; the timer is armed for it).
func TestDispatcherRetriesWithoutPolling(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		calls := f.failFirst(t)
		d := f.start(t, delivery.Config{PollInterval: time.Hour})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		d.Notify() // the first attempt only
		poll.Until(t, 15*time.Second, "the retry delivered without a poll", func() bool {
			return f.event(t, ev.ID).Event.State == webhook.StateDelivered
		})
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
}

// A retry another node wrote is claimed when it falls due, not at the
// next poll: a claim that finds nothing reads the next due time.
func TestDispatcherClaimsRetriesOtherNodesWrote(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		calls := f.failFirst(t)
		// Node a makes the first attempt, writes the retry and stops.
		a := f.start(t, delivery.Config{PollInterval: time.Hour, Owner: "node-a", Now: time.Now})
		ev := storetest.Publish(t, s, "package-created", `{}`)[0]
		a.Notify()
		poll.Until(t, 15*time.Second, "the first attempt written", func() bool {
			return f.event(t, ev.ID).Event.RetryCount == 1
		})
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(stop); err != nil {
			t.Fatal(err)
		}
		// Node b never heard of the retry and polls once an hour.
		b := f.start(t, delivery.Config{PollInterval: time.Hour, Owner: "node-b", Now: time.Now})
		poll.Until(t, 15*time.Second, "the retry delivered by the other node without a poll", func() bool {
			return f.event(t, ev.ID).Event.State == webhook.StateDelivered
		})
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
		if b.Stats().Delivered != 1 {
			t.Fatalf("node b delivered %d, want 1", b.Stats().Delivered)
		}
	})
}

// failFirst registers a hook whose receiver answers 503 to the first
// request and 204 to the rest, retried after 1 s; it returns the request
// count.
func (f *fixture) failFirst(t *testing.T) *atomic.Int64 {
	t.Helper()
	var calls atomic.Int64
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(204)
	})
	f.hook(t, rc.URL, func(w *webhook.Webhook) {
		w.RetryCountdown = webhook.CountdownConfig{Choice: "fixed", Kwargs: json.RawMessage(`{"seconds":1}`)}
	})
	return &calls
}
