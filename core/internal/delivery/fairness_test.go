package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/callback"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// callbackSink registers plugin callbacks into a callback.Registry, as
// core/app does, and counts the calls started by source, so that a test
// can wait for a callback to be running rather than for a while.
type callbackSink struct {
	r       *callback.Registry
	started *callCounter
}

func (s callbackSink) Apply(source string, r webhook.Registrations) error {
	funcs := make(map[string]webhook.CallbackFunc, len(r.Callbacks))
	for k, f := range r.Callbacks {
		funcs[k] = func(ctx context.Context, doc *webhook.CallbackDoc) error {
			s.started.add(source)
			return f(ctx, doc)
		}
	}
	return s.r.Replace(source, funcs)
}

// callCounter counts successful plugin calls by file.
type callCounter struct {
	mu sync.Mutex
	ok map[string]int
}

func (c *callCounter) ObservePluginCall(file, _ string, _ time.Duration, err error) {
	if err == nil {
		c.add(file)
	}
}

func (c *callCounter) add(file string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok[file]++
}

func (c *callCounter) count(file string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok[file]
}

// TestCallbackQueuesArePerPlugin: a plugin whose callbacks never return
// (loop.wasm) fills its own queue and has its overflow dropped and counted,
// while every callback of a fast plugin (fastcb.wasm) runs. The first slow
// callback is running before the others arrive, so that the counts do not
// depend on how soon a runner takes it.
func TestCallbackQueuesArePerPlugin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		dir := t.TempDir()
		for file, src := range map[string]string{"loop.wasm": "loop.wasm", "fast.wasm": "fastcb.wasm"} {
			b, err := os.ReadFile(filepath.Join("..", "plugin", "testdata", src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		calls, started := &callCounter{ok: map[string]int{}}, &callCounter{ok: map[string]int{}}
		host, err := plugin.New(plugin.Config{Dir: dir, CacheDir: t.TempDir(), PollInterval: -1,
			CallbackTimeout: time.Minute, Observer: calls}, callbackSink{f.cb, started}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := host.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = host.Stop(context.Background()) }) // after the dispatcher's Stop
		if f.cb.Source("loop") != "loop.wasm" || f.cb.Source("fast") != "fast.wasm" {
			t.Fatalf("plugins not registered: %v", host.Plugins())
		}

		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		const slow, fast, queue = 30, 10, 16
		f.hook(t, rc.URL+"/slow/0", func(w *webhook.Webhook) { w.Callback = "loop" })
		for i := 1; i < slow; i++ {
			storetest.Hook(t, s, f.user.ID, "package-updated", fmt.Sprintf("%s/slow/%d", rc.URL, i), func(w *webhook.Webhook) { w.Callback = "loop" })
		}
		for i := range fast {
			storetest.Hook(t, s, f.user.ID, "package-updated", fmt.Sprintf("%s/fast/%d", rc.URL, i), func(w *webhook.Webhook) { w.Callback = "fast" })
		}
		d := f.start(t, delivery.Config{CallbackWorkers: 2, CallbackQueue: queue, CallbackTimeout: time.Minute})
		storetest.Publish(t, s, "package-created", `{"id":1}`)
		d.Notify()
		poll.Until(t, 15*time.Second, "the first slow callback to run", func() bool { return started.count("loop.wasm") == 1 })
		storetest.Publish(t, s, "package-updated", `{"id":1}`)
		d.Notify()

		// The slow plugin has at most one runner (the other is kept for
		// the fast one) and queue callbacks waiting; the rest is dropped.
		poll.Until(t, 15*time.Second, "every fast callback to run", func() bool { return calls.count("fast.wasm") == fast })
		poll.Until(t, 15*time.Second, "the slow plugin's overflow to be dropped", func() bool {
			return d.CallbacksDroppedBySource()["loop.wasm"] == slow-1-queue
		})
		if n := d.CallbacksDroppedBySource()["fast.wasm"]; n != 0 {
			t.Errorf("%d fast callbacks dropped", n)
		}
		if n := started.count("loop.wasm"); n != 1 {
			t.Errorf("%d slow callbacks started, want 1 (one runner stays free)", n)
		}
		if n := calls.count("loop.wasm"); n != 0 {
			t.Errorf("%d slow callbacks returned", n)
		}
		if st := d.Stats(); st.CallbacksDropped != slow-1-queue {
			t.Errorf("Stats().CallbacksDropped = %d, want %d", st.CallbacksDropped, slow-1-queue)
		}
		// Stop at once: the slow callbacks are cancelled, not waited for.
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		d.Stop(expired)
	})
}
