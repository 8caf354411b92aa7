package plugin

import (
	"context"
	"slices"
	"sync"
	"time"
)

// idleOverhead is what an idle instance is charged on top of its linear
// memory: wazero's module state and the initial stacks of its functions.
const idleOverhead = 64 << 10

// idlePool holds the idle instances of every plugin version of a host.
// An instance idle for longer than idle_timeout is closed (reap): a quiet
// server keeps no guest memory.
// WebAssembly memory never shrinks, so a healthy instance keeps all the
// memory its calls grew: pooled per file, pool_size instances of every
// file could each keep memory_limit_mb, however many files there are. The
// pool keeps at most budget bytes (each instance's linear memory plus
// idleOverhead) across all files and closes the least recently used
// instances beyond it. Plugins that do not grow per call keep reusing
// their instances as long as they all fit.
type idlePool struct {
	mu     sync.Mutex // also guards every version's idle slice
	budget int64
	used   int64
	// The instances from the most recently released (newest) to the least
	// (oldest), linked through instance.newer and older: pooling one
	// allocates nothing (a container/list element did, on every call).
	newest, oldest *instance
}

// idleBudget is pool_size × (memory_limit_mb + idleOverhead): one full
// pool's worth of instances at their largest.
func (c Config) idleBudget() int64 {
	return int64(c.PoolSize) * (int64(c.MemoryLimitMB)<<20 + idleOverhead)
}

// put pools inst as one of v's idle instances and returns those to close:
// the least recently used beyond the budget.
func (p *idlePool) put(v *version, inst *instance) []*instance {
	inst.owner, inst.cost, inst.since = v, idleOverhead, monoNow()
	if m := inst.mod.Memory(); m != nil {
		inst.cost += int64(m.Size())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	inst.older = p.newest
	if p.newest != nil {
		p.newest.newer = inst
	} else {
		p.oldest = inst
	}
	p.newest = inst
	v.idle = append(v.idle, inst)
	p.used += inst.cost
	var drop []*instance
	for p.used > p.budget {
		old := p.oldest
		p.remove(old)
		drop = append(drop, old)
	}
	return drop
}

// take returns v's most recently released idle instance, or nil.
func (p *idlePool) take(v *version) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(v.idle)
	if n == 0 {
		return nil
	}
	inst := v.idle[n-1]
	p.remove(inst)
	return inst
}

// drain removes and returns every idle instance of v.
func (p *idlePool) drain(v *version) []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	idle := slices.Clone(v.idle)
	for _, inst := range idle {
		p.remove(inst)
	}
	return idle
}

// reap removes and returns the instances idle since before cutoff.
func (p *idlePool) reap(cutoff time.Duration) []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*instance
	for p.oldest != nil && p.oldest.since < cutoff {
		// The list is ordered by release: the first one idle since after
		// cutoff ends it.
		inst := p.oldest
		p.remove(inst)
		out = append(out, inst)
	}
	return out
}

// idleOf reports how many idle instances v has.
func (p *idlePool) idleOf(v *version) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(v.idle)
}

// remove unlinks inst from the pool and from its version's idle slice.
func (p *idlePool) remove(inst *instance) {
	if inst.newer != nil {
		inst.newer.older = inst.older
	} else {
		p.newest = inst.older
	}
	if inst.older != nil {
		inst.older.newer = inst.newer
	} else {
		p.oldest = inst.newer
	}
	inst.newer, inst.older = nil, nil
	p.used -= inst.cost
	v := inst.owner
	if n := len(v.idle) - 1; v.idle[n] == inst { // take's, the usual
		v.idle[n] = nil
		v.idle = v.idle[:n]
		return
	}
	i := slices.Index(v.idle, inst)
	v.idle = slices.Delete(v.idle, i, i+1)
}

// closeInstances closes instances dropped from the pool.
func closeInstances(insts []*instance) {
	for _, inst := range insts {
		_ = inst.mod.Close(context.Background())
	}
}
