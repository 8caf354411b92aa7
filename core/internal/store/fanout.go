package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// filteredHook is an active hook with a filter.
type filteredHook struct {
	id  int64
	f   *filter.Filter // nil: the stored filter does not compile (deliver)
	err error          // why f is nil
}

// ErrUncompilableFilter is the failure reported (SetPluginFilters) for a
// stored filter fan-out cannot compile (saved by another version, or
// under other rules): the event is delivered to its hook.
var ErrUncompilableFilter = errors.New("the stored filter does not compile")

// fanout is a batch's filtered hooks by event type.
type fanout map[string][]filteredHook

// filteredHooks reads the active hooks with a filter of the given types.
func (s *Store) filteredHooks(ctx context.Context, db bun.IDB, reqs []webhook.PublishRequest) (fanout, error) {
	types := make([]string, 0, len(reqs))
	seen := make(map[string]bool, len(reqs))
	for i := range reqs {
		if t := reqs[i].EventType; !seen[t] {
			seen[t] = true
			types = append(types, t)
		}
	}
	var rows []struct {
		ID        int64  `bun:"id"`
		EventType string `bun:"event_type"`
		Filter    string `bun:"filter"`
	}
	err := db.NewSelect().Table("webhooks").Column("id", "event_type", "filter").
		Where("event_type IN (?)", bun.List(types)).Where("is_active").Where("filter IS NOT NULL").
		OrderExpr("id").Scan(ctx, &rows)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	out := fanout{}
	for _, r := range rows {
		f, err := s.filters.compile(r.ID, r.Filter)
		out[r.EventType] = append(out[r.EventType], filteredHook{id: r.ID, f: f, err: err})
	}
	return out, nil
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
	pass      [][]int64
	refused   []int
	evaluated []int64
}

// decide reads the batch's filtered hooks and runs their filters.
func (s *Store) decide(ctx context.Context, reqs []webhook.PublishRequest, payloads []string) (decisions, error) {
	d := decisions{pass: make([][]int64, len(reqs)), refused: make([]int, len(reqs)), evaluated: []int64{}}
	fo, err := s.filteredHooks(ctx, s.db, reqs)
	if err != nil || fo == nil {
		return d, err
	}
	bctx, cancel := context.WithTimeout(ctx, PluginFilterBudget)
	defer cancel()
	for i := range reqs {
		d.pass[i], d.refused[i] = s.match(bctx, fo, &reqs[i], payloads[i])
	}
	d.evaluated = fo.ids()
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

// ids lists every hook the fan-out evaluated.
func (fo fanout) ids() []int64 {
	var out []int64
	for _, hs := range fo {
		for _, h := range hs {
			out = append(out, h.id)
		}
	}
	return out
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
