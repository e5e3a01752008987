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
