package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// DefaultPoll is how often Watch reads the store's directory version by
// default: a change made by another instance applies within about that.
const DefaultPoll = time.Second

// StoreDirectory is what Stored reads of the store's directory role
// (store.Directory).
type StoreDirectory interface {
	DirectoryVersion(ctx context.Context) (uint64, error)
	Domains(ctx context.Context) ([]store.Domain, error)
	Clients(ctx context.Context, domain string) ([]store.Client, error)
	Policies(ctx context.Context, domain string) ([]store.Policy, error)
	User(ctx context.Context, domain, subject string) (store.User, error)
	UserByLogin(ctx context.Context, domain, login string) (store.User, error)
	UserByExternal(ctx context.Context, domain, provider, externalSubject string) (store.User, error)
	Users(ctx context.Context, domain, search string, offset, limit int) ([]store.User, int, error)
}

// Stored is the directory of the store: domains, clients and policies as
// snapshots built from its rows — rebuilt by Refresh when the store's
// directory version moved (Watch polls it; a write made through this
// process calls Refresh so it applies at once) — and users read through.
// Until the first successful Refresh every snapshot is ErrUnavailable.
type Stored struct {
	st      StoreDirectory
	onError func(error)
	state   atomic.Pointer[storedState]
	mu      sync.Mutex // one rebuild at a time
	// decoded holds the clients of the last build by domain and id, with
	// the row they were decoded from: a rebuild decodes again only the
	// rows that changed (a client is a pure function of its id, data and
	// secret hash, and immutable once built). Guarded by mu.
	decoded map[clientKey]decodedClient
	// changed is closed (and replaced) whenever new snapshots are swapped
	// in; see Changed.
	cmu     sync.Mutex
	changed chan struct{}
}

type clientKey struct{ domain, id string }

type decodedClient struct {
	data       []byte
	secretHash string
	client     *identity.Client
}

type storedState struct {
	version uint64
	domains map[string]*Snapshot
	names   []string
}

// NewStored returns the directory of st. onError receives the problems of
// stored rows that are left out of the snapshots (a client that does not
// validate, a policy that does not compile) and the failures of Watch; nil
// discards them.
func NewStored(st StoreDirectory, onError func(error)) *Stored {
	if onError == nil {
		onError = func(error) {}
	}
	return &Stored{st: st, onError: onError}
}

// Refresh reads the store's directory version and, when it moved (or
// nothing was read yet), rebuilds every domain's snapshot from the rows
// and swaps them in at once. Rows that cannot be used are left out and
// reported; a store that cannot be read leaves the snapshots as they were
// and is the error.
func (s *Stored) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		v, err := s.st.DirectoryVersion(ctx)
		if err != nil {
			return fmt.Errorf("reading the directory version: %w", err)
		}
		if cur := s.state.Load(); cur != nil && cur.version == v {
			return nil
		}
		next, err := s.build(ctx, v)
		if err != nil {
			return err
		}
		// A write during the build may have been read half: read again
		// (once), or leave it to the next Refresh, which sees the version
		// moved.
		after, err := s.st.DirectoryVersion(ctx)
		if err != nil || after == v || attempt > 0 {
			s.state.Store(next)
			s.notify()
			return nil
		}
	}
}

// Changed returns a channel that is closed the next time Refresh (or
// Watch) swaps in new snapshots: a domain was added, changed or removed, or
// anything else in the store's directory moved. Take the channel before
// reading what may change, so that no swap in between goes unnoticed.
func (s *Stored) Changed() <-chan struct{} {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// notify wakes everyone waiting on Changed.
func (s *Stored) notify() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// build reads every domain's rows at directory version v.
func (s *Stored) build(ctx context.Context, v uint64) (*storedState, error) {
	doms, err := s.st.Domains(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the domains: %w", err)
	}
	next := &storedState{version: v, domains: make(map[string]*Snapshot, len(doms))}
	decoded := make(map[clientKey]decodedClient, len(s.decoded))
	for _, d := range doms {
		snap, err := s.buildDomain(ctx, v, d, decoded)
		if err != nil {
			var unusable *unusableError
			if errors.As(err, &unusable) {
				s.onError(err)
				continue
			}
			return nil, err
		}
		next.domains[d.Name] = snap
		next.names = append(next.names, d.Name)
	}
	slices.Sort(next.names)
	s.decoded = decoded
	return next, nil
}

// unusableError is a stored row that cannot be served.
type unusableError struct{ err error }

func (e *unusableError) Error() string { return "directory: left out: " + e.err.Error() }
func (e *unusableError) Unwrap() error { return e.err }

// buildDomain builds a domain's snapshot from its rows, recording the
// clients it decoded in decoded.
func (s *Stored) buildDomain(ctx context.Context, v uint64, d store.Domain, decoded map[clientKey]decodedClient) (*Snapshot, error) {
	settings, err := DecodeDomainSettings(d.Name, d.Issuer, d.Settings)
	if err != nil {
		return nil, &unusableError{fmt.Errorf("domain %q: %w", d.Name, err)}
	}
	rows, err := s.st.Clients(ctx, d.Name)
	if err != nil {
		return nil, fmt.Errorf("reading the clients of domain %q: %w", d.Name, err)
	}
	clients := make([]*identity.Client, 0, len(rows))
	for _, r := range rows {
		key := clientKey{d.Name, r.ID}
		if old, ok := s.decoded[key]; ok && old.secretHash == r.SecretHash && bytes.Equal(old.data, r.Data) {
			decoded[key] = old
			clients = append(clients, old.client)
			continue
		}
		c, err := DecodeClient(r.ID, r.Data, r.SecretHash)
		if err != nil {
			s.onError(&unusableError{fmt.Errorf("domain %q: %w", d.Name, err)})
			continue
		}
		decoded[key] = decodedClient{data: r.Data, secretHash: r.SecretHash, client: c}
		clients = append(clients, c)
	}
	prows, err := s.st.Policies(ctx, d.Name)
	if err != nil {
		return nil, fmt.Errorf("reading the policies of domain %q: %w", d.Name, err)
	}
	var set *policy.Set
	for _, r := range prows {
		p, err := DecodePolicy(r.ID, r.Source)
		if err == nil {
			var one *policy.Set
			if one, err = policy.Compile([]policy.Policy{p}); err == nil {
				set = policy.Merge(set, one)
				continue
			}
		}
		s.onError(&unusableError{fmt.Errorf("domain %q: policy %q: %w", d.Name, r.ID, err)})
	}
	snap := NewSnapshot(v, settings, clients, set)
	// A real hash of the domain for logins that name no account: the one
	// found before (it stays a real hash of the domain's kind whoever had
	// it), or one of the first users'.
	if cur := s.state.Load(); cur != nil && cur.domains[d.Name] != nil && cur.domains[d.Name].DummyHash != "" {
		snap.DummyHash = cur.domains[d.Name].DummyHash
	} else if users, _, err := s.st.Users(ctx, d.Name, "", 0, 16); err == nil {
		for _, u := range users {
			if u.PasswordHash != "" && identity.ValidatePasswordHash(u.PasswordHash) == nil {
				snap.DummyHash = u.PasswordHash
				break
			}
		}
	}
	return snap, nil
}

// Snapshot returns the domain's snapshot as of the last Refresh.
func (s *Stored) Snapshot(_ context.Context, domain string) (*Snapshot, error) {
	st := s.state.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: the store's directory was not read yet", ErrUnavailable)
	}
	snap, ok := st.domains[domain]
	if !ok {
		return nil, ErrNotFound
	}
	return snap, nil
}

// Domains lists the stored domains as of the last Refresh.
func (s *Stored) Domains(context.Context) ([]string, error) {
	st := s.state.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: the store's directory was not read yet", ErrUnavailable)
	}
	return slices.Clone(st.names), nil
}

// UserBySubject reads the user from the store.
func (s *Stored) UserBySubject(ctx context.Context, domain, sub string) (*identity.User, error) {
	return userOf(s.st.User(ctx, domain, sub))
}

// UserByLogin reads the user whose username or e-mail is login
// (case-insensitive) from the store.
func (s *Stored) UserByLogin(ctx context.Context, domain, login string) (*identity.User, error) {
	return userOf(s.st.UserByLogin(ctx, domain, login))
}

// UserByExternal reads the user linked to the external account from the
// store.
func (s *Stored) UserByExternal(ctx context.Context, domain, provider, externalSub string) (*identity.User, error) {
	return userOf(s.st.UserByExternal(ctx, domain, provider, externalSub))
}

// userOf converts a stored user. A user whose claims cannot be read is
// unavailable, not unknown (its tokens would lack them).
func userOf(r store.User, err error) (*identity.User, error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	cs, err := DecodeUserClaims(r.Claims)
	if err != nil {
		return nil, fmt.Errorf("%w: user %q: %w", ErrUnavailable, r.Subject, err)
	}
	u := &identity.User{
		Subject:           r.Subject,
		PreferredUsername: r.PreferredUsername,
		Name:              r.Name,
		GivenName:         r.GivenName,
		FamilyName:        r.FamilyName,
		Email:             r.Email,
		EmailVerified:     r.EmailVerified,
		Active:            r.Active,
		PasswordHash:      r.PasswordHash,
		Claims:            cs,
	}
	for _, x := range r.Identities {
		u.Identities = append(u.Identities, identity.ExternalIdentity{Provider: x.Provider, Subject: x.Subject})
	}
	return u, nil
}

// Watch calls Refresh every `every` (DefaultPoll when 0) until ctx is
// done; failures go to the onError of NewStored.
func (s *Stored) Watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultPoll
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.onError(err)
			}
		}
	}
}
