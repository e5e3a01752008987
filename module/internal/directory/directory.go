package directory

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

var (
	// ErrNotFound: no such domain, client, user or policy.
	ErrNotFound = errors.New("directory: not found")
	// ErrUnavailable wraps a failure to answer (the store could not be
	// read): the object may well exist. Callers answer "try again" (503,
	// temporarily_unavailable), never "unknown".
	ErrUnavailable = errors.New("directory: unavailable")
)

// Directory is where the issuer and the gate find identities: a domain's
// clients, policies and settings as one immutable snapshot, and its users,
// read through. Implementations are safe for concurrent use.
//
// Every error is ErrNotFound, or wraps ErrUnavailable.
type Directory interface {
	// Snapshot is the domain's clients, policies and settings at one
	// version. It is immutable and cheap (an atomic load); callers may hold
	// it for the length of one request. ErrNotFound for an unknown domain.
	Snapshot(ctx context.Context, domain string) (*Snapshot, error)
	// UserBySubject returns the user with that sub. Users are read through,
	// never snapshotted: there may be many.
	UserBySubject(ctx context.Context, domain, sub string) (*identity.User, error)
	// UserByLogin resolves what a user typed: preferred username or
	// e-mail, case-insensitively.
	UserByLogin(ctx context.Context, domain, login string) (*identity.User, error)
	// UserByExternal returns the user linked to that account at an
	// external provider.
	UserByExternal(ctx context.Context, domain, provider, externalSub string) (*identity.User, error)
	// Domains lists the domain names, sorted.
	Domains(ctx context.Context) ([]string, error)
}

// Kind names a kind of directory object.
type Kind string

// Kinds of directory objects.
const (
	KindDomain Kind = "domain"
	KindClient Kind = "client"
	KindPolicy Kind = "policy"
	KindUser   Kind = "user"
)

// Snapshot is one domain's clients, policies and settings at one version,
// with the state derived from them (CORS origins, scopes), computed once
// when the snapshot is built. It is immutable: nothing in it, and nothing
// it returns, may be changed.
type Snapshot struct {
	// Version changes whenever anything in the snapshot changes; a cache of
	// something derived from a snapshot is valid while the version is the
	// same.
	Version uint64
	// Settings are the domain's settings: name, issuer URL, session
	// lifetime, signing algorithm, key rotation and claims map.
	Settings identity.DomainSettings
	// Policies holds the domain's policies; nil when it has none.
	Policies *policy.Set
	// Origins are the CORS origins of all clients (no trailing slash).
	Origins map[string]bool
	// Scopes are the scopes the domain supports (discovery's
	// scopes_supported): the standard ones, then every client's.
	Scopes []string
	// DummyHash is a real password hash of the domain, spent when a login
	// names no account so that timing does not tell (see CheckPassword);
	// "" falls back to a default one.
	DummyHash string

	clients map[string]*identity.Client
	sorted  []*identity.Client
	// configured marks the objects the configuration defines (read-only
	// through a management API); all marks every object.
	configured map[objectID]bool
	all        bool
}

type objectID struct {
	kind Kind
	id   string
}

// NewSnapshot builds a snapshot of a domain's clients and policies and
// derives its state: Origins, and Scopes in the order of clients. The
// snapshot keeps the clients; neither they nor policies may change
// afterwards.
func NewSnapshot(version uint64, settings identity.DomainSettings, clients []*identity.Client, policies *policy.Set) *Snapshot {
	s := &Snapshot{
		Version:  version,
		Settings: settings,
		Policies: policies,
		Origins:  map[string]bool{},
		Scopes:   slices.Clone(identity.StandardScopes),
		clients:  make(map[string]*identity.Client, len(clients)),
		sorted:   make([]*identity.Client, 0, len(clients)),
	}
	// Scopes are kept in order of first appearance; the set makes that
	// linear in the number of clients (each may bring scopes of its own).
	seen := make(map[string]bool, len(s.Scopes))
	for _, sc := range s.Scopes {
		seen[sc] = true
	}
	for _, c := range clients {
		s.clients[c.ID] = c
		s.sorted = append(s.sorted, c)
		for _, o := range c.AllowedOrigins {
			s.Origins[strings.TrimSuffix(o, "/")] = true
		}
		for _, sc := range c.Scopes {
			if !seen[sc] {
				seen[sc] = true
				s.Scopes = append(s.Scopes, sc)
			}
		}
	}
	slices.SortFunc(s.sorted, func(a, b *identity.Client) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// Client returns the client with that id, or nil.
func (s *Snapshot) Client(id string) *identity.Client { return s.clients[id] }

// Clients returns every client, sorted by id.
func (s *Snapshot) Clients() []*identity.Client { return s.sorted }

// ConfigManaged reports whether the configuration defines the object —
// the domain's settings (KindDomain; id is ignored), a client or a policy
// — so that a management API shows it read-only ("managed": "config").
func (s *Snapshot) ConfigManaged(kind Kind, id string) bool {
	if s.all {
		return true
	}
	if kind == KindDomain {
		id = ""
	}
	return s.configured[objectID{kind, id}]
}

// CheckPolicies returns an error naming the policy ids the snapshot does
// not define, or nil.
func (s *Snapshot) CheckPolicies(ids []string) error {
	return s.Policies.Check(ids)
}
