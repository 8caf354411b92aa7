package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// authCache remembers verified tokens for a short time: every API request
// authenticates, and without it that is a database query per request. Only
// successes are cached, so a new token works at once.
//
// A revocation is honoured at once by the process that makes it, and by
// every process on the same database as soon as it can see it:
//
//   - SQLite: each lookup first reads PRAGMA data_version on the store's one
//     connection, which changes whenever another connection (the CLI's
//     `tokens revoke`) has committed; a change forgets every entry. A
//     revocation committed before a request is honoured by that request.
//   - PostgreSQL: the cache is used only while the node listens on
//     revokeChannel (Store.WatchRevocations); a revocation notifies it in
//     its transaction, and the node forgets every entry when the
//     notification arrives (milliseconds after the commit). While not
//     listening, every request asks the database.
//
// Entries also expire after ttl whatever happens.
type authCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]cachedUser // by key hash
	// gen counts invalidations: an entry looked up under an older
	// generation is not stored, so a lookup that raced a revocation
	// cannot put the revoked token back.
	gen uint64
	// version is the SQLite data_version the entries were verified under,
	// read on the conn'th connection the store opened.
	version, conn int64
	// watching is set while a PostgreSQL revocation listener is connected.
	watching atomic.Bool
	// versions shares SQLite's data_version reads among requests.
	versions versionGate
}

type cachedUser struct {
	user    webhook.User
	expires time.Time
}

// authCacheMax bounds the cache; reaching it starts it over.
const authCacheMax = 10000

func (c *authCache) get(hash string, now time.Time) (webhook.User, bool) {
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || now.After(e.expires) {
		return webhook.User{}, false
	}
	return e.user, true
}

// generation is the generation a lookup starts under.
func (c *authCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put stores a verified token, unless the cache was invalidated since gen.
func (c *authCache) put(hash string, u webhook.User, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = make(map[string]cachedUser)
	}
	c.m[hash] = cachedUser{user: u, expires: now.Add(c.ttl)}
}

// invalidate forgets every token; a revocation by prefix cannot tell which
// hash it hit.
func (c *authCache) invalidate() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// observe invalidates the cache when SQLite's data_version moved, or was
// read on another connection than the last (its values are not comparable).
func (c *authCache) observe(version, conn int64) {
	c.mu.Lock()
	if version != c.version || conn != c.conn {
		c.version, c.conn = version, conn
		c.m = nil
		c.gen++
	}
	c.mu.Unlock()
}

// revokeChannel is the PostgreSQL channel a revocation notifies.
const revokeChannel = "whisperer_revocations"

// authCacheUsable reports whether cached tokens may be trusted for this
// request, after catching up with revocations made elsewhere.
func (s *Store) authCacheUsable(ctx context.Context) bool {
	if s.auth.ttl <= 0 {
		return false
	}
	return s.drv.revocationsSeen(ctx)
}

// versionGate shares SQLite data_version reads among concurrent requests.
// A request may trust the cache after a read that *started after it
// arrived* (so it sees every revocation committed before it); requests
// arriving while a read runs share the next one. On SQLite's one
// connection a read per request queued behind publishes: 64 concurrent
// publishers lost ~20% of their throughput to it.
type versionGate struct {
	mu   sync.Mutex
	cond sync.Cond
	// started and done count reads; okDone is the last read that
	// succeeded. running: a read is in progress; queued: the next read has
	// a runner waiting for it.
	started, done, okDone uint64
	running, queued       bool
	waiting               int // requests sharing the queued read
}

// check returns whether a read of run's, started after the call, succeeded.
func (g *versionGate) check(run func() bool) bool {
	g.mu.Lock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	if !g.running && !g.queued {
		return g.run(run)
	}
	target := g.started + 1 // the next read, not yet started
	if !g.queued {
		g.queued = true
		for g.running {
			g.cond.Wait()
		}
		g.queued = false
		return g.run(run)
	}
	g.waiting++
	for g.done < target {
		g.cond.Wait()
	}
	g.waiting--
	ok := g.okDone >= target
	g.mu.Unlock()
	return ok
}

// run starts the next read with g.mu held, and releases it while reading.
func (g *versionGate) run(read func() bool) bool {
	g.started++
	n := g.started
	g.running = true
	g.mu.Unlock()
	ok := false
	defer func() {
		g.mu.Lock()
		g.running, g.done = false, n
		if ok {
			g.okDone = n
		}
		g.cond.Broadcast()
		g.mu.Unlock()
	}()
	ok = read()
	return ok
}

// WatchRevocations listens for token revocations on PostgreSQL until ctx
// ends, reconnecting on its own, so that this node's authentication cache
// forgets a revoked token as soon as the revocation is notified. The cache
// is used only while it listens. On SQLite, or without a cache, it returns
// nil at once: there, each lookup checks for revocations itself. Each
// lost connection is reported to onErr (which may be nil) before the retry;
// meanwhile the cache is not used.
func (s *Store) WatchRevocations(ctx context.Context, onErr func(error)) error {
	if !s.drv.supportsListener() || s.auth.ttl <= 0 {
		return nil
	}
	a := &s.auth
	s.listen(ctx, revokeChannel,
		func() { a.invalidate(); a.watching.Store(true) }, // forget what was revoked unheard
		func(string) { a.invalidate() }, func() { a.watching.Store(false) }, onErr)
	return nil
}
