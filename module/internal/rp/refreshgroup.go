package rp

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

const (
	// RefreshReuse is how long a refreshed session is handed to requests
	// that still carry the cookie it replaced (in flight when it was set).
	RefreshReuse = 30 * time.Second
	// maxRefreshCalls bounds the remembered results; past it, finished
	// entries are dropped first and then refreshes run unshared.
	maxRefreshCalls = 4096
)

// RefreshGroup runs one refresh per refresh token at a time and remembers a
// successful result for RefreshReuse, keyed by a hash of the refresh token
// (the token itself is not kept as a map key). Parallel requests of one
// browser (a page and its assets) share one call to the provider, and
// requests still carrying the old cookie a moment later get the same result
// instead of presenting a rotated refresh token, which an issuer treats as
// reuse. The zero value is ready to use; safe for concurrent use.
type RefreshGroup struct {
	mu    sync.Mutex
	calls map[[32]byte]*refreshCall
	// now is the clock (nil: time.Now); max bounds calls (0:
	// maxRefreshCalls). Tests set them.
	now func() time.Time
	max int
}

type refreshCall struct {
	done     chan struct{}
	sess     *Session
	err      error
	finished time.Time // zero while running
	waiters  int       // callers that joined it (tests read it)
}

func (rg *RefreshGroup) clock() time.Time {
	if rg.now != nil {
		return rg.now()
	}
	return time.Now()
}

// Do returns the result of fn for refreshToken: the call in flight for the
// same token, or the successful one that finished less than RefreshReuse
// ago, or else a new call of fn. A caller that waits for another's call and
// whose ctx ends gets ctx.Err() (the call goes on for the others). A failure
// is handed only to the callers that waited for that call; the next caller
// runs fn again.
func (rg *RefreshGroup) Do(ctx context.Context, refreshToken string, fn func() (*Session, error)) (*Session, error) {
	key := sha256.Sum256([]byte(refreshToken))
	limit := rg.max
	if limit == 0 {
		limit = maxRefreshCalls
	}
	now := rg.clock()
	rg.mu.Lock()
	if rg.calls == nil {
		rg.calls = map[[32]byte]*refreshCall{}
	}
	if c, ok := rg.calls[key]; ok {
		if c.finished.IsZero() || (c.err == nil && now.Sub(c.finished) < RefreshReuse) {
			c.waiters++
			rg.mu.Unlock()
			select {
			case <-c.done:
				return c.sess, c.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		delete(rg.calls, key)
	}
	if len(rg.calls) >= limit {
		for k, c := range rg.calls {
			if !c.finished.IsZero() && (c.err != nil || now.Sub(c.finished) >= RefreshReuse) {
				delete(rg.calls, k)
			}
		}
	}
	c := &refreshCall{done: make(chan struct{})}
	shared := len(rg.calls) < limit
	if shared {
		rg.calls[key] = c
	}
	rg.mu.Unlock()

	sess, err := fn()
	rg.mu.Lock()
	c.sess, c.err, c.finished = sess, err, rg.clock()
	if shared && err != nil {
		delete(rg.calls, key) // failures are shared with the waiters only
	}
	rg.mu.Unlock()
	close(c.done)
	return sess, err
}
