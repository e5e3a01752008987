package issuer

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sign-in throttling defaults: failed password sign-ins counted per
// window; past a limit the key is refused until the window ends.
const (
	throttleWindow = 15 * time.Minute
	// perLoginAndIP limits guessing one account from one address.
	perLoginAndIP = 5
	// perIP limits one address guessing many accounts.
	perIP = 50
	// perLogin limits guessing one account from many addresses, set high
	// enough that locking a user out takes a botnet, not a script.
	perLogin = 100
	// throttleEntries bounds the memory the throttle may use.
	throttleEntries = 100_000
)

// loginThrottle slows down password guessing at the login form. It counts
// failures in process memory (per instance; several instances each apply
// the limits).
type loginThrottle struct {
	mu       sync.Mutex
	now      func() time.Time
	clientIP func(*http.Request) string
	entries  map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	start    time.Time
}

func newLoginThrottle(now func() time.Time, clientIP func(*http.Request) string) *loginThrottle {
	if clientIP == nil {
		clientIP = RemoteIP
	}
	return &loginThrottle{now: now, clientIP: clientIP, entries: map[string]*throttleEntry{}}
}

// RemoteIP is the host part of r.RemoteAddr: the default Config.ClientIP.
func RemoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// keys are the counters a sign-in attempt touches, with their limits.
func (t *loginThrottle) keys(r *http.Request, login string) [3]struct {
	key   string
	limit int
} {
	ip := t.clientIP(r)
	login = strings.ToLower(strings.TrimSpace(login))
	return [3]struct {
		key   string
		limit int
	}{
		{"l\x00" + login + "\x00" + ip, perLoginAndIP},
		{"i\x00" + ip, perIP},
		{"l\x00" + login, perLogin},
	}
}

// blocked reports whether any counter of this attempt is at its limit.
func (t *loginThrottle) blocked(r *http.Request, login string) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys(r, login) {
		if e, ok := t.entries[k.key]; ok && now.Sub(e.start) < throttleWindow && e.failures >= k.limit {
			return true
		}
	}
	return false
}

// failed counts a failed sign-in.
func (t *loginThrottle) failed(r *http.Request, login string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= throttleEntries {
		for k, e := range t.entries {
			if now.Sub(e.start) >= throttleWindow {
				delete(t.entries, k)
			}
		}
		if len(t.entries) >= throttleEntries {
			clear(t.entries) // under a flood, forget rather than grow
		}
	}
	for _, k := range t.keys(r, login) {
		e, ok := t.entries[k.key]
		if !ok || now.Sub(e.start) >= throttleWindow {
			e = &throttleEntry{start: now}
			t.entries[k.key] = e
		}
		e.failures++
	}
}

// succeeded clears the account-from-this-address counter.
func (t *loginThrottle) succeeded(r *http.Request, login string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, t.keys(r, login)[0].key)
}
