package store

import (
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/webhook"
)

// authCache remembers verified tokens for a short time: every API request
// authenticates, and without it that is a database query per request. Only
// successes are cached, so a new token works at once; a revocation in this
// process drops the cache, one elsewhere takes effect within the TTL.
type authCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]cachedUser // by key hash
}

type cachedUser struct {
	user    webhook.User
	expires time.Time
}

// authCacheMax bounds the cache; reaching it starts it over.
const authCacheMax = 10000

func (c *authCache) get(hash string, now time.Time) (webhook.User, bool) {
	if c.ttl <= 0 {
		return webhook.User{}, false
	}
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || now.After(e.expires) {
		return webhook.User{}, false
	}
	return e.user, true
}

func (c *authCache) put(hash string, u webhook.User, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = make(map[string]cachedUser)
	}
	c.m[hash] = cachedUser{user: u, expires: now.Add(c.ttl)}
	c.mu.Unlock()
}

// clear forgets every token; a revocation cannot tell which hash it hit
// when given a prefix.
func (c *authCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
