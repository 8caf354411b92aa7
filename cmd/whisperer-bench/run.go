package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/app"
)

// bench is one run against servers: its receiver, nodes and database.
type bench struct {
	o        options
	dir      string
	dbURL    string
	rcv      *receiver
	nodes    []*node
	cliEnv   []string
	client   *http.Client
	pubToken string
	subToken string
	// eventType is registered for this run alone, so that hooks left by
	// earlier runs on a shared server do not receive its events.
	eventType string
	hookIDs   []int64
	// baseID is the largest event id before the measured run: warm-up and
	// preloaded rows are not part of its loss check.
	baseID         int64
	publishRetries atomic.Int64
	stopInProc     func()
	db             *bun.DB // the node's database, for the checks
	dialect        string

	mu       sync.Mutex
	pubAt    map[string]time.Time // publish start, by event uuid
	notes    []string
	rssMu    sync.Mutex
	rssTrace []rssSample
}

type rssSample struct {
	at  time.Duration
	kib int64
}

func runServer(ctx context.Context, o options) (*result, error) {
	b := &bench{o: o, pubAt: make(map[string]time.Time, o.events*o.hooks)}
	var err error
	if b.dir, err = os.MkdirTemp("", "whisperer-bench"); err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(b.dir)
	}
	if b.rcv, err = newReceiver(); err != nil {
		return nil, err
	}
	defer b.rcv.close()
	b.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxIdleConns: 4 * o.concurrency}, Timeout: 30 * time.Second}
	defer b.client.CloseIdleConnections()

	if err := b.startServers(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if b.stopInProc != nil {
			b.stopInProc()
		}
		for _, n := range b.nodes {
			if cmd, _ := n.proc(); cmd != nil {
				n.stop()
			}
		}
	}()
	if b.dbURL != "none" {
		if b.db, b.dialect, err = app.OpenDB(ctx, ownURL(b.dbURL), 2); err != nil {
			return nil, err
		}
		defer b.db.Close()
	}
	if !o.floor {
		if err := b.setup(ctx); err != nil {
			return nil, err
		}
	}
	switch {
	case o.preload > 0 && o.preloadAge > 0:
		if err := b.preloadAged(ctx); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
	case o.preload > 0:
		if err := b.preload(ctx); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
	}
	if o.warmup > 0 {
		if err := b.warm(ctx); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	res, err := b.measure(ctx)
	if err == nil && o.preloadAge > 0 {
		res.Purge, err = b.purge(ctx)
	}
	return res, err
}

func (b *bench) startServers(ctx context.Context) error {
	o := b.o
	if o.serverURL != "" {
		if o.dbURL == "" {
			return errors.New("--server needs --database-url")
		}
		b.dbURL = o.dbURL
		b.cliEnv = serverEnv(b.dbURL, b.dir, o.env)
		b.nodes = []*node{{addr: strings.TrimPrefix(strings.TrimSuffix(o.serverURL, "/"), "http://"), done: make(chan struct{}), extPID: o.serverPID}}
		return b.needBin(ctx)
	}
	switch o.backend {
	case "sqlite":
		if o.nodes > 1 {
			return errors.New("several nodes need --backend postgres")
		}
		b.dbURL = "sqlite://" + filepath.Join(b.dir, "bench.db")
	case "postgres":
		url, drop, err := freshPostgres(ctx, o.pgBase)
		if err != nil {
			return err
		}
		if !o.keep {
			dropAtExit = append(dropAtExit, drop)
		}
		b.dbURL = url
	case "none":
		if !o.floor {
			return errors.New("--backend none needs --floor")
		}
		b.dbURL = "none"
	default:
		return fmt.Errorf("--backend %q: want sqlite or postgres (or none with --floor)", o.backend)
	}
	if o.floor {
		return b.startFloor()
	}
	if err := b.needBin(ctx); err != nil {
		return err
	}
	b.cliEnv = serverEnv(b.dbURL, b.dir, o.env)
	// Migrate once before several nodes race to.
	cmd := exec.CommandContext(ctx, b.o.bin, "migrate")
	cmd.Env = b.cliEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	if o.profile != "" {
		n, stop, err := startInProcess(ctx, b.cliEnv, o.profile)
		if err != nil {
			return err
		}
		b.nodes = append(b.nodes, n)
		b.stopInProc = stop
		b.notes = append(b.notes, "server in process (--profile): CPU and RSS not measured")
		return nil
	}
	for i := range o.nodes {
		n, err := startNode(b.o.bin, []string{"serve"}, b.dir, b.cliEnv, i)
		if err != nil {
			return err
		}
		b.nodes = append(b.nodes, n)
	}
	return nil
}

// dropAtExit drops the fresh databases when the tool ends.
var dropAtExit []func()

func (b *bench) needBin(ctx context.Context) error {
	if b.o.bin != "" {
		return nil
	}
	b.o.bin = filepath.Join(b.dir, "whisperer")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", b.o.bin, "github.com/whisperer/whisperer/cmd/whisperer").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

func (b *bench) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.o.bin, args...)
	cmd.Env = b.cliEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("whisperer %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// setup creates a publisher and a subscriber and the subscriber's hooks.
func (b *bench) setup(ctx context.Context) error {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	b.eventType = "bench-" + suffix
	if _, err := b.cli(ctx, "event-types", "add", b.eventType); err != nil {
		return err
	}
	var err error
	if b.pubToken, err = b.cli(ctx, "users", "create", "bench-pub-"+suffix, "--publisher"); err != nil {
		return err
	}
	subToken, err := b.cli(ctx, "users", "create", "bench-sub-"+suffix)
	if err != nil {
		return err
	}
	for i := range b.o.hooks {
		id, err := b.createHook(ctx, subToken, b.eventType, fmt.Sprintf("%s?h=%d", b.rcv.url, i), i < b.o.filtered)
		if err != nil {
			return err
		}
		b.hookIDs = append(b.hookIDs, id)
	}
	b.subToken = subToken
	return nil
}

// createHook registers a hook; filtered ones refuse every event
// (--filtered, --filter-plugin).
func (b *bench) createHook(ctx context.Context, token, typ, target string, filtered bool) (int64, error) {
	hook := map[string]any{
		"event_type": typ, "target_url": target, "secret_key": "bench-secret",
		"retry_countdown_config": map[string]any{"choice": "fixed", "kwargs": map[string]any{"seconds": b.o.retrySeconds}},
	}
	switch {
	case filtered && b.o.filterPlugin != "":
		hook["filter"] = map[string]any{"plugin": b.o.filterPlugin, "kwargs": json.RawMessage(b.o.filterKwargs)}
	case filtered:
		hook["filter"] = map[string]any{"event_type": "none"}
	}
	if b.o.transform != "" {
		hook["transform"] = map[string]any{"name": b.o.transform, "kwargs": json.RawMessage(b.o.transformKwargs)}
	}
	if b.o.callback != "" {
		hook["callback"] = b.o.callback
	}
	body, _ := json.Marshal(hook)
	// 503: the plugins are still loading (a Go plugin compiles for
	// seconds on a loaded machine); the hook may name one of theirs.
	code, out, err := b.post(ctx, b.nodes[0].addr, "/whisperer/hooks/", token, body)
	for deadline := time.Now().Add(time.Minute); err == nil && code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		code, out, err = b.post(ctx, b.nodes[0].addr, "/whisperer/hooks/", token, body)
	}
	if err != nil {
		return 0, err
	}
	if code != http.StatusCreated {
		return 0, fmt.Errorf("register hook: %d %s", code, out)
	}
	var h struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(out, &h); err != nil {
		return 0, err
	}
	return h.ID, nil
}

func (b *bench) post(ctx context.Context, addr, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
}

// publishOne publishes event i, retrying on connection errors and 5xx
// (a node being killed or the database restarting) on the next live node,
// for at most 30 s. It records the publish start of the events created.
func (b *bench) publishOne(ctx context.Context, i int, next *atomic.Int64) error {
	body := fmt.Appendf(nil, `{"event_type":%q,"payload":{"i":%d,"t":%d}}`, b.eventType, i, time.Now().UnixNano())
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		n := b.nodes[int(next.Add(1))%len(b.nodes)]
		if cmd, _ := n.proc(); cmd != nil && !n.alive() {
			if time.Now().After(deadline) {
				return errors.New("no live node to publish to")
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		start := time.Now()
		code, out, err := b.post(ctx, n.addr, "/whisperer/events/", b.pubToken, body)
		if err == nil && code == http.StatusAccepted {
			var r struct {
				Events []struct {
					UUID string `json:"uuid"`
				} `json:"events"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				return err
			}
			b.mu.Lock()
			for _, e := range r.Events {
				b.pubAt[e.UUID] = start
			}
			b.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && code < 500 {
			return fmt.Errorf("publish: %d %s", code, out)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish failed for 30s: %v %d %s", err, code, out)
		}
		b.publishRetries.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// publish publishes events [from, to) with o.concurrency publishers, paced
// at o.rate when set.
func (b *bench) publish(ctx context.Context, from, to int, rate float64) error {
	idx := make(chan int)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, b.o.concurrency)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range b.o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := b.publishOne(pctx, i, &next); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
	start := time.Now()
feed:
	for i := from; i < to; i++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i-from) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-pctx.Done():
					break feed
				}
			}
		}
		select {
		case idx <- i:
		case <-pctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

// warm publishes o.warmup events and waits for their delivery, so that the
// measured run starts with open connections and warm caches.
func (b *bench) warm(ctx context.Context) error {
	if err := b.publish(ctx, -b.o.warmup, 0, 0); err != nil {
		return err
	}
	want := int64(b.o.warmup * (b.o.hooks - b.o.filtered))
	for b.rcv.ok.Load() < want {
		select {
		case <-b.rcv.got:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	clear(b.pubAt)
	b.mu.Unlock()
	b.rcv.mu.Lock()
	clear(b.rcv.seen)
	b.rcv.mu.Unlock()
	b.rcv.ok.Store(0)
	b.rcv.total.Store(0)
	return nil
}
