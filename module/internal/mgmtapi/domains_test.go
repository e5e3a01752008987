package mgmtapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

func testConfig() *Config {
	return NewConfig(ConfigDomain{
		Name: "corp", Issuer: "https://auth.example.com/corp", SigningAlgorithm: "ES256",
		Users: []*identity.User{{Subject: "u-alice", PreferredUsername: "alice", Name: "Alice", Email: "alice@example.com", Active: true,
			Claims: []identity.CustomClaim{{Name: "groups", Value: []string{"admins"}, In: identity.ClaimAccess}}}},
		Clients: []*identity.Client{{ID: "portal", Type: identity.Public, GrantTypes: []string{identity.GrantAuthorizationCode},
			RedirectURIs: []string{"https://portal.example.com/cb"}, AllowLocalLogin: true, Policies: []string{"staff"}}},
	}, ConfigDomain{Name: "", Issuer: "https://auth.example.com"})
}

func TestDomainsCRUD(t *testing.T) {
	f := newFixture(t, withConfig(testConfig()))
	before := f.changed.Load()
	r := f.do(req{method: "POST", path: "/v1/domain", body: map[string]any{"name": "acme", "issuer": "https://auth.example.com/acme", "signingAlgorithm": "EdDSA", "sessionLifetime": 3600}})
	r.must(t, 201)
	var d Domain
	r.json(t, &d)
	if d.Name != "acme" || d.Issuer != "https://auth.example.com/acme" || d.Managed != "api" || d.SigningAlgorithm != "EdDSA" || d.SessionLifetime != 3600 || d.KeyRotation != int64(defaultKeyRotation/time.Second) {
		t.Fatalf("created %+v", d)
	}
	etag := r.header.Get("ETag")
	if etag == "" || r.header.Get("Location") != "/v1/domain/acme" || f.changed.Load() != before+1 {
		t.Fatalf("ETag %q, Location %q, changed %d", etag, r.header.Get("Location"), f.changed.Load()-before)
	}
	// As the directory reads it: Go durations.
	row, _ := f.st.Domain(context.Background(), "acme")
	if got := string(row.Settings); !strings.Contains(got, `"sessionLifetime":"1h0m0s"`) || !strings.Contains(got, `"signingAlgorithm":"EdDSA"`) {
		t.Fatalf("stored settings %s", got)
	}

	// The list: configured (the unnamed one as "default") and stored.
	var list List[Domain]
	f.get("/v1/domain").must(t, 200).json(t, &list)
	var names []string
	for _, d := range list.Items {
		names = append(names, d.Name+"/"+d.Managed)
	}
	if strings.Join(names, " ") != "acme/api corp/config default/config" {
		t.Fatalf("domains %v", names)
	}

	// PATCH with a stale ETag changes nothing; with the right one it applies.
	v := f.directoryVersion()
	f.do(req{method: "PATCH", path: "/v1/domain/acme", body: map[string]any{"sessionLifetime": 7200}, header: map[string]string{"If-Match": `"v9.x"`}}).problem(t, 412, TypeStaleETag)
	if f.directoryVersion() != v {
		t.Fatal("a stale PATCH wrote")
	}
	r = f.do(req{method: "PATCH", path: "/v1/domain/acme", body: map[string]any{"sessionLifetime": 7200}, header: map[string]string{"If-Match": etag}})
	r.must(t, 200).json(t, &d)
	if d.SessionLifetime != 7200 || d.SigningAlgorithm != "EdDSA" || r.header.Get("ETag") == etag {
		t.Fatalf("patched %+v, ETag %q", d, r.header.Get("ETag"))
	}
	// The old ETag is stale now.
	f.do(req{method: "DELETE", path: "/v1/domain/acme", header: map[string]string{"If-Match": etag}}).problem(t, 412, TypeStaleETag)

	// Errors, each changing nothing.
	v = f.directoryVersion()
	cases := []struct {
		body   any
		status int
		typ    string
		field  string
	}{
		{map[string]any{"name": "Bad Name", "issuer": "https://x.example.com"}, 400, TypeInvalidField, "name"},
		{map[string]any{"name": "b", "issuer": "http://x.example.com"}, 400, TypeInvalidField, "issuer"},
		{map[string]any{"name": "b", "issuer": "https://x.example.com", "signingAlgorithm": "HS256"}, 400, TypeInvalidField, "signingAlgorithm"},
		{map[string]any{"name": "b", "issuer": "https://x.example.com", "sessionLifetime": 1}, 400, TypeInvalidField, "sessionLifetime"},
		{map[string]any{"name": "b", "issuer": "https://auth.example.com/acme"}, 409, TypeConflict, "issuer"},
		{map[string]any{"name": "b", "issuer": "https://auth.example.com/corp"}, 409, TypeConflict, "issuer"},
		{map[string]any{"name": "acme", "issuer": "https://other.example.com"}, 409, TypeConflict, "name"},
		{map[string]any{"name": "corp", "issuer": "https://other.example.com"}, 403, TypeManagedByConfig, ""},
		{map[string]any{"name": "default", "issuer": "https://other.example.com"}, 403, TypeManagedByConfig, ""},
		{map[string]any{"name": "b", "issuer": "https://x.example.com", "extra": 1}, 400, TypeInvalidBody, "extra"},
		{`{"name": "b", "name": "c", "issuer": "https://x.example.com"}`, 400, TypeInvalidBody, "name"},
		{`{"name": "b", "issuer": 5}`, 400, TypeInvalidBody, "issuer"},
		{`{"name": "b"`, 400, TypeInvalidBody, ""},
		{`{"name": "b", "issuer": "https://x.example.com"} {}`, 400, TypeInvalidBody, ""},
		{`[]`, 400, TypeInvalidBody, ""},
	}
	for _, c := range cases {
		r := f.do(req{method: "POST", path: "/v1/domain", body: c.body, ctype: "application/json"})
		p := r.problem(t, c.status, c.typ)
		if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
			t.Errorf("%v: errors %+v, want field %s", c.body, p.Errors, c.field)
		}
	}
	f.do(req{method: "POST", path: "/v1/domain", body: `{"name":"b","issuer":"https://x.example.com"}`, ctype: "text/plain"}).problem(t, 415, TypeUnsupportedMediaType)
	f.do(req{method: "POST", path: "/v1/domain", body: `{"name":"b","issuer":"https://x.example.com"}`}).problem(t, 415, TypeUnsupportedMediaType)
	f.do(req{method: "POST", path: "/v1/domain", body: `{"name":"` + strings.Repeat("b", DefaultMaxBody) + `"}`, ctype: "application/json"}).problem(t, 413, TypePayloadTooLarge)
	if f.directoryVersion() != v {
		t.Fatal("a refused create wrote")
	}

	// Configured domains are readable, never writable.
	var cd Domain
	r = f.get("/v1/domain/corp").must(t, 200)
	r.json(t, &cd)
	if cd.Managed != "config" || cd.SigningAlgorithm != "ES256" || !strings.HasPrefix(r.header.Get("ETag"), `"c`) {
		t.Fatalf("config domain %+v ETag %q", cd, r.header.Get("ETag"))
	}
	f.do(req{method: "PATCH", path: "/v1/domain/corp", body: map[string]any{"sessionLifetime": 7200}}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "DELETE", path: "/v1/domain/corp"}).problem(t, 403, TypeManagedByConfig)
	f.get("/v1/domain/default").must(t, 200)
	f.get("/v1/domain/nope").problem(t, 404, TypeNotFound)

	// Delete: 202, and it is gone with everything in it.
	f.createUser("acme", map[string]any{"preferredUsername": "bob", "name": "Bob"})
	var del Deleted
	f.do(req{method: "DELETE", path: "/v1/domain/acme"}).must(t, 202).json(t, &del)
	if !del.Deleted || del.ID != "acme" || del.Kind != "domain" {
		t.Fatalf("deleted %+v", del)
	}
	f.get("/v1/domain/acme").problem(t, 404, TypeNotFound)
	if users, n, _ := f.st.Users(context.Background(), "acme", "", 0, 10); n != 0 || len(users) != 0 {
		t.Fatal("the domain's users survived it")
	}
}

func TestDomainDeleteEndsEverything(t *testing.T) {
	f := newFixture(t)
	f.createDomain("acme")
	u := f.createUser("acme", map[string]any{"preferredUsername": "bob", "name": "Bob"})
	ctx := context.Background()
	// Bob holds a session, a refresh-token family and a grant under the
	// session; a client holds a client_credentials family.
	now := f.now
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.st.CreateSession(ctx, store.Session{ID: "s1", Domain: "acme", Subject: u.Sub, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(f.st.CreateRefreshToken(ctx, store.RefreshToken{ID: "rt1", FamilyID: "fam-rt", Domain: "acme", ClientID: "web", Subject: u.Sub, CreatedAt: now, ExpiresAt: now.Add(48 * time.Hour)}))
	must(f.st.AddSessionGrant(ctx, store.SessionGrant{SessionID: "s1", FamilyID: "fam-sess", ClientID: "spa", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(f.st.CreateRefreshToken(ctx, store.RefreshToken{ID: "rt2", FamilyID: "fam-client", Domain: "acme", ClientID: "svc", Subject: "svc", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	if _, err := f.st.PutClient(ctx, store.Client{Domain: "acme", ID: "svc", Data: []byte(`{}`)}, store.Absent); err != nil {
		t.Fatal(err)
	}

	var del Deleted
	f.do(req{method: "DELETE", path: "/v1/domain/acme"}).must(t, 202).json(t, &del)
	if del.EndedSessions != 1 || del.RevokedFamilies != 3 {
		t.Fatalf("deleted %+v", del)
	}
	for _, fam := range []string{"fam-rt", "fam-sess", "fam-client"} {
		if ok, _ := f.st.Revoked(ctx, fam); !ok {
			t.Errorf("family %s is not revoked", fam)
		}
	}
	if _, err := f.st.Session(ctx, "s1", now); err == nil {
		t.Error("the session survived")
	}
}
