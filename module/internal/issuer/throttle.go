package issuer

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
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

// loginThrottle slows down guessing at the login page, per key (what an
// attempt guesses at: authn.Password's keys name accounts) and per address.
// It counts failures twice: in the store, shared by every instance (keys
// hashed, so no account name or address is stored), and in process memory,
// which keeps the limits in force while the store is unreachable.
type loginThrottle struct {
	mu       sync.Mutex
	now      func() time.Time
	clientIP func(*http.Request) string
	entries  map[string]*throttleEntry
	shared   store.Throttle // nil: memory only
	onError  func(op string, err error)
}

type throttleEntry struct {
	failures int
	start    time.Time
}

func newLoginThrottle(now func() time.Time, clientIP func(*http.Request) string) *loginThrottle {
	if clientIP == nil {
		clientIP = RemoteIP
	}
	return &loginThrottle{now: now, clientIP: clientIP, entries: map[string]*throttleEntry{}, onError: func(string, error) {}}
}

// sharedKey is the store's name for a throttle key: a hash, so the table
// holds neither account names nor addresses.
func sharedKey(key string) string {
	sum := sha256.Sum256([]byte("gatehouse login throttle v1\x00" + key))
	return hex.EncodeToString(sum[:])
}

// RemoteIP is the host part of r.RemoteAddr: the default Config.ClientIP.
func RemoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// keys are the counters a sign-in attempt for account
// touches, with their limits.
func (t *loginThrottle) keys(r *http.Request, account string) [3]struct {
	key   string
	limit int
} {
	ip := t.clientIP(r)
	return [3]struct {
		key   string
		limit int
	}{
		{account + "\x00" + ip, perLoginAndIP},
		{"i\x00" + ip, perIP},
		{account, perLogin},
	}
}

// Blocked reports whether any counter of this attempt is at its limit, in
// this process or (with a store) across instances.
func (t *loginThrottle) Blocked(r *http.Request, account string) bool {
	now := t.now()
	keys := t.keys(r, account)
	t.mu.Lock()
	for _, k := range keys {
		if e, ok := t.entries[k.key]; ok && now.Sub(e.start) < throttleWindow && e.failures >= k.limit {
			t.mu.Unlock()
			return true
		}
	}
	t.mu.Unlock()
	if t.shared == nil {
		return false
	}
	counts, err := t.shared.LoginFailures(r.Context(), t.sharedKeys(keys), now)
	if err != nil {
		t.onError("login failures", err)
		return false // the in-memory limits still apply
	}
	for i, k := range keys {
		if counts[i] >= k.limit {
			return true
		}
	}
	return false
}

func (t *loginThrottle) sharedKeys(keys [3]struct {
	key   string
	limit int
}) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = sharedKey(k.key)
	}
	return out
}

// Failed counts a failed sign-in.
func (t *loginThrottle) Failed(r *http.Request, account string) {
	now := t.now()
	keys := t.keys(r, account)
	t.mu.Lock()
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
	for _, k := range keys {
		e, ok := t.entries[k.key]
		if !ok || now.Sub(e.start) >= throttleWindow {
			e = &throttleEntry{start: now}
			t.entries[k.key] = e
		}
		e.failures++
	}
	t.mu.Unlock()
	if t.shared != nil {
		if _, err := t.shared.AddLoginFailures(r.Context(), t.sharedKeys(keys), now, throttleWindow); err != nil {
			t.onError("count login failure", err)
		}
	}
}

// Succeeded clears the account-from-this-address counter.
func (t *loginThrottle) Succeeded(r *http.Request, account string) {
	key := t.keys(r, account)[0].key
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
	if t.shared != nil {
		if err := t.shared.ClearLoginFailures(r.Context(), sharedKey(key)); err != nil {
			t.onError("clear login failures", err)
		}
	}
}
