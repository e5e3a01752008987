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

// Version4Data is what FillVersion4 stored.
type Version4Data struct {
	*Version3Data
	session store.Session
	grant   store.SessionGrant
}

// FillVersion4 puts a record in every table of schema version 4 through s,
// a backend's Store on a database migrated only that far: what FillVersion3
// puts, and a session grant, which addGrant inserts with the SQL of version
// 4 (today's AddSessionGrant writes columns version 4 lacks).
func FillVersion4(t *testing.T, s store.Store, addGrant func(store.SessionGrant) error) *Version4Data {
	t.Helper()
	d := &Version4Data{
		Version3Data: FillVersion3(t, s),
		session:      session("sso-v4"),
	}
	d.grant = store.SessionGrant{SessionID: d.session.ID, FamilyID: "fam-v4", ClientID: "client-v4", CreatedAt: base, ExpiresAt: d.session.ExpiresAt}
	must(t, s.CreateSession(context.Background(), d.session))
	must(t, addGrant(d.grant))
	return d
}

// Check verifies, through s (the same database after the migration), that
// every record FillVersion4 stored is still there, that the grant of version
// 4 was filed under its session's domain and subject, and that the tables of
// version 5 work.
func (d *Version4Data) Check(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	d.Version3Data.Check(t, s)
	se, err := s.Session(ctx, d.session.ID, base)
	must(t, err)
	same(t, se, d.session)
	grants, err := s.SessionGrants(ctx, d.session.ID, base)
	must(t, err)
	if len(grants) != 1 {
		t.Fatalf("session grants of version 4 after the migration: %+v", grants)
	}
	same(t, grants[0], d.grant)
	// Version 5: the grant of version 4 counts among its subject's and its
	// client's families (with fam-v3, the refresh token's family).
	fams, err := s.SubjectFamilies(ctx, d.session.Domain, d.session.Subject, base)
	must(t, err)
	if len(fams) != 2 || fams[0].ID != "fam-v3" || fams[1].ID != "fam-v4" || fams[1].ClientID != "client-v4" {
		t.Fatalf("families of the subject after the migration: %+v", fams)
	}
	fams, err = s.ClientFamilies(ctx, d.session.Domain, "client-v4", base)
	must(t, err)
	if len(fams) != 1 || fams[0].ID != "fam-v4" || fams[0].Subject != d.session.Subject {
		t.Fatalf("families of the client after the migration: %+v", fams)
	}
	// The directory and the API keys.
	v, err := s.DirectoryVersion(ctx)
	must(t, err)
	if v != 0 {
		t.Fatalf("a migrated database starts at directory version %d, want 0", v)
	}
	_, err = s.PutDomain(ctx, dirDomain("example"), store.Absent)
	must(t, err)
	u := putUser(t, s, dirUser("user-1", "alice", "alice@example.org"), store.Absent)
	got, err := s.UserByLogin(ctx, "example", "ALICE@example.org")
	must(t, err)
	same(t, got, u)
	if v, err := s.DirectoryVersion(ctx); err != nil || v != 2 {
		t.Fatalf("directory version after two writes: %d, %v", v, err)
	}
	must(t, s.CreateAPIKey(ctx, apiKey("k-v5", "")))
	k, err := s.APIKeyByHash(ctx, apiKey("k-v5", "").Hash)
	must(t, err)
	same(t, k, apiKey("k-v5", ""))
}
