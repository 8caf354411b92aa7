package store

import (
	"context"
	"sync"

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
	id int64
	f  *filter.Filter // nil: the stored filter does not compile (deliver)
}

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
		out[r.EventType] = append(out[r.EventType], filteredHook{id: r.ID, f: s.filters.compile(r.ID, r.Filter)})
	}
	return out, nil
}

// match runs the filters of req's type on its payload: the hooks it
// passes, and how many refused it.
func (fo fanout) match(req *webhook.PublishRequest, payload string) (pass []int64, refused int) {
	hooks := fo[req.EventType]
	if len(hooks) == 0 {
		return nil, 0
	}
	ev := filter.TrustedEvent(req.EventType, []byte(payload))
	for _, h := range hooks {
		// A stored filter that does not compile (written by a later
		// version, say) delivers: losing events is worse than extra ones.
		if h.f == nil || h.f.Match(&ev) {
			pass = append(pass, h.id)
		} else {
			refused++
		}
	}
	return pass, refused
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
}

// maxCachedFilters bounds the cache; past it, it starts over (deleted
// hooks' entries go with it).
const maxCachedFilters = 100_000

func (c *filterCache) compile(id int64, src string) *filter.Filter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && e.src == src {
		return e.f
	}
	if c.m == nil || len(c.m) >= maxCachedFilters {
		c.m = map[int64]cachedFilter{}
	}
	f, err := filter.Parse([]byte(src))
	if err != nil {
		f = nil
	}
	c.m[id] = cachedFilter{src: src, f: f}
	return f
}
