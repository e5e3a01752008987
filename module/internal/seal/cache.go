package seal

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"
)

// Cache remembers values opened from cookies (the gate's sessions) by a
// SHA-256 of their sealed cookie value, so a browser's next requests with the
// same cookie skip the MAC check, the decryption and the JSON decoding (tens
// of microseconds for a session that carries tokens). A hit means these exact bytes were authenticated before;
// the entry never outlives the cookie's sealed expiry nor MaxCacheAge.
// Callers still judge what is inside (Ended, Expiry, revocation) on every
// request. Safe for concurrent use.
type Cache[T any] struct {
	mu  sync.Mutex
	m   map[[32]byte]*cacheEntry[T]
	max int
}

type cacheEntry[T any] struct {
	v     T
	until time.Time // min(sealed expiry, opened + MaxCacheAge)
}

const (
	// DefaultCacheSize bounds a Cache made with NewCache(0). An entry holds
	// a session's tokens, a few KiB.
	DefaultCacheSize = 4096
	// MaxCacheAge bounds how long an opened session is reused without
	// opening it again (and so how long a retired cookie key keeps working
	// for a cookie already in the cache).
	MaxCacheAge = 10 * time.Minute
)

// NewCache returns a cache of at most max values (0: DefaultCacheSize).
func NewCache[T any](max int) *Cache[T] {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache[T]{m: make(map[[32]byte]*cacheEntry[T]), max: max}
}

// OpenCached is s.Open into a T, through c (nil: no cache). The value it
// fills shares its maps and slices with the cache: treat it as read-only.
func OpenCached[T any](s *Sealer, r *http.Request, dst *T, c *Cache[T]) error {
	if c == nil {
		return s.Open(r, dst)
	}
	raw, err := s.joined(r)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte(s.name))
	h.Write([]byte{0})
	h.Write([]byte(raw))
	var key [32]byte
	h.Sum(key[:0])
	now := s.now()
	c.mu.Lock()
	e, ok := c.m[key]
	if ok && !now.Before(e.until) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		*dst = e.v
		return nil
	}
	var fresh T
	exp, err := s.decode(raw, &fresh)
	if err != nil {
		return err
	}
	until := exp
	if now.Add(MaxCacheAge).Before(until) {
		until = now.Add(MaxCacheAge)
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Evict: expired entries first, else whichever the map yields.
		n := 0
		for k, v := range c.m {
			if !now.Before(v.until) || n == 0 {
				delete(c.m, k)
			}
			if n++; n >= 8 {
				break
			}
		}
	}
	c.m[key] = &cacheEntry[T]{v: fresh, until: until}
	c.mu.Unlock()
	*dst = fresh
	return nil
}

// Len reports how many values c holds.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
