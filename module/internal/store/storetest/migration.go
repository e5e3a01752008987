package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Version3Data is what FillVersion3 stored.
type Version3Data struct {
	key     store.SigningKey
	code    store.AuthCode
	refresh store.RefreshToken
	session store.Session
}

// FillVersion3 puts a record in every table of schema version 3 through s,
// a backend's Store on a database migrated only that far (the previous
// release's methods work on it): the data a migration must keep.
func FillVersion3(t *testing.T, s store.Store) *Version3Data {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	d := &Version3Data{
		key:     key("example", "k-v3", now, 48*time.Hour),
		code:    code("code-v3"),
		refresh: refresh("rt-v3", "fam-v3"),
		session: session("sso-v3"),
	}
	add(t, s, "example", d.key)
	_, err := s.Secret(ctx, "secret-v3", []byte("kept"))
	must(t, err)
	must(t, s.CreateAuthCode(ctx, d.code))
	must(t, s.CreateRefreshToken(ctx, d.refresh))
	must(t, s.Revoke(ctx, "jti-v3", now.Add(time.Hour)))
	must(t, s.CreateSession(ctx, d.session))
	_, err = s.AddLoginFailures(ctx, []string{"throttle-v3"}, base, time.Hour)
	must(t, err)
	return d
}

// Check verifies, through s (the same database after the migration), that
// every record FillVersion3 stored is still there, and that the tables the
// migration added work.
func (d *Version3Data) Check(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	keys, err := s.SigningKeys(ctx, "example")
	must(t, err)
	if len(keys) != 1 {
		t.Fatalf("signing keys after the migration: %v", kids(keys))
	}
	same(t, keys[0], d.key)
	secret, err := s.Secret(ctx, "secret-v3", []byte("new"))
	must(t, err)
	if string(secret) != "kept" {
		t.Fatalf("secret after the migration: %q", secret)
	}
	c, err := s.ConsumeAuthCode(ctx, d.code.ID, base)
	must(t, err)
	same(t, c, d.code)
	r, err := s.RefreshToken(ctx, d.refresh.ID, base)
	must(t, err)
	same(t, r, d.refresh)
	revoked, err := s.Revoked(ctx, "jti-v3")
	must(t, err)
	if !revoked {
		t.Fatal("a revocation was lost in the migration")
	}
	since, err := s.RevokedSince(ctx, time.Time{}, 10)
	must(t, err)
	if len(since) != 1 || since[0].ID != "jti-v3" {
		t.Fatalf("RevokedSince after the migration: %+v", since)
	}
	se, err := s.Session(ctx, d.session.ID, base)
	must(t, err)
	same(t, se, d.session)
	counts, err := s.LoginFailures(ctx, []string{"throttle-v3"}, base)
	must(t, err)
	if !slices.Equal(counts, []int{1}) {
		t.Fatalf("login failures after the migration: %v", counts)
	}
	// Version 4: grants of the session that existed before.
	g := store.SessionGrant{SessionID: d.session.ID, FamilyID: d.refresh.FamilyID, ClientID: d.refresh.ClientID, CreatedAt: base, ExpiresAt: d.session.ExpiresAt}
	must(t, s.AddSessionGrant(ctx, g))
	grants, err := s.SessionGrants(ctx, d.session.ID, base)
	must(t, err)
	if len(grants) != 1 {
		t.Fatalf("session grants after the migration: %+v", grants)
	}
	same(t, grants[0], g)
}
