package retention_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whisperer/whisperer/core/internal/retention"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
	"github.com/whisperer/whisperer/internal/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// recording passes calls to the real store and remembers each batch.
type recording struct {
	*store.Store
	mu      sync.Mutex
	batches []webhook.Purged
}

func (r *recording) PurgeDelivered(ctx context.Context, req webhook.PurgeRequest) (webhook.Purged, error) {
	got, err := r.Store.PurgeDelivered(ctx, req)
	r.mu.Lock()
	r.batches = append(r.batches, got)
	r.mu.Unlock()
	return got, err
}

// seed makes n old delivered events, one old given-up and one recent
// delivered one, and returns the store.
func seed(t *testing.T, backend string, n int, old time.Time) *store.Store {
	t.Helper()
	s := storetest.New(t, backend)
	u, _ := storetest.User(t, s, "alice", webhook.RoleUser)
	for i := range n {
		storetest.Hook(t, s, u.ID, "a", "https://a.example/"+string(rune('a'+i)))
	}
	storetest.Attempted(t, s, "a", `1`, old, webhook.StateDelivered)
	storetest.Attempted(t, s, "a", `2`, old, webhook.StateGivenUp)
	storetest.Attempted(t, s, "a", `3`, time.Now(), webhook.StateDelivered)
	return s
}

func counts(t *testing.T, s *store.Store) map[webhook.State]int64 {
	t.Helper()
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A purge goes batch by batch, never more than BatchSize events in one
// transaction, and reports running totals.
func TestPurgeBatches(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			old := time.Now().Add(-40 * 24 * time.Hour)
			rec := &recording{Store: seed(t, backend, 7, old)}
			p, err := retention.New(retention.Config{BatchSize: 3, Pause: time.Millisecond}, rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			var progress []int64
			total, err := p.Purge(ctx, retention.Cutoff(time.Now(), 30), func(sofar webhook.Purged) {
				progress = append(progress, sofar.Events)
			})
			if err != nil {
				t.Fatal(err)
			}
			if total.Events != 7 || total.Attempts != 7 || total.Messages != 1 {
				t.Errorf("total %+v, want 7 events, 7 attempts, 1 message", total)
			}
			for _, b := range rec.batches {
				if b.Events > 3 {
					t.Errorf("a batch deleted %d events, more than BatchSize 3", b.Events)
				}
			}
			if len(rec.batches) < 3 || len(progress) < 3 || progress[len(progress)-1] != 7 {
				t.Errorf("batches %+v, progress %v: want at least 3 reported batches ending at 7", rec.batches, progress)
			}
			if c := counts(t, rec.Store); c[webhook.StateDelivered] != 7 || c[webhook.StateGivenUp] != 7 {
				t.Errorf("left %v, want the 7 recent delivered and the 7 given up", c)
			}
		})
	}
}

// Start purges at once in the background; Stop ends it and is idempotent.
func TestStartStop(t *testing.T) {
	old := time.Now().Add(-40 * 24 * time.Hour)
	s := seed(t, store.SQLite, 2, old)
	p, err := retention.New(retention.Config{Days: 30, Interval: time.Hour, Pause: time.Millisecond}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	poll.UntilNil(t, 10*time.Second, func() error {
		if c := counts(t, s); c[webhook.StateDelivered] != 2 {
			return fmt.Errorf("background purge did not run: %v", c)
		}
		return nil
	})
	for range 2 {
		if err := p.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx); err == nil {
		t.Error("a stopped purger started again")
	}
}

// Stop before Start is fine, and no Start follows it.
func TestStopWithoutStart(t *testing.T) {
	s := seed(t, store.SQLite, 1, time.Now())
	p, err := retention.New(retention.Config{Days: 30}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx); err == nil {
		t.Error("a stopped purger started")
	}
}

// Days 0 keeps everything.
func TestDisabled(t *testing.T) {
	old := time.Now().Add(-400 * 24 * time.Hour)
	s := seed(t, store.SQLite, 1, old)
	p, err := retention.New(retention.Config{}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, s); c[webhook.StateDelivered] != 2 {
		t.Errorf("disabled retention deleted events: %v", c)
	}
	if _, err := retention.New(retention.Config{Days: -1}, s, nil); err == nil {
		t.Error("negative days accepted")
	}
}

// panicky is the real store whose PurgeDelivered panics while panics is
// positive: a bug on some row.
type panicky struct {
	*store.Store
	panics atomic.Int64
}

func (p *panicky) PurgeDelivered(ctx context.Context, req webhook.PurgeRequest) (webhook.Purged, error) {
	if p.panics.Add(-1) >= 0 {
		panic("purge bug")
	}
	return p.Store.PurgeDelivered(ctx, req)
}

// A panic in the background purge (which runs at start) does not crash
// the node: it is logged once with its stack and the next run purges.
func TestBackgroundPurgeSurvivesPanic(t *testing.T) {
	old := time.Now().Add(-40 * 24 * time.Hour)
	s := seed(t, store.SQLite, 2, old)
	ps := &panicky{Store: s}
	ps.panics.Store(1)
	var logs testlog.Buffer
	p, err := retention.New(retention.Config{Days: 30, Interval: 20 * time.Millisecond, Pause: time.Millisecond}, ps,
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(ctx)
	poll.UntilNil(t, 10*time.Second, func() error {
		if c := counts(t, s); c[webhook.StateDelivered] != 2 {
			return fmt.Errorf("the purge after the panic did not run: %v", c)
		}
		return nil
	})
	if l := logs.String(); strings.Count(l, "retention purge panicked") != 1 || strings.Count(l, "stack=") != 1 ||
		!strings.Contains(l, "purge bug") {
		t.Errorf("logs:\n%s", l)
	}
}
