package bearer

import (
	"sync"
	"sync/atomic"
	"time"
)

const cacheShards = 16

// tokenCache maps SHA-256(token) to a verified token. It is sharded to keep lock
// contention low; hits take a read lock only. Eviction is random (Go map iteration
// order), preferring expired entries.
type tokenCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	tok      *Token
	deadline time.Time // exp + leeway: the entry is useless afterwards
	gen      uint64    // key-set generation the signature was verified under
}

func newTokenCache(max int) *tokenCache {
	c := &tokenCache{perShard: (max + cacheShards - 1) / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(k *[32]byte) *cacheShard { return &c.shards[k[0]%cacheShards] }

func (c *tokenCache) get(k [32]byte) *cacheEntry {
	s := c.shard(&k)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	return e
}

func (c *tokenCache) put(k [32]byte, e *cacheEntry, now time.Time) {
	s := c.shard(&k)
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		var victim [32]byte
		haveVictim := false
		scanned := 0
		for vk, ve := range s.m {
			if !now.Before(ve.deadline) {
				delete(s.m, vk)
			} else if !haveVictim {
				victim, haveVictim = vk, true
			}
			if scanned++; scanned >= 8 {
				break
			}
		}
		if len(s.m) >= c.perShard && haveVictim {
			delete(s.m, victim)
		}
	}
	s.m[k] = e
	s.mu.Unlock()
}

func (c *tokenCache) remove(k [32]byte) {
	s := c.shard(&k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// dropJTI removes every entry whose token has this jti and returns the latest deadline
// among them (zero when none).
func (c *tokenCache) dropJTI(jti string) time.Time {
	var latest time.Time
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.tok.JTI == jti {
				if e.deadline.After(latest) {
					latest = e.deadline
				}
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
	return latest
}

func (c *tokenCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// maxRevocations bounds the jti deny-list.
const maxRevocations = 100000

// revocations is a bounded jti deny-list. The fast path (nothing revoked) is one
// atomic load.
type revocations struct {
	n  atomic.Int64
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *revocations) add(jti string, until, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]time.Time)
	}
	if _, ok := r.m[jti]; !ok && len(r.m) >= maxRevocations {
		for k, t := range r.m {
			if !now.Before(t) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRevocations { // still full: drop the entry that expires first
			var first string
			var firstT time.Time
			for k, t := range r.m {
				if first == "" || t.Before(firstT) {
					first, firstT = k, t
				}
			}
			delete(r.m, first)
		}
	}
	if old, ok := r.m[jti]; !ok || until.After(old) {
		r.m[jti] = until
	}
	r.n.Store(int64(len(r.m)))
}

func (r *revocations) has(jti string, now time.Time) bool {
	if jti == "" || r.n.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.m[jti]
	if ok && !now.Before(until) {
		delete(r.m, jti)
		r.n.Store(int64(len(r.m)))
		return false
	}
	return ok
}
