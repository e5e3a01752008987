package directory

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// Layered puts the configuration over the store: what the configuration
// defines wins, per object id, and is read-only (a management API writes
// to the store only and shows config objects as "managed": "config"); the
// rest comes from the store. Domains are the union of both; a domain's
// snapshot merges the two (config settings, clients and policies override
// stored ones of the same name or id); users are looked up in the
// configuration first, then in the store.
type Layered struct {
	config, stored Directory
	// merged caches each domain's merged snapshot for the pair of
	// snapshots it was built from.
	merged  sync.Map // domain → *atomic.Pointer[layeredEntry]
	version atomic.Uint64
}

type layeredEntry struct {
	config, stored, merged *Snapshot
}

// NewLayered returns the directory of config over stored.
func NewLayered(config, stored Directory) *Layered {
	return &Layered{config: config, stored: stored}
}

// Snapshot merges the domain's config and stored snapshots; the merge is
// built once per pair and then served from memory. When the store cannot
// answer for a domain the configuration defines, the configuration alone
// is served: it can grant nothing the store would not.
func (l *Layered) Snapshot(ctx context.Context, domain string) (*Snapshot, error) {
	cs, cerr := l.config.Snapshot(ctx, domain)
	if cerr != nil && !errors.Is(cerr, ErrNotFound) {
		return nil, cerr
	}
	ss, serr := l.stored.Snapshot(ctx, domain)
	switch {
	case serr == nil:
	case cs != nil:
		ss = nil
	default:
		return nil, serr
	}
	p, ok := l.merged.Load(domain)
	if !ok {
		p, _ = l.merged.LoadOrStore(domain, new(atomic.Pointer[layeredEntry]))
	}
	slot := p.(*atomic.Pointer[layeredEntry])
	if e := slot.Load(); e != nil && e.config == cs && e.stored == ss {
		return e.merged, nil
	}
	e := &layeredEntry{config: cs, stored: ss, merged: l.merge(cs, ss)}
	slot.Store(e)
	return e.merged, nil
}

// merge builds the merged snapshot of a domain; either side may be nil.
func (l *Layered) merge(cs, ss *Snapshot) *Snapshot {
	version := l.version.Add(1)
	if cs == nil {
		out := *ss
		out.Version = version
		out.all, out.configured = false, nil
		return &out
	}
	if ss == nil {
		out := *cs
		out.Version = version
		out.all, out.configured = false, configuredOf(cs)
		return &out
	}
	byID := make(map[string]*identity.Client, len(ss.clients)+len(cs.clients))
	for _, c := range ss.sorted {
		byID[c.ID] = c
	}
	for _, c := range cs.sorted {
		byID[c.ID] = c
	}
	clients := slices.SortedFunc(maps.Values(byID), func(a, b *identity.Client) int { return strings.Compare(a.ID, b.ID) })
	out := NewSnapshot(version, cs.Settings, clients, policy.Merge(ss.Policies, cs.Policies))
	out.DummyHash = cs.DummyHash
	if out.DummyHash == "" {
		out.DummyHash = ss.DummyHash
	}
	out.configured = configuredOf(cs)
	return out
}

// configuredOf marks every object of a config snapshot as config-managed.
func configuredOf(cs *Snapshot) map[objectID]bool {
	m := map[objectID]bool{{KindDomain, ""}: true}
	for _, c := range cs.sorted {
		m[objectID{KindClient, c.ID}] = true
	}
	for _, id := range cs.Policies.IDs() {
		m[objectID{KindPolicy, id}] = true
	}
	return m
}

// UserBySubject looks the user up in the configuration, then in the store.
func (l *Layered) UserBySubject(ctx context.Context, domain, sub string) (*identity.User, error) {
	u, err := l.config.UserBySubject(ctx, domain, sub)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return l.stored.UserBySubject(ctx, domain, sub)
}

// UserByLogin looks the login up in the configuration, then in the store.
func (l *Layered) UserByLogin(ctx context.Context, domain, login string) (*identity.User, error) {
	u, err := l.config.UserByLogin(ctx, domain, login)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return l.stored.UserByLogin(ctx, domain, login)
}

// UserByExternal looks the external account up in the configuration, then
// in the store.
func (l *Layered) UserByExternal(ctx context.Context, domain, provider, externalSub string) (*identity.User, error) {
	u, err := l.config.UserByExternal(ctx, domain, provider, externalSub)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return l.stored.UserByExternal(ctx, domain, provider, externalSub)
}

// Domains is the union of the configured and the stored domains, sorted.
func (l *Layered) Domains(ctx context.Context) ([]string, error) {
	c, err := l.config.Domains(ctx)
	if err != nil {
		return nil, err
	}
	s, err := l.stored.Domains(ctx)
	if err != nil {
		return nil, err
	}
	all := append(slices.Clone(c), s...)
	slices.Sort(all)
	return slices.Compact(all), nil
}

// ConfigManaged reports whether the configuration defines the object: a
// domain (id is its name), or a client, policy or user (by sub) of domain.
// Such objects are read-only through a management API.
func (l *Layered) ConfigManaged(ctx context.Context, kind Kind, domain, id string) (bool, error) {
	switch kind {
	case KindUser:
		_, err := l.config.UserBySubject(ctx, domain, id)
		return managed(err)
	case KindDomain:
		domain = id
	}
	cs, err := l.config.Snapshot(ctx, domain)
	if ok, err := managed(err); !ok || err != nil {
		return ok, err
	}
	switch kind {
	case KindDomain:
		return true, nil
	case KindClient:
		return cs.Client(id) != nil, nil
	case KindPolicy:
		return cs.Policies.Has(id), nil
	}
	return false, nil
}

func managed(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}
