package bearer

import (
	"errors"
	"sync"
)

// Source names an external issuer's keys: a JWKS URL, or else an issuer URL to
// discover it from.
type Source struct {
	Issuer  string
	JWKSURL string
}

func (s Source) key() string {
	if s.JWKSURL != "" {
		return "jwks " + s.JWKSURL
	}
	return "issuer " + s.Issuer
}

// Registry shares RemoteKeySets between handlers: every handler trusting the same
// source gets the same key cache, and because a config reload acquires the new
// handlers' sets before releasing the old ones, the cache survives reloads.
type Registry struct {
	mu sync.Mutex
	m  map[string]*registryEntry
}

type registryEntry struct {
	ks   *RemoteKeySet
	refs int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]*registryEntry{}} }

var defaultRegistry = NewRegistry()

// Shared acquires src from the process-wide registry (see Registry.Acquire).
func Shared(src Source, opts RemoteOptions) (*RemoteKeySet, func(), error) {
	return defaultRegistry.Acquire(src, opts)
}

// Acquire returns the shared key set for src, creating it with opts when it is not
// in use yet (later callers share the first caller's options, but their URLs are still
// checked against their own opts). The returned release function drops the reference;
// it is idempotent. The set is forgotten when the last reference is released.
func (r *Registry) Acquire(src Source, opts RemoteOptions) (*RemoteKeySet, func(), error) {
	var ks *RemoteKeySet
	var err error
	switch {
	case src.JWKSURL != "":
		ks, err = NewRemoteKeySet(src.JWKSURL, opts)
	case src.Issuer != "":
		ks, err = NewDiscoveryKeySet(src.Issuer, opts)
	default:
		err = errors.New("bearer: a key source needs an issuer or a JWKS URL")
	}
	if err != nil {
		return nil, nil, err
	}
	k := src.key()
	r.mu.Lock()
	e := r.m[k]
	if e == nil {
		e = &registryEntry{ks: ks}
		r.m[k] = e
	}
	e.refs++
	r.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if e.refs--; e.refs == 0 && r.m[k] == e {
				delete(r.m, k)
			}
		})
	}
	return e.ks, release, nil
}
