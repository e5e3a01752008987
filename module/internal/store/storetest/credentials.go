package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// credentialTests are the cases of API keys and of what issue-time cleanup
// needs (token families of a subject or client, a subject's sessions), run
// by Run.
var credentialTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"API key round-trips and is found by ID and by hash", testAPIKeyRoundTrip},
	{"API key with a taken ID or hash is a conflict that names it", testAPIKeyConflict},
	{"API keys are listed all or per domain, oldest first", testAPIKeysListed},
	{"revoking an API key keeps the first revocation", testAPIKeyRevoke},
	{"touching an API key records its use at most once per interval", testAPIKeyTouch},
	{"token families of a subject and of a client come from refresh tokens and session grants", testFamilies},
	{"deleting a subject's sessions returns their IDs and leaves their grants listed", testDeleteSubjectSessions},
}

func apiKey(id, domain string) store.APIKey {
	return store.APIKey{
		ID:        id,
		Name:      "key " + id,
		Hash:      store.HashID("gh_key_" + id),
		Domain:    domain,
		ReadOnly:  true,
		CreatedBy: "cli",
		CreatedAt: base,
		ExpiresAt: base.Add(180 * 24 * time.Hour),
	}
}

func keyIDs(keys []store.APIKey) string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return fmt.Sprint(ids)
}

func testAPIKeyRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := apiKey("k1", "example")
	k.LastUsedAt = base.Add(time.Minute)
	must(t, s.CreateAPIKey(ctx, k))
	got, err := s.APIKey(ctx, "k1")
	must(t, err)
	same(t, got, k)
	got, err = s.APIKeyByHash(ctx, k.Hash)
	must(t, err)
	same(t, got, k)

	// A global, read-write key that never expires.
	g := store.APIKey{ID: "k2", Hash: "h2", CreatedAt: base}
	must(t, s.CreateAPIKey(ctx, g))
	got, err = s.APIKeyByHash(ctx, "h2")
	must(t, err)
	same(t, got, g)

	for _, hash := range []string{"", "unknown", store.HashID("k1")} {
		_, err := s.APIKeyByHash(ctx, hash)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.APIKey(ctx, "unknown")
	wantErr(t, err, store.ErrNotFound)
	for _, bad := range []store.APIKey{{Hash: "h3"}, {ID: "k3"}} {
		if err := s.CreateAPIKey(ctx, bad); err == nil {
			t.Errorf("API key %+v without an ID or hash was accepted", bad)
		}
	}
}

func testAPIKeyConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := apiKey("k1", "")
	must(t, s.CreateAPIKey(ctx, k))
	sameID := apiKey("k1", "")
	sameID.Hash = "other-hash"
	wantConflict(t, s.CreateAPIKey(ctx, sameID), store.FieldID)
	sameHash := apiKey("k2", "")
	sameHash.Hash = k.Hash
	wantConflict(t, s.CreateAPIKey(ctx, sameHash), store.FieldHash)
	_, err := s.APIKey(ctx, "k2")
	wantErr(t, err, store.ErrNotFound)
	got, err := s.APIKeyByHash(ctx, k.Hash)
	must(t, err)
	same(t, got, k)
}

func testAPIKeysListed(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, tc := range []struct{ id, domain string }{
		{"b", "example"}, {"a", "example"}, {"g2", ""}, {"o", "other"}, {"g1", ""}, {"c", "example"},
	} {
		k := apiKey(tc.id, tc.domain)
		k.CreatedAt = base.Add(time.Duration(i%3) * time.Second) // ties, ordered by ID
		must(t, s.CreateAPIKey(ctx, k))
	}
	// CreatedAt: b, o +0s; a, g1 +1s; g2, c +2s.
	all, err := s.APIKeys(ctx)
	must(t, err)
	if got := keyIDs(all); got != "[b o a g1 c g2]" {
		t.Fatalf("APIKeys = %s, want [b o a g1 c g2]", got)
	}
	for _, tc := range []struct{ domain, want string }{
		{"example", "[b a c]"}, {"", "[g1 g2]"}, {"other", "[o]"}, {"nobody", "[]"},
	} {
		got, err := s.DomainAPIKeys(ctx, tc.domain)
		must(t, err)
		if keyIDs(got) != tc.want {
			t.Errorf("DomainAPIKeys(%q) = %s, want %s", tc.domain, keyIDs(got), tc.want)
		}
	}
	// Expired or not, keys stay: DeleteExpired leaves them.
	must(t, s.DeleteExpired(ctx, base.Add(365*24*time.Hour)))
	all, err = s.APIKeys(ctx)
	must(t, err)
	if len(all) != 6 {
		t.Fatalf("after DeleteExpired: %s", keyIDs(all))
	}
}

func testAPIKeyRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := apiKey("k1", "example")
	must(t, s.CreateAPIKey(ctx, k))
	must(t, s.CreateAPIKey(ctx, apiKey("k2", "example")))
	at := base.Add(time.Hour)
	got, err := s.RevokeAPIKey(ctx, "k1", at)
	must(t, err)
	k.RevokedAt = at
	same(t, got, k)
	again, err := s.RevokeAPIKey(ctx, "k1", at.Add(time.Hour))
	must(t, err)
	same(t, again, k)
	read, err := s.APIKeyByHash(ctx, k.Hash)
	must(t, err)
	same(t, read, k)
	other, err := s.APIKey(ctx, "k2")
	must(t, err)
	if !other.RevokedAt.IsZero() {
		t.Fatal("revoking one key revoked another")
	}
	_, err = s.RevokeAPIKey(ctx, "unknown", at)
	wantErr(t, err, store.ErrNotFound)
}

func testAPIKeyTouch(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateAPIKey(ctx, apiKey("k1", "")))
	lastUsed := func() time.Time {
		t.Helper()
		k, err := s.APIKey(ctx, "k1")
		must(t, err)
		return k.LastUsedAt
	}
	t0 := base.Add(time.Hour)
	for _, tc := range []struct {
		at, want time.Time
	}{
		{t0, t0},                       // first use
		{t0.Add(30 * time.Second), t0}, // within the interval: not written
		{t0.Add(store.APIKeyTouchInterval - time.Microsecond), t0},             // still within
		{t0.Add(store.APIKeyTouchInterval), t0.Add(store.APIKeyTouchInterval)}, // a whole interval later
		{t0, t0.Add(store.APIKeyTouchInterval)},                                // an earlier instant never goes back
		{t0.Add(3 * store.APIKeyTouchInterval), t0.Add(3 * store.APIKeyTouchInterval)},
	} {
		must(t, s.TouchAPIKey(ctx, "k1", tc.at))
		if msg := timeDiff(lastUsed(), tc.want); msg != "" {
			t.Fatalf("after touching at %s: LastUsedAt %s", tc.at.UTC(), msg)
		}
	}
	must(t, s.TouchAPIKey(ctx, "unknown", t0))
}

func testFamilies(t *testing.T, s store.Store) {
	ctx := context.Background()
	sess := func(name, domain, subject string) store.Session {
		se := session(name)
		se.Domain, se.Subject = domain, subject
		must(t, s.CreateSession(ctx, se))
		return se
	}
	a := sess("a", "example", "user-1")
	sess("b", "example", "user-2")
	sess("c", "other", "user-1")
	for _, g := range []store.SessionGrant{
		grant("a", "fam-1", "client-a", base),
		grant("a", "fam-2", "client-b", base),
		grant("b", "fam-3", "client-a", base),
		grant("c", "fam-4", "client-a", base),
	} {
		must(t, s.AddSessionGrant(ctx, g))
	}
	rt := refresh("rt-1", "fam-1") // user-1, client-a, example; outlives its grant
	must(t, s.CreateRefreshToken(ctx, rt))
	short := refresh("rt-6", "fam-6") // a refresh token without a session grant
	short.ExpiresAt = base.Add(time.Minute)
	must(t, s.CreateRefreshToken(ctx, short))
	must(t, s.Revoke(ctx, "fam-2", base.Add(48*time.Hour)))
	// The sessions end; their grants still count.
	must(t, s.DeleteSession(ctx, a.ID))

	fams := func(got []store.Family) string {
		out := "["
		for i, f := range got {
			if i > 0 {
				out += " "
			}
			out += fmt.Sprintf("%s/%s/%s", f.ID, f.ClientID, f.Subject)
		}
		return out + "]"
	}
	for _, tc := range []struct {
		name string
		list func(now time.Time) ([]store.Family, error)
		at   time.Time
		want string
	}{
		{"subject", func(now time.Time) ([]store.Family, error) { return s.SubjectFamilies(ctx, "example", "user-1", now) }, base,
			"[fam-1/client-a/user-1 fam-6/client-a/user-1]"},
		{"subject after a refresh token expired", func(now time.Time) ([]store.Family, error) {
			return s.SubjectFamilies(ctx, "example", "user-1", now)
		}, short.ExpiresAt, "[fam-1/client-a/user-1]"},
		{"subject in another domain", func(now time.Time) ([]store.Family, error) { return s.SubjectFamilies(ctx, "other", "user-1", now) }, base,
			"[fam-4/client-a/user-1]"},
		{"client", func(now time.Time) ([]store.Family, error) { return s.ClientFamilies(ctx, "example", "client-a", now) }, base,
			"[fam-1/client-a/user-1 fam-3/client-a/user-2 fam-6/client-a/user-1]"},
		{"client with only a revoked family", func(now time.Time) ([]store.Family, error) {
			return s.ClientFamilies(ctx, "example", "client-b", now)
		}, base, "[]"},
		{"unknown subject", func(now time.Time) ([]store.Family, error) { return s.SubjectFamilies(ctx, "example", "nobody", now) }, base, "[]"},
		{"after every expiry", func(now time.Time) ([]store.Family, error) { return s.SubjectFamilies(ctx, "example", "user-1", now) },
			rt.ExpiresAt, "[]"},
	} {
		got, err := tc.list(tc.at)
		must(t, err)
		if fams(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, fams(got), tc.want)
		}
	}
	// A family's expiry is the latest of its records'.
	got, err := s.SubjectFamilies(ctx, "example", "user-1", base)
	must(t, err)
	if msg := timeDiff(got[0].ExpiresAt, rt.ExpiresAt); msg != "" {
		t.Errorf("fam-1 expires %s", msg)
	}
	if msg := timeDiff(got[1].ExpiresAt, short.ExpiresAt); msg != "" {
		t.Errorf("fam-6 expires %s", msg)
	}
}

func testDeleteSubjectSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	var mine []string
	for _, tc := range []struct{ name, domain, subject string }{
		{"s1", "example", "user-1"}, {"s2", "example", "user-1"}, {"s3", "example", "user-2"}, {"s4", "other", "user-1"},
	} {
		se := session(tc.name)
		se.Domain, se.Subject = tc.domain, tc.subject
		must(t, s.CreateSession(ctx, se))
		must(t, s.AddSessionGrant(ctx, grant(tc.name, "fam-"+tc.name, "client-a", base)))
		if tc.domain == "example" && tc.subject == "user-1" {
			mine = append(mine, se.ID)
		}
	}
	if mine[0] > mine[1] {
		mine[0], mine[1] = mine[1], mine[0]
	}
	ids, err := s.DeleteSubjectSessions(ctx, "example", "user-1")
	must(t, err)
	if fmt.Sprint(ids) != fmt.Sprint(mine) {
		t.Fatalf("DeleteSubjectSessions = %v, want %v", ids, mine)
	}
	for _, id := range ids {
		_, err := s.Session(ctx, id, base)
		wantErr(t, err, store.ErrNotFound)
		grants, err := s.SessionGrants(ctx, id, base)
		must(t, err)
		if len(grants) != 1 {
			t.Fatalf("grants of a deleted session: %+v, want its one grant", grants)
		}
	}
	for _, name := range []string{"s3", "s4"} {
		_, err := s.Session(ctx, store.HashID(name), base)
		must(t, err)
	}
	ids, err = s.DeleteSubjectSessions(ctx, "example", "user-1")
	if err != nil || len(ids) != 0 {
		t.Fatalf("deleting again: %v, %v; want none", ids, err)
	}
}
