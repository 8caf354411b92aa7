package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Fan-out with filters. SQL cannot evaluate a hook's filter, so a publish
// splits the hooks of its event type in two: those without a filter get
// their rows from the INSERT…SELECT as before, costing nothing new; the
// active hooks with one (found through the partial index
// webhooks_filtered) are read once per batch, their filters (compiled
// once per filter text, cached) run here against the payload, and rows
// are inserted only for the hooks whose filter passes. A filtered-out
// event costs its hook no row, no attempt, no request.
//
// The read of filtered hooks is cached per event type for up to
// filteredHooksTTL (filteredCache): at a modest rate each publish is its
// own batch, and the read was a third of the database's statements per
// event. A stale entry never drops an event the stored filter would pass:
// the publish statement creates the rows of every filtered hook whose
// stored filter is not the text fan-out evaluated (a filter set, changed
// or re-enabled meanwhile), as if the publish had come first. The store's
// own hook writes empty the cache at once; another node's apply within
// filteredHooksTTL.

// filteredHook is an active hook with a filter.
type filteredHook struct {
	id  int64
	src string         // the stored filter's text, which f was compiled from
	f   *filter.Filter // nil: the stored filter does not compile (deliver)
	err error          // why f is nil
}

// ErrUncompilableFilter is the failure reported (SetPluginFilters) for a
// stored filter fan-out cannot compile (saved by another version, or
// under other rules): the event is delivered to its hook.
var ErrUncompilableFilter = errors.New("the stored filter does not compile")

// fanout is a batch's filtered hooks by event type.
type fanout map[string][]filteredHook

// filteredHooks returns the active hooks with a filter of the given
// types, from the cache where it is fresh.
func (s *Store) filteredHooks(ctx context.Context, db bun.IDB, reqs []webhook.PublishRequest) (fanout, error) {
	out := fanout{}
	var missing []string
	now := time.Now()
	gen := s.filtered.lookup(reqs, now, out, &missing)
	if len(missing) == 0 {
		return out, nil
	}
	var rows []struct {
		ID        int64  `bun:"id"`
		EventType string `bun:"event_type"`
		Filter    string `bun:"filter"`
	}
	err := db.NewSelect().Table("webhooks").Column("id", "event_type", "filter").
		Where("event_type IN (?)", bun.List(missing)).Where("is_active").Where("filter IS NOT NULL").
		OrderExpr("id").Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	read := make(fanout, len(missing))
	for _, t := range missing {
		read[t] = nil // a type with no filtered hook is cached too
	}
	for _, r := range rows {
		f, err := s.filters.compile(r.ID, r.Filter)
		read[r.EventType] = append(read[r.EventType], filteredHook{id: r.ID, src: r.Filter, f: f, err: err})
	}
	s.filtered.store(read, gen, now)
	for t, hs := range read {
		out[t] = hs
	}
	return out, nil
}

// filteredHooksTTL is how long a read of a type's filtered hooks serves
// later publishes: how long a filter set through another node may take
// to apply (its events are delivered meanwhile).
const filteredHooksTTL = time.Second

// maxCachedTypes bounds filteredCache; past it, it starts over.
const maxCachedTypes = 10_000

// filteredCache is the filtered hooks by event type, each entry read at
// a time and in a generation of the store's hook writes.
type filteredCache struct {
	mu     sync.Mutex
	gen    uint64
	byType map[string]filteredEntry
}

type filteredEntry struct {
	hooks []filteredHook
	gen   uint64
	at    time.Time
}

// lookup puts the fresh entries of reqs' types in out and the other types
// in missing, and returns the generation a read of them belongs to.
func (c *filteredCache) lookup(reqs []webhook.PublishRequest, now time.Time, out fanout, missing *[]string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range reqs {
		t := reqs[i].EventType
		if _, ok := out[t]; ok || slices.Contains(*missing, t) {
			continue
		}
		if e, ok := c.byType[t]; ok && e.gen == c.gen && now.Sub(e.at) < filteredHooksTTL {
			out[t] = e.hooks
			continue
		}
		*missing = append(*missing, t)
	}
	return c.gen
}

// store caches a read made in generation gen: one older than the current
// (a hook was written meanwhile) is born stale.
func (c *filteredCache) store(read fanout, gen uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byType == nil || len(c.byType)+len(read) > maxCachedTypes {
		c.byType = make(map[string]filteredEntry, len(read))
	}
	for t, hs := range read {
		c.byType[t] = filteredEntry{hooks: hs, gen: gen, at: at}
	}
}

// hooksChanged empties the cache: the store wrote a hook.
func (c *filteredCache) hooksChanged() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// SetPluginFilters wires the plugin filters ({"plugin": name, "kwargs":
// ...}; core/app passes the filter registry) and the report of each
// failure (counted and logged there), a stored filter that does not
// compile included (name "", ErrUncompilableFilter); call it before
// publishing. Without them every plugin filter delivers.
func (s *Store) SetPluginFilters(pf filter.Plugins, failed func(name string, err error)) {
	s.pluginFilters, s.filterFailed = pf, failed
}

// PluginFilterBudget bounds the plugin filter calls of one publish batch
// together (each call is also bounded by plugins.call_timeout in the
// host): past it, the batch's remaining plugin filters are not called and
// deliver, each counted as a failure, so a slow plugin delays a batch of
// publishes by this much at most.
const PluginFilterBudget = 2 * time.Second

// errFilterBudget is the failure of a plugin filter not called because its
// batch spent PluginFilterBudget.
var errFilterBudget = fmt.Errorf("not called: the publish batch spent its %s for plugin filters", PluginFilterBudget)

// decisions is fan-out's verdict on a batch, made before anything is
// written (and, on SQLite, before the write transaction: plugin calls
// never hold the database): per request, the filtered hooks it passes
// and how many refused it; and every filtered hook evaluated.
type decisions struct {
	pass    [][]int64
	refused []int
	// evaluated and evaluatedSrc are every filtered hook evaluated and the
	// filter text it was evaluated with.
	evaluated    []int64
	evaluatedSrc []string
}

// decide reads the batch's filtered hooks and runs their filters.
func (s *Store) decide(ctx context.Context, reqs []webhook.PublishRequest, payloads []string) (decisions, error) {
	d := decisions{pass: make([][]int64, len(reqs)), refused: make([]int, len(reqs)), evaluated: []int64{}, evaluatedSrc: []string{}}
	fo, err := s.filteredHooks(ctx, s.db, reqs)
	if err != nil || fo.empty() {
		return d, err
	}
	bctx, cancel := context.WithTimeout(ctx, PluginFilterBudget)
	defer cancel()
	for i := range reqs {
		d.pass[i], d.refused[i] = s.match(bctx, fo, &reqs[i], payloads[i])
	}
	for _, hs := range fo {
		for _, h := range hs {
			d.evaluated, d.evaluatedSrc = append(d.evaluated, h.id), append(d.evaluatedSrc, h.src)
		}
	}
	return d, nil
}

// match runs the filters of req's type on its payload: the hooks it
// passes, and how many refused it.
func (s *Store) match(ctx context.Context, fo fanout, req *webhook.PublishRequest, payload string) (pass []int64, refused int) {
	hooks := fo[req.EventType]
	if len(hooks) == 0 {
		return nil, 0
	}
	ev := filter.TrustedEvent(req.EventType, []byte(payload))
	for _, h := range hooks {
		// A stored filter that does not compile (written by a later
		// version, say) delivers: losing events is worse than extra ones.
		ok := h.f == nil
		if ok && s.filterFailed != nil {
			s.filterFailed("", fmt.Errorf("%w: hook %d: %v", ErrUncompilableFilter, h.id, h.err))
		}
		if !ok {
			if name, kwargs := h.f.Plugin(); name != "" {
				ok = s.matchPlugin(ctx, name, kwargs, req.EventType, payload)
			} else {
				ok = h.f.Match(&ev)
			}
		}
		if ok {
			pass = append(pass, h.id)
		} else {
			refused++
		}
	}
	return pass, refused
}

// matchPlugin runs one plugin filter. A failure (an error, a trap, the
// host's deadline, the batch's budget, an unregistered name) delivers
// and is reported: a filter exists to spare receivers noise, and a
// broken one must not silently drop the events they want; a duplicate is
// recoverable, a lost event is not (docs/PLUGINS.md, "Filters").
func (s *Store) matchPlugin(ctx context.Context, name string, kwargs json.RawMessage, eventType, payload string) bool {
	err := ctx.Err()
	if err != nil {
		err = errFilterBudget
	}
	ok := true
	if err == nil && s.pluginFilters != nil {
		ok, err = s.pluginFilters.Match(ctx, name, kwargs, eventType, json.RawMessage(payload))
	} else if err == nil {
		err = errors.New("plugin filters are not available")
	}
	if err != nil {
		if s.filterFailed != nil {
			s.filterFailed(name, err)
		}
		return true
	}
	return ok
}

// empty reports whether no type of the batch has a filtered hook.
func (fo fanout) empty() bool {
	for _, hs := range fo {
		if len(hs) > 0 {
			return false
		}
	}
	return true
}

// filterCache holds compiled filters by hook id, valid while the stored
// text is the one compiled.
type filterCache struct {
	mu sync.Mutex
	m  map[int64]cachedFilter
}

type cachedFilter struct {
	src string
	f   *filter.Filter
	err error
}

// maxCachedFilters bounds the cache; past it, it starts over (deleted
// hooks' entries go with it).
const maxCachedFilters = 100_000

func (c *filterCache) compile(id int64, src string) (*filter.Filter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && e.src == src {
		return e.f, e.err
	}
	if c.m == nil || len(c.m) >= maxCachedFilters {
		c.m = map[int64]cachedFilter{}
	}
	f, err := filter.Parse([]byte(src))
	if err != nil {
		f = nil
	}
	c.m[id] = cachedFilter{src: src, f: f, err: err}
	return f, err
}
