package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// StaticDomain is one domain as the configuration defines it.
type StaticDomain struct {
	// Domain holds the settings, users and clients; NewStatic compiles it
	// when it is not compiled yet.
	*identity.Domain
	// Policies are the domain's policies; nil when it has none.
	Policies *policy.Set
}

// Static is the directory of the configuration (the Caddyfile): domains,
// users, clients and policies fixed when it is built. Its snapshots never
// change (their version is one no other Static of the process uses), and
// every object in them is config-managed.
type Static struct {
	domains map[string]*staticDomain
	names   []string
}

type staticDomain struct {
	dom  *identity.Domain
	snap *Snapshot
}

// staticVersions numbers the Static directories of the process: each
// one's snapshots carry a version no other Static's carry.
var staticVersions atomic.Uint64

// NewStatic validates the domains (identity.Domain.Compile, unique names,
// clients naming only defined policies) and builds their snapshots. The
// domains, users, clients and policy sets must not change afterwards.
func NewStatic(domains ...StaticDomain) (*Static, error) {
	s := &Static{domains: make(map[string]*staticDomain, len(domains))}
	version := staticVersions.Add(1)
	var errs []error
	for _, d := range domains {
		if d.Domain == nil {
			errs = append(errs, errors.New("directory: a static domain without settings"))
			continue
		}
		if _, dup := s.domains[d.Name]; dup {
			errs = append(errs, fmt.Errorf("domain %q is defined twice; give each domain a unique name", d.Name))
			continue
		}
		if !d.Compiled() {
			if err := d.Compile(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, c := range d.Clients {
			if err := d.Policies.Check(c.Policies); err != nil {
				errs = append(errs, fmt.Errorf("client %q: %w", c.ID, err))
			}
		}
		snap := NewSnapshot(version, d.DomainSettings, d.Clients, d.Policies)
		snap.DummyHash = d.DummyHash()
		snap.all = true
		s.domains[d.Name] = &staticDomain{dom: d.Domain, snap: snap}
		s.names = append(s.names, d.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Strings(s.names)
	return s, nil
}

func (s *Static) domain(name string) (*staticDomain, error) {
	d, ok := s.domains[name]
	if !ok {
		return nil, ErrNotFound
	}
	return d, nil
}

// Snapshot returns the domain's only snapshot.
func (s *Static) Snapshot(_ context.Context, domain string) (*Snapshot, error) {
	d, err := s.domain(domain)
	if err != nil {
		return nil, err
	}
	return d.snap, nil
}

// UserBySubject returns the configured user with that sub.
func (s *Static) UserBySubject(_ context.Context, domain, sub string) (*identity.User, error) {
	d, err := s.domain(domain)
	if err != nil {
		return nil, err
	}
	return found(d.dom.UserBySubject(sub))
}

// UserByLogin returns the configured user whose username or e-mail is
// login (case-insensitive).
func (s *Static) UserByLogin(_ context.Context, domain, login string) (*identity.User, error) {
	d, err := s.domain(domain)
	if err != nil {
		return nil, err
	}
	return found(d.dom.UserByLogin(login))
}

// UserByExternal returns the configured user linked to that external
// account.
func (s *Static) UserByExternal(_ context.Context, domain, provider, externalSub string) (*identity.User, error) {
	d, err := s.domain(domain)
	if err != nil {
		return nil, err
	}
	return found(d.dom.UserByExternal(provider, externalSub))
}

// found is u, or ErrNotFound when there is none.
func found(u *identity.User) (*identity.User, error) {
	if u == nil {
		return nil, ErrNotFound
	}
	return u, nil
}

// Domains lists the configured domains' names, sorted.
func (s *Static) Domains(context.Context) ([]string, error) { return slices.Clone(s.names), nil }
