package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// RoundRobin returns a Store that sends each call to the next of stores in
// turn. Given several handles on one database (two *sqlite.Store on one
// file, two pools on one PostgreSQL schema), it lets Run play several
// Gatehouse instances racing each other. Close closes every store.
func RoundRobin(stores ...store.Store) store.Store {
	if len(stores) == 0 {
		panic("storetest: RoundRobin needs at least one store")
	}
	return &roundRobin{stores: stores}
}

type roundRobin struct {
	stores []store.Store
	next   atomic.Uint64
}

func (r *roundRobin) pick() store.Store {
	return r.stores[(r.next.Add(1)-1)%uint64(len(r.stores))]
}

func (r *roundRobin) SigningKeys(ctx context.Context, domain string) ([]store.SigningKey, error) {
	return r.pick().SigningKeys(ctx, domain)
}

func (r *roundRobin) RotateSigningKeys(ctx context.Context, domain string, decide func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	return r.pick().RotateSigningKeys(ctx, domain, decide)
}

func (r *roundRobin) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	return r.pick().Secret(ctx, name, value)
}

func (r *roundRobin) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	return r.pick().CreateAuthCode(ctx, c)
}

func (r *roundRobin) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	return r.pick().ConsumeAuthCode(ctx, id, now)
}

func (r *roundRobin) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return r.pick().CreateRefreshToken(ctx, t)
}

func (r *roundRobin) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	return r.pick().RotateRefreshToken(ctx, oldID, now, next)
}

func (r *roundRobin) RefreshToken(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	return r.pick().RefreshToken(ctx, id, now)
}

func (r *roundRobin) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	return r.pick().Revoke(ctx, id, expiresAt)
}

func (r *roundRobin) Revoked(ctx context.Context, ids ...string) (bool, error) {
	return r.pick().Revoked(ctx, ids...)
}

func (r *roundRobin) RevokedSince(ctx context.Context, since time.Time, limit int) ([]store.Revocation, error) {
	return r.pick().RevokedSince(ctx, since, limit)
}

func (r *roundRobin) AddLoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]int, error) {
	return r.pick().AddLoginFailures(ctx, keys, now, window)
}

func (r *roundRobin) LoginFailures(ctx context.Context, keys []string, now time.Time) ([]int, error) {
	return r.pick().LoginFailures(ctx, keys, now)
}

func (r *roundRobin) ClearLoginFailures(ctx context.Context, key string) error {
	return r.pick().ClearLoginFailures(ctx, key)
}

func (r *roundRobin) CreateSession(ctx context.Context, s store.Session) error {
	return r.pick().CreateSession(ctx, s)
}

func (r *roundRobin) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	return r.pick().Session(ctx, id, now)
}

func (r *roundRobin) DeleteSession(ctx context.Context, id string) error {
	return r.pick().DeleteSession(ctx, id)
}

func (r *roundRobin) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	return r.pick().AddSessionGrant(ctx, g)
}

func (r *roundRobin) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	return r.pick().SessionGrants(ctx, sessionID, now)
}

func (r *roundRobin) SubjectFamilies(ctx context.Context, domain, subject string, now time.Time) ([]store.Family, error) {
	return r.pick().SubjectFamilies(ctx, domain, subject, now)
}

func (r *roundRobin) ClientFamilies(ctx context.Context, domain, clientID string, now time.Time) ([]store.Family, error) {
	return r.pick().ClientFamilies(ctx, domain, clientID, now)
}

func (r *roundRobin) DeleteSubjectSessions(ctx context.Context, domain, subject string) ([]string, error) {
	return r.pick().DeleteSubjectSessions(ctx, domain, subject)
}

func (r *roundRobin) DirectoryVersion(ctx context.Context) (uint64, error) {
	return r.pick().DirectoryVersion(ctx)
}

func (r *roundRobin) Domain(ctx context.Context, name string) (store.Domain, error) {
	return r.pick().Domain(ctx, name)
}

func (r *roundRobin) Domains(ctx context.Context) ([]store.Domain, error) {
	return r.pick().Domains(ctx)
}

func (r *roundRobin) PutDomain(ctx context.Context, d store.Domain, expected int64) (store.Domain, error) {
	return r.pick().PutDomain(ctx, d, expected)
}

func (r *roundRobin) DeleteDomain(ctx context.Context, name string, expected int64) error {
	return r.pick().DeleteDomain(ctx, name, expected)
}

func (r *roundRobin) User(ctx context.Context, domain, subject string) (store.User, error) {
	return r.pick().User(ctx, domain, subject)
}

func (r *roundRobin) UserByLogin(ctx context.Context, domain, login string) (store.User, error) {
	return r.pick().UserByLogin(ctx, domain, login)
}

func (r *roundRobin) UserByExternal(ctx context.Context, domain, provider, externalSubject string) (store.User, error) {
	return r.pick().UserByExternal(ctx, domain, provider, externalSubject)
}

func (r *roundRobin) Users(ctx context.Context, domain, search string, offset, limit int) ([]store.User, int, error) {
	return r.pick().Users(ctx, domain, search, offset, limit)
}

func (r *roundRobin) PutUser(ctx context.Context, u store.User, expected int64) (store.User, error) {
	return r.pick().PutUser(ctx, u, expected)
}

func (r *roundRobin) DeleteUser(ctx context.Context, domain, subject string, expected int64) error {
	return r.pick().DeleteUser(ctx, domain, subject, expected)
}

func (r *roundRobin) Client(ctx context.Context, domain, id string) (store.Client, error) {
	return r.pick().Client(ctx, domain, id)
}

func (r *roundRobin) Clients(ctx context.Context, domain string) ([]store.Client, error) {
	return r.pick().Clients(ctx, domain)
}

func (r *roundRobin) PutClient(ctx context.Context, c store.Client, expected int64) (store.Client, error) {
	return r.pick().PutClient(ctx, c, expected)
}

func (r *roundRobin) DeleteClient(ctx context.Context, domain, id string, expected int64) error {
	return r.pick().DeleteClient(ctx, domain, id, expected)
}

func (r *roundRobin) Policy(ctx context.Context, domain, id string) (store.Policy, error) {
	return r.pick().Policy(ctx, domain, id)
}

func (r *roundRobin) Policies(ctx context.Context, domain string) ([]store.Policy, error) {
	return r.pick().Policies(ctx, domain)
}

func (r *roundRobin) PutPolicy(ctx context.Context, p store.Policy, expected int64) (store.Policy, error) {
	return r.pick().PutPolicy(ctx, p, expected)
}

func (r *roundRobin) DeletePolicy(ctx context.Context, domain, id string, expected int64) error {
	return r.pick().DeletePolicy(ctx, domain, id, expected)
}

func (r *roundRobin) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	return r.pick().CreateAPIKey(ctx, k)
}

func (r *roundRobin) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	return r.pick().APIKey(ctx, id)
}

func (r *roundRobin) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	return r.pick().APIKeyByHash(ctx, hash)
}

func (r *roundRobin) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	return r.pick().APIKeys(ctx)
}

func (r *roundRobin) DomainAPIKeys(ctx context.Context, domain string) ([]store.APIKey, error) {
	return r.pick().DomainAPIKeys(ctx, domain)
}

func (r *roundRobin) RevokeAPIKey(ctx context.Context, id string, now time.Time) (store.APIKey, error) {
	return r.pick().RevokeAPIKey(ctx, id, now)
}

func (r *roundRobin) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	return r.pick().TouchAPIKey(ctx, id, now)
}

func (r *roundRobin) DeleteExpired(ctx context.Context, now time.Time) error {
	return r.pick().DeleteExpired(ctx, now)
}

func (r *roundRobin) Close() error {
	var errs []error
	for _, s := range r.stores {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

var _ store.Store = (*roundRobin)(nil)
