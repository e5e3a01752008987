package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// The directory. Its writes stamp rows with the backend's clock (the wall
// clock here), so these tests check CreatedAt and UpdatedAt against a
// window around the call.

// directoryTests are the directory's cases, run by Run.
var directoryTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"directory version rises with every directory write and only then", testDirectoryVersion},
	{"domain round-trips and domains are listed by name", testDomainRoundTrip},
	{"domain update needs the version read and bumps it", testDomainVersions},
	{"domain issuer is unique among stored domains", testDomainIssuerUnique},
	{"deleting a domain removes everything in it and revokes its API keys", testDomainDelete},
	{"user round-trips every field", testUserRoundTrip},
	{"user is found by username or e-mail case-insensitively", testUserByLogin},
	{"user is found by external identity", testUserByExternal},
	{"usernames, e-mails and external identities are unique per domain, and the error names the field", testUserUnique},
	{"user update replaces its logins and identities", testUserUpdate},
	{"user update and delete need the version read", testUserVersions},
	{"users are searched by username or e-mail, ordered by username and paged with a total", testUsersSearch},
	{"deleting a user frees its username, e-mail and identities", testUserDelete},
	{"concurrent creates of one username have exactly one winner", testUserCreateConcurrent},
	{"concurrent updates with one expected version have exactly one winner", testUserUpdateConcurrent},
	{"client round-trips, is listed by ID and needs the version read", testClients},
	{"concurrent creates of one client have exactly one winner", testClientCreateConcurrent},
	{"policy round-trips, is listed by ID and needs the version read", testPolicies},
	{"invalid directory records and versions are refused without a change", testDirectoryValidation},
}

// Fixtures.

func dirDomain(name string) store.Domain {
	return store.Domain{
		Name:     name,
		Issuer:   "https://auth.example.com/" + name,
		Settings: json.RawMessage(`{"sessionLifetime": "12h", "claimsMap": {"groups": "roles"}, "keyRotation": null}`),
	}
}

func dirUser(sub, username, email string) store.User {
	return store.User{
		Domain:            "example",
		Subject:           sub,
		PreferredUsername: username,
		Name:              "Name of " + sub,
		GivenName:         "Given",
		FamilyName:        "Family ünïcode",
		Email:             email,
		EmailVerified:     true,
		Active:            true,
		PasswordHash:      "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Claims:            json.RawMessage(`[{"name":"department","value":"eng","in":"access"},{"name":"n","value":1.5,"in":"identity"}]`),
	}
}

func dirClient(id string) store.Client {
	return store.Client{
		Domain:     "example",
		ID:         id,
		Data:       json.RawMessage(`{"clientType":"confidential","redirectUris":["https://app.example/cb"],"scope":["openid","profile"]}`),
		SecretHash: "sha256:" + store.HashID("secret-of-"+id),
	}
}

func dirPolicy(id string) store.Policy {
	return store.Policy{
		Domain: "example",
		ID:     id,
		Source: json.RawMessage(`{"version":1,"rules":[{"allow":{"claim":"department","equals":"eng"}}]}`),
	}
}

// Assertions.

func dirVersion(t *testing.T, s store.Store) uint64 {
	t.Helper()
	v, err := s.DirectoryVersion(context.Background())
	must(t, err)
	return v
}

// wantConflict checks that err is a *store.ConflictError naming field.
func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	wantErr(t, err, store.ErrConflict)
	var c *store.ConflictError
	if !errors.As(err, &c) || c.Field != field {
		t.Fatalf("got %v, want a conflict on %s", err, field)
	}
	if !strings.Contains(err.Error(), strings.ReplaceAll(field, "_", " ")) {
		t.Fatalf("the conflict %q does not name %s", err, field)
	}
}

// stamped checks a written record's version and times: version want,
// UpdatedAt within [from, to], CreatedAt at or before UpdatedAt (and equal
// to it when the record is new).
func stamped(t *testing.T, what string, version, want int64, created, updated, from, to time.Time) {
	t.Helper()
	if version != want {
		t.Errorf("%s: version %d, want %d", what, version, want)
	}
	if updated.Location() != time.UTC || created.Location() != time.UTC {
		t.Errorf("%s: times not in UTC: %s, %s", what, created, updated)
	}
	if updated.Before(from.Truncate(time.Microsecond)) || updated.After(to) {
		t.Errorf("%s: UpdatedAt %s outside the call's [%s, %s]", what, updated, from, to)
	}
	if created.After(updated) || (want == 1 && !created.Equal(updated)) {
		t.Errorf("%s: CreatedAt %s, UpdatedAt %s", what, created, updated)
	}
}

// withMeta returns want with got's version and times, so same compares the
// content.
func withMeta[T store.Domain | store.User | store.Client | store.Policy](want, got T) T {
	switch w := any(&want).(type) {
	case *store.Domain:
		g := any(got).(store.Domain)
		w.Version, w.CreatedAt, w.UpdatedAt = g.Version, g.CreatedAt, g.UpdatedAt
	case *store.User:
		g := any(got).(store.User)
		w.Version, w.CreatedAt, w.UpdatedAt = g.Version, g.CreatedAt, g.UpdatedAt
	case *store.Client:
		g := any(got).(store.Client)
		w.Version, w.CreatedAt, w.UpdatedAt = g.Version, g.CreatedAt, g.UpdatedAt
	case *store.Policy:
		g := any(got).(store.Policy)
		w.Version, w.CreatedAt, w.UpdatedAt = g.Version, g.CreatedAt, g.UpdatedAt
	}
	return want
}

func putUser(t *testing.T, s store.Store, u store.User, expected int64) store.User {
	t.Helper()
	got, err := s.PutUser(context.Background(), u, expected)
	must(t, err)
	return got
}

func subjects(users []store.User) []string {
	out := []string{}
	for _, u := range users {
		out = append(out, u.Subject)
	}
	return out
}

// Domains.

func testDirectoryVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := dirVersion(t, s)
	rises := func(what string, err error) {
		t.Helper()
		must(t, err)
		now := dirVersion(t, s)
		if now <= v {
			t.Fatalf("after %s the directory version is %d, was %d: want it higher", what, now, v)
		}
		v = now
	}
	stays := func(what string) {
		t.Helper()
		if now := dirVersion(t, s); now != v {
			t.Fatalf("after %s the directory version moved from %d to %d", what, v, now)
		}
	}
	d, err := s.PutDomain(ctx, dirDomain("example"), store.Absent)
	rises("creating a domain", err)
	_, err = s.PutDomain(ctx, dirDomain("example"), d.Version)
	rises("updating a domain", err)
	u, err := s.PutUser(ctx, dirUser("u1", "alice", "alice@example.org"), store.Absent)
	rises("creating a user", err)
	_, err = s.PutClient(ctx, dirClient("app"), store.Absent)
	rises("creating a client", err)
	_, err = s.PutPolicy(ctx, dirPolicy("eng"), store.Absent)
	rises("creating a policy", err)
	rises("deleting a user", s.DeleteUser(ctx, "example", u.Subject, store.AnyVersion))
	rises("deleting a client", s.DeleteClient(ctx, "example", "app", store.AnyVersion))
	rises("deleting a policy", s.DeletePolicy(ctx, "example", "eng", store.AnyVersion))

	// Failed writes, reads and the run-time records leave it alone.
	_, err = s.PutDomain(ctx, dirDomain("example"), store.Absent)
	wantErr(t, err, store.ErrConflict)
	stays("a refused create")
	_, err = s.PutDomain(ctx, dirDomain("example"), 1)
	wantErr(t, err, store.ErrStale)
	stays("a stale update")
	_, err = s.Domain(ctx, "example")
	must(t, err)
	_, _, err = s.Users(ctx, "example", "", 0, 10)
	must(t, err)
	must(t, s.CreateSession(ctx, session("sso")))
	must(t, s.CreateAPIKey(ctx, apiKey("k1", "")))
	stays("reads, a session and an API key")
	rises("deleting a domain", s.DeleteDomain(ctx, "example", store.AnyVersion))
}

func testDomainRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := time.Now()
	b := dirDomain("b-domain")
	got, err := s.PutDomain(ctx, b, store.Absent)
	must(t, err)
	stamped(t, "created domain", got.Version, 1, got.CreatedAt, got.UpdatedAt, before, time.Now())
	same(t, got, withMeta(b, got))
	read, err := s.Domain(ctx, "b-domain")
	must(t, err)
	same(t, read, got)

	a := store.Domain{Name: "a-domain"} // no issuer, no settings
	_, err = s.PutDomain(ctx, a, store.Absent)
	must(t, err)
	c := dirDomain("C-domain") // upper case sorts first in binary order
	_, err = s.PutDomain(ctx, c, store.Absent)
	must(t, err)
	all, err := s.Domains(ctx)
	must(t, err)
	var names []string
	for _, d := range all {
		names = append(names, d.Name)
	}
	if fmt.Sprint(names) != "[C-domain a-domain b-domain]" {
		t.Fatalf("Domains = %v, want [C-domain a-domain b-domain]", names)
	}
	same(t, all[1], withMeta(a, all[1]))
	_, err = s.Domain(ctx, "unknown")
	wantErr(t, err, store.ErrNotFound)
}

func testDomainVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	v1, err := s.PutDomain(ctx, dirDomain("example"), store.Absent)
	must(t, err)
	_, err = s.PutDomain(ctx, dirDomain("example"), store.Absent)
	wantConflict(t, err, store.FieldName)

	changed := dirDomain("example")
	changed.Issuer = "https://login.example.com"
	changed.Settings = nil
	before := time.Now()
	v2, err := s.PutDomain(ctx, changed, v1.Version)
	must(t, err)
	stamped(t, "updated domain", v2.Version, 2, v2.CreatedAt, v2.UpdatedAt, before, time.Now())
	if !v2.CreatedAt.Equal(v1.CreatedAt) {
		t.Errorf("an update changed CreatedAt from %s to %s", v1.CreatedAt, v2.CreatedAt)
	}
	same(t, v2, withMeta(changed, v2))

	// A writer that read version 1 is too late: nothing changes.
	stale := dirDomain("example")
	stale.Issuer = "https://stale.example.com"
	_, err = s.PutDomain(ctx, stale, v1.Version)
	wantErr(t, err, store.ErrStale)
	read, err := s.Domain(ctx, "example")
	must(t, err)
	same(t, read, v2)

	_, err = s.PutDomain(ctx, dirDomain("unknown"), 3)
	wantErr(t, err, store.ErrNotFound)
	// AnyVersion replaces whatever is there, or creates.
	v3, err := s.PutDomain(ctx, dirDomain("example"), store.AnyVersion)
	must(t, err)
	if v3.Version != 3 {
		t.Fatalf("after a replace, version %d, want 3", v3.Version)
	}
	fresh, err := s.PutDomain(ctx, dirDomain("fresh"), store.AnyVersion)
	must(t, err)
	if fresh.Version != 1 {
		t.Fatalf("created with AnyVersion: version %d, want 1", fresh.Version)
	}
}

func testDomainIssuerUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := dirDomain("a")
	_, err := s.PutDomain(ctx, a, store.Absent)
	must(t, err)
	b := dirDomain("b")
	b.Issuer = a.Issuer
	_, err = s.PutDomain(ctx, b, store.Absent)
	wantConflict(t, err, store.FieldIssuer)
	_, err = s.Domain(ctx, "b")
	wantErr(t, err, store.ErrNotFound)
	// A domain keeps its own issuer; domains without one do not collide.
	_, err = s.PutDomain(ctx, a, store.AnyVersion)
	must(t, err)
	for _, name := range []string{"c", "d"} {
		_, err = s.PutDomain(ctx, store.Domain{Name: name}, store.Absent)
		must(t, err)
	}
}

func testDomainDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	fill := func(domain string) {
		d, err := s.PutDomain(ctx, dirDomain(domain), store.Absent)
		must(t, err)
		_ = d
		u := dirUser("u1", "alice", "alice@example.org")
		u.Domain = domain
		u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "1"}}
		putUser(t, s, u, store.Absent)
		c := dirClient("app")
		c.Domain = domain
		_, err = s.PutClient(ctx, c, store.Absent)
		must(t, err)
		p := dirPolicy("eng")
		p.Domain = domain
		_, err = s.PutPolicy(ctx, p, store.Absent)
		must(t, err)
		must(t, s.CreateAPIKey(ctx, apiKey("key-"+domain, domain)))
	}
	fill("doomed")
	fill("kept")
	must(t, s.CreateAPIKey(ctx, apiKey("global", "")))

	err := s.DeleteDomain(ctx, "doomed", 2)
	wantErr(t, err, store.ErrStale)
	_, err = s.User(ctx, "doomed", "u1")
	must(t, err) // a stale delete removes nothing
	wantErr(t, s.DeleteDomain(ctx, "unknown", store.AnyVersion), store.ErrNotFound)
	if err := s.DeleteDomain(ctx, "doomed", store.Absent); err == nil {
		t.Fatal("a delete expecting an absent row was accepted")
	}

	before := time.Now()
	must(t, s.DeleteDomain(ctx, "doomed", 1))
	_, err = s.Domain(ctx, "doomed")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.User(ctx, "doomed", "u1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UserByLogin(ctx, "doomed", "alice")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UserByExternal(ctx, "doomed", "github", "1")
	wantErr(t, err, store.ErrNotFound)
	if users, n, err := s.Users(ctx, "doomed", "", 0, 10); err != nil || n != 0 || len(users) != 0 {
		t.Fatalf("users of a deleted domain: %v, %d, %v", subjects(users), n, err)
	}
	_, err = s.Client(ctx, "doomed", "app")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Policy(ctx, "doomed", "eng")
	wantErr(t, err, store.ErrNotFound)
	k, err := s.APIKey(ctx, "key-doomed")
	must(t, err)
	if k.RevokedAt.Before(before.Truncate(time.Microsecond)) || k.RevokedAt.After(time.Now()) {
		t.Fatalf("the deleted domain's API key has RevokedAt %s, want the deletion's instant", k.RevokedAt)
	}

	// The other domain and the global key are untouched.
	for _, id := range []string{"key-kept", "global"} {
		k, err := s.APIKey(ctx, id)
		must(t, err)
		if !k.RevokedAt.IsZero() {
			t.Fatalf("API key %s was revoked with another domain", id)
		}
	}
	if u, err := s.UserByExternal(ctx, "kept", "github", "1"); err != nil || u.Subject != "u1" {
		t.Fatalf("user of the kept domain: %+v, %v", u, err)
	}
	for _, err := range []error{
		func() error { _, err := s.Client(ctx, "kept", "app"); return err }(),
		func() error { _, err := s.Policy(ctx, "kept", "eng"); return err }(),
	} {
		must(t, err)
	}
	// The name is free again, and its usernames too.
	_, err = s.PutDomain(ctx, dirDomain("doomed"), store.Absent)
	must(t, err)
	u := dirUser("u2", "alice", "")
	u.Domain = "doomed"
	putUser(t, s, u, store.Absent)
}

// Users.

func testUserRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := dirUser("sub-1", "Alice", "Alice@Example.org")
	u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}, {Provider: "google", Subject: "a"}, {Provider: "google", Subject: "B"}}
	before := time.Now()
	got := putUser(t, s, u, store.Absent)
	stamped(t, "created user", got.Version, 1, got.CreatedAt, got.UpdatedAt, before, time.Now())
	// Identities come back sorted by provider, then subject.
	u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}, {Provider: "google", Subject: "B"}, {Provider: "google", Subject: "a"}}
	same(t, got, withMeta(u, got))
	read, err := s.User(ctx, "example", "sub-1")
	must(t, err)
	same(t, read, got)

	// The zero values: no username, e-mail, password, claims or identities;
	// inactive, unverified.
	bare := store.User{Domain: "example", Subject: "sub-2"}
	got = putUser(t, s, bare, store.Absent)
	same(t, got, withMeta(bare, got))
	read, err = s.User(ctx, "example", "sub-2")
	must(t, err)
	same(t, read, got)

	_, err = s.User(ctx, "example", "unknown")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.User(ctx, "other", "sub-1")
	wantErr(t, err, store.ErrNotFound)
}

func testUserByLogin(t *testing.T, s store.Store) {
	ctx := context.Background()
	putUser(t, s, dirUser("sub-1", "Alice", "Alice.Smith@Example.org"), store.Absent)
	putUser(t, s, dirUser("sub-2", "bob", ""), store.Absent)
	other := dirUser("sub-3", "carol", "carol@example.org")
	other.Domain = "other"
	putUser(t, s, other, store.Absent)
	for _, tc := range []struct{ login, want string }{
		{"Alice", "sub-1"},
		{"alice", "sub-1"},
		{"ALICE", "sub-1"},
		{"alice.smith@example.org", "sub-1"},
		{"ALICE.SMITH@EXAMPLE.ORG", "sub-1"},
		{"Bob", "sub-2"},
	} {
		u, err := s.UserByLogin(ctx, "example", tc.login)
		must(t, err)
		if u.Subject != tc.want {
			t.Errorf("UserByLogin(%q) = %s, want %s", tc.login, u.Subject, tc.want)
		}
	}
	u, err := s.UserByLogin(ctx, "example", "alice")
	must(t, err)
	read, err := s.User(ctx, "example", "sub-1")
	must(t, err)
	same(t, u, read)
	for _, login := range []string{"", "ali", "alice@example.org", "carol", "sub-1"} {
		_, err := s.UserByLogin(ctx, "example", login)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByLogin(%q): got %v, want ErrNotFound", login, err)
		}
	}
}

func testUserByExternal(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := dirUser("sub-1", "alice", "")
	u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}, {Provider: "google", Subject: "42"}}
	putUser(t, s, u, store.Absent)
	v := dirUser("sub-2", "bob", "")
	v.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "43"}}
	putUser(t, s, v, store.Absent)
	for _, tc := range []struct{ provider, subject, want string }{
		{"github", "42", "sub-1"},
		{"google", "42", "sub-1"},
		{"github", "43", "sub-2"},
	} {
		got, err := s.UserByExternal(ctx, "example", tc.provider, tc.subject)
		must(t, err)
		if got.Subject != tc.want || len(got.Identities) == 0 {
			t.Errorf("UserByExternal(%s, %s) = %s with %v, want %s", tc.provider, tc.subject, got.Subject, got.Identities, tc.want)
		}
	}
	for _, tc := range [][3]string{{"example", "google", "43"}, {"example", "GitHub", "42"}, {"other", "github", "42"}} {
		_, err := s.UserByExternal(ctx, tc[0], tc[1], tc[2])
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByExternal%v: got %v, want ErrNotFound", tc, err)
		}
	}
}

func testUserUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := dirUser("sub-1", "alice", "alice@example.org")
	alice.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}}
	putUser(t, s, alice, store.Absent)
	v := dirVersion(t, s)

	for _, tc := range []struct {
		name  string
		user  store.User
		field string
	}{
		{"the same subject", dirUser("sub-1", "someone", ""), store.FieldSubject},
		{"the username in another case", dirUser("sub-2", "ALICE", ""), store.FieldPreferredUsername},
		{"the e-mail in another case", dirUser("sub-2", "bob", "Alice@Example.ORG"), store.FieldEmail},
		{"a username that is another user's e-mail", dirUser("sub-2", "alice@example.org", ""), store.FieldPreferredUsername},
		{"an e-mail that is another user's username", dirUser("sub-2", "bob", "Alice"), store.FieldEmail},
		{"a linked external identity", func() store.User {
			u := dirUser("sub-2", "bob", "")
			u.Identities = []store.ExternalIdentity{{Provider: "google", Subject: "1"}, {Provider: "github", Subject: "42"}}
			return u
		}(), store.FieldExternalIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.PutUser(ctx, tc.user, store.Absent)
			wantConflict(t, err, tc.field)
			// Nothing of the refused user was stored.
			if tc.user.Subject != "sub-1" {
				_, err = s.User(ctx, "example", tc.user.Subject)
				wantErr(t, err, store.ErrNotFound)
			}
			_, err = s.UserByLogin(ctx, "example", "bob")
			wantErr(t, err, store.ErrNotFound)
			_, err = s.UserByExternal(ctx, "example", "google", "1")
			wantErr(t, err, store.ErrNotFound)
			if now := dirVersion(t, s); now != v {
				t.Fatalf("a refused write moved the directory version from %d to %d", v, now)
			}
		})
	}
	// An update colliding with another user is refused too, leaving it as it was.
	bob := putUser(t, s, dirUser("sub-2", "bob", "bob@example.org"), store.Absent)
	clash := bob
	clash.Email = "ALICE@example.org"
	_, err := s.PutUser(ctx, clash, bob.Version)
	wantConflict(t, err, store.FieldEmail)
	read, err := s.User(ctx, "example", "sub-2")
	must(t, err)
	same(t, read, bob)

	// Allowed: a user's own username as its e-mail, and the same names in
	// another domain.
	same1 := dirUser("sub-3", "carol@example.org", "Carol@Example.org")
	putUser(t, s, same1, store.Absent)
	if u, err := s.UserByLogin(ctx, "example", "carol@example.org"); err != nil || u.Subject != "sub-3" {
		t.Fatalf("a user whose username is its e-mail: %+v, %v", u, err)
	}
	elsewhere := alice
	elsewhere.Domain = "other"
	putUser(t, s, elsewhere, store.Absent)
}

func testUserUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := dirUser("sub-1", "alice", "alice@example.org")
	u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}}
	v1 := putUser(t, s, u, store.Absent)

	u.PreferredUsername, u.Email, u.Active, u.PasswordHash, u.Claims = "alicia", "alicia@example.org", false, "", nil
	u.Identities = []store.ExternalIdentity{{Provider: "google", Subject: "7"}}
	before := time.Now()
	v2 := putUser(t, s, u, v1.Version)
	stamped(t, "updated user", v2.Version, 2, v2.CreatedAt, v2.UpdatedAt, before, time.Now())
	if !v2.CreatedAt.Equal(v1.CreatedAt) {
		t.Errorf("an update changed CreatedAt")
	}
	same(t, v2, withMeta(u, v2))
	for _, login := range []string{"alicia", "ALICIA@example.org"} {
		got, err := s.UserByLogin(ctx, "example", login)
		must(t, err)
		same(t, got, v2)
	}
	for _, login := range []string{"alice", "alice@example.org"} {
		_, err := s.UserByLogin(ctx, "example", login)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err := s.UserByExternal(ctx, "example", "github", "42")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UserByExternal(ctx, "example", "google", "7")
	must(t, err)
	// What the user gave up is free for another.
	other := dirUser("sub-2", "alice", "alice@example.org")
	other.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}}
	putUser(t, s, other, store.Absent)
}

func testUserVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	v1 := putUser(t, s, dirUser("sub-1", "alice", ""), store.Absent)
	u := v1
	u.Name = "first writer"
	v2 := putUser(t, s, u, v1.Version)
	u.Name = "second writer, who read version 1"
	_, err := s.PutUser(ctx, u, v1.Version)
	wantErr(t, err, store.ErrStale)
	read, err := s.User(ctx, "example", "sub-1")
	must(t, err)
	same(t, read, v2)

	_, err = s.PutUser(ctx, dirUser("unknown", "x", ""), 1)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.User(ctx, "example", "unknown")
	wantErr(t, err, store.ErrNotFound)

	wantErr(t, s.DeleteUser(ctx, "example", "sub-1", v1.Version), store.ErrStale)
	_, err = s.User(ctx, "example", "sub-1")
	must(t, err)
	wantErr(t, s.DeleteUser(ctx, "example", "unknown", store.AnyVersion), store.ErrNotFound)
	must(t, s.DeleteUser(ctx, "example", "sub-1", v2.Version))
	_, err = s.User(ctx, "example", "sub-1")
	wantErr(t, err, store.ErrNotFound)
}

func testUsersSearch(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := dirUser("s1", "alice", "alice@example.org")
	alice.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}}
	for _, u := range []store.User{
		dirUser("s3", "Bob", "bob@example.com"),
		dirUser("s5", "eve%1", "eve@EXAMPLE.org"),
		alice,
		dirUser("s4", "dave", ""),
		dirUser("s2", "carol_x", "carol@example.org"),
		dirUser("s6", "", "frank@example.net"), // no username: sorts first
	} {
		putUser(t, s, u, store.Absent)
	}
	elsewhere := dirUser("s9", "alice", "alice@example.org")
	elsewhere.Domain = "other"
	putUser(t, s, elsewhere, store.Absent)

	for _, tc := range []struct {
		search        string
		offset, limit int
		want          string
		total         int
	}{
		{"", 0, 100, "[s6 s1 s3 s2 s4 s5]", 6},
		{"", 2, 2, "[s3 s2]", 6},
		{"", 5, 2, "[s5]", 6},
		{"", 6, 2, "[]", 6},
		{"", 0, 0, "[]", 6},
		{"EXAMPLE.ORG", 0, 100, "[s1 s2 s5]", 3},
		{"EXAMPLE.ORG", 1, 1, "[s2]", 3},
		{"b", 0, 100, "[s3]", 1},
		{"_", 0, 100, "[s2]", 1}, // a literal underscore, not a wildcard
		{"%", 0, 100, "[s5]", 1}, // a literal percent sign
		{"net", 0, 100, "[s6]", 1},
		{"zzz", 0, 100, "[]", 0},
	} {
		users, total, err := s.Users(ctx, "example", tc.search, tc.offset, tc.limit)
		must(t, err)
		if got := fmt.Sprint(subjects(users)); got != tc.want || total != tc.total {
			t.Errorf("Users(%q, %d, %d) = %s of %d, want %s of %d", tc.search, tc.offset, tc.limit, got, total, tc.want, tc.total)
		}
	}
	// Listed users are whole records, identities included.
	users, _, err := s.Users(ctx, "example", "alice", 0, 10)
	must(t, err)
	read, err := s.User(ctx, "example", "s1")
	must(t, err)
	if len(users) != 1 {
		t.Fatalf("search alice: %v", subjects(users))
	}
	same(t, users[0], read)
	if _, _, err := s.Users(ctx, "example", "", -1, 10); err == nil {
		t.Error("a negative offset was accepted")
	}
}

func testUserDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := dirUser("sub-1", "alice", "alice@example.org")
	u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "42"}}
	putUser(t, s, u, store.Absent)
	putUser(t, s, dirUser("sub-2", "bob", ""), store.Absent)
	must(t, s.DeleteUser(ctx, "example", "sub-1", store.AnyVersion))
	_, err := s.User(ctx, "example", "sub-1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UserByLogin(ctx, "example", "alice@example.org")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UserByExternal(ctx, "example", "github", "42")
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.User(ctx, "example", "sub-2"); err != nil {
		t.Fatalf("deleting one user removed another: %v", err)
	}
	// Everything it held is free again, for a new subject.
	u.Subject = "sub-3"
	putUser(t, s, u, store.Absent)
}

func testUserCreateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	warm(s)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		name := "alice"
		if i%2 == 1 {
			name = "ALICE"
		}
		_, errs[i] = s.PutUser(ctx, dirUser(fmt.Sprintf("sub-%02d", i), name, ""), store.Absent)
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case errors.Is(err, store.ErrConflict):
			wantConflict(t, err, store.FieldPreferredUsername)
		default:
			t.Fatalf("creator %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d creators of username alice won, want exactly 1", winners)
	}
	users, total, err := s.Users(ctx, "example", "", 0, 100)
	must(t, err)
	if total != 1 || len(users) != 1 {
		t.Fatalf("after the race: %v (total %d), want one user", subjects(users), total)
	}
}

func testUserUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	v1 := putUser(t, s, dirUser("sub-1", "alice", ""), store.Absent)
	warm(s)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		u := v1
		u.Name = fmt.Sprintf("writer %02d", i)
		_, errs[i] = s.PutUser(ctx, u, v1.Version)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrStale):
		default:
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	got, err := s.User(ctx, "example", "sub-1")
	must(t, err)
	if want := fmt.Sprintf("writer %02d", winner); got.Name != want || got.Version != 2 {
		t.Fatalf("after the race: name %q version %d, want %q version 2", got.Name, got.Version, want)
	}
}

// Clients and policies.

func testClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := time.Now()
	b := dirClient("b-app")
	got, err := s.PutClient(ctx, b, store.Absent)
	must(t, err)
	stamped(t, "created client", got.Version, 1, got.CreatedAt, got.UpdatedAt, before, time.Now())
	same(t, got, withMeta(b, got))
	a := store.Client{Domain: "example", ID: "a-app"} // public, no data
	_, err = s.PutClient(ctx, a, store.Absent)
	must(t, err)
	elsewhere := dirClient("c-app")
	elsewhere.Domain = "other"
	_, err = s.PutClient(ctx, elsewhere, store.Absent)
	must(t, err)

	list, err := s.Clients(ctx, "example")
	must(t, err)
	if len(list) != 2 || list[0].ID != "a-app" || list[1].ID != "b-app" {
		t.Fatalf("Clients = %+v, want a-app, b-app", list)
	}
	same(t, list[0], withMeta(a, list[0]))
	same(t, list[1], got)
	_, err = s.PutClient(ctx, dirClient("b-app"), store.Absent)
	wantConflict(t, err, store.FieldID)

	changed := b
	changed.SecretHash = "sha256:rotated"
	changed.Data = json.RawMessage(`{"clientType":"public"}`)
	v2, err := s.PutClient(ctx, changed, got.Version)
	must(t, err)
	if v2.Version != 2 || !v2.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("updated client: version %d, created %s (was %s)", v2.Version, v2.CreatedAt, got.CreatedAt)
	}
	same(t, v2, withMeta(changed, v2))
	_, err = s.PutClient(ctx, b, got.Version)
	wantErr(t, err, store.ErrStale)
	read, err := s.Client(ctx, "example", "b-app")
	must(t, err)
	same(t, read, v2)

	wantErr(t, s.DeleteClient(ctx, "example", "b-app", 1), store.ErrStale)
	must(t, s.DeleteClient(ctx, "example", "b-app", 2))
	_, err = s.Client(ctx, "example", "b-app")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteClient(ctx, "example", "b-app", store.AnyVersion), store.ErrNotFound)
	_, err = s.Client(ctx, "other", "c-app")
	must(t, err)
	list, err = s.Clients(ctx, "nobody")
	if err != nil || len(list) != 0 {
		t.Fatalf("clients of an unknown domain: %+v, %v", list, err)
	}
}

func testClientCreateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	warm(s)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		c := dirClient("app")
		c.SecretHash = fmt.Sprint("hash-", i)
		_, errs[i] = s.PutClient(ctx, c, store.Absent)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("creators %d and %d both won", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrConflict):
		default:
			t.Fatalf("creator %d: %v", i, err)
		}
	}
	got, err := s.Client(ctx, "example", "app")
	must(t, err)
	if winner < 0 || got.SecretHash != fmt.Sprint("hash-", winner) || got.Version != 1 {
		t.Fatalf("after the race: %+v, winner %d", got, winner)
	}
}

func testPolicies(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := time.Now()
	p := dirPolicy("eng")
	got, err := s.PutPolicy(ctx, p, store.Absent)
	must(t, err)
	stamped(t, "created policy", got.Version, 1, got.CreatedAt, got.UpdatedAt, before, time.Now())
	same(t, got, withMeta(p, got))
	_, err = s.PutPolicy(ctx, dirPolicy("admins"), store.Absent)
	must(t, err)
	list, err := s.Policies(ctx, "example")
	must(t, err)
	if len(list) != 2 || list[0].ID != "admins" || list[1].ID != "eng" {
		t.Fatalf("Policies = %+v, want admins, eng", list)
	}
	same(t, list[1], got)
	_, err = s.PutPolicy(ctx, dirPolicy("eng"), store.Absent)
	wantConflict(t, err, store.FieldID)

	changed := p
	changed.Source = json.RawMessage(`{"version":1,"rules":[]}`)
	v2, err := s.PutPolicy(ctx, changed, 1)
	must(t, err)
	same(t, v2, withMeta(changed, v2))
	_, err = s.PutPolicy(ctx, p, 1)
	wantErr(t, err, store.ErrStale)
	read, err := s.Policy(ctx, "example", "eng")
	must(t, err)
	same(t, read, v2)
	wantErr(t, s.DeletePolicy(ctx, "example", "eng", 1), store.ErrStale)
	must(t, s.DeletePolicy(ctx, "example", "eng", store.AnyVersion))
	_, err = s.Policy(ctx, "example", "eng")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Policy(ctx, "example", "admins")
	must(t, err)
}

func testDirectoryValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := dirVersion(t, s)
	notJSON := json.RawMessage(`{"unterminated": `)
	for _, tc := range []struct {
		name  string
		write func() error
	}{
		{"domain without a name", func() error { _, err := s.PutDomain(ctx, store.Domain{Issuer: "https://x"}, store.Absent); return err }},
		{"domain settings that are not JSON", func() error {
			d := dirDomain("d")
			d.Settings = notJSON
			_, err := s.PutDomain(ctx, d, store.Absent)
			return err
		}},
		{"user without a subject", func() error { _, err := s.PutUser(ctx, dirUser("", "alice", ""), store.Absent); return err }},
		{"user without a domain", func() error {
			u := dirUser("sub", "alice", "")
			u.Domain = ""
			_, err := s.PutUser(ctx, u, store.Absent)
			return err
		}},
		{"user claims that are not JSON", func() error {
			u := dirUser("sub", "alice", "")
			u.Claims = notJSON
			_, err := s.PutUser(ctx, u, store.Absent)
			return err
		}},
		{"user listing one external identity twice", func() error {
			u := dirUser("sub", "alice", "")
			u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: "1"}, {Provider: "github", Subject: "1"}}
			_, err := s.PutUser(ctx, u, store.Absent)
			return err
		}},
		{"user with an external identity without a provider", func() error {
			u := dirUser("sub", "alice", "")
			u.Identities = []store.ExternalIdentity{{Subject: "1"}}
			_, err := s.PutUser(ctx, u, store.Absent)
			return err
		}},
		{"client without an ID", func() error { _, err := s.PutClient(ctx, dirClient(""), store.Absent); return err }},
		{"client data that is not JSON", func() error {
			c := dirClient("app")
			c.Data = notJSON
			_, err := s.PutClient(ctx, c, store.Absent)
			return err
		}},
		{"policy without an ID", func() error { _, err := s.PutPolicy(ctx, dirPolicy(""), store.Absent); return err }},
		{"policy source that is not JSON", func() error {
			p := dirPolicy("eng")
			p.Source = notJSON
			_, err := s.PutPolicy(ctx, p, store.Absent)
			return err
		}},
		{"expected version below AnyVersion", func() error { _, err := s.PutUser(ctx, dirUser("sub", "alice", ""), -2); return err }},
		{"delete expecting an absent row", func() error { return s.DeleteUser(ctx, "example", "sub", store.Absent) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if now := dirVersion(t, s); now != v {
		t.Fatalf("refused writes moved the directory version from %d to %d", v, now)
	}
	if users, n, err := s.Users(ctx, "example", "", 0, 10); err != nil || n != 0 {
		t.Fatalf("refused writes stored users: %v %d %v", subjects(users), n, err)
	}
	for _, err := range []error{
		func() error { _, err := s.Domain(ctx, "d"); return err }(),
		func() error { _, err := s.Client(ctx, "example", "app"); return err }(),
		func() error { _, err := s.Policy(ctx, "example", "eng"); return err }(),
	} {
		wantErr(t, err, store.ErrNotFound)
	}
}
