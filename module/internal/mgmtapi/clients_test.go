package mgmtapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

func webClient() map[string]any {
	return map[string]any{
		"clientType": "Confidential", "grantType": "AuthorizationCode", "scope": "orders:read orders:write",
		"audiences": []string{"orders-api"}, "redirectUris": []string{"https://app.example.com/cb", "http://127.0.0.1:8080/cb"},
		"postSignOutRedirectUris": []string{"https://app.example.com/bye"}, "allowedOrigins": []string{"https://app.example.com"},
		"accessTokenExpiry": 600, "refreshTokenExpiry": 86400,
	}
}

// storedSnapshot reads the domain as the issuer will: through
// directory.Stored over the same store.
func (f *fixture) storedSnapshot(domain string) *directory.Snapshot {
	f.t.Helper()
	d := directory.NewStored(f.st, func(err error) { f.t.Errorf("the directory cannot use a stored row: %v", err) })
	if err := d.Refresh(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	snap, err := d.Snapshot(context.Background(), domain)
	if err != nil {
		f.t.Fatal(err)
	}
	return snap
}

func TestClientsCRUD(t *testing.T) {
	f := newFixture(t)
	f.createDomain("acme")

	// Create: the server makes the secret, shows it once and keeps its hash.
	r := f.do(req{method: "PUT", path: "/v1/domain/acme/client/web-app", body: webClient()})
	r.must(t, 201)
	var c Client
	r.json(t, &c)
	if len(c.ClientSecret) < 43 || c.ClientType != "Confidential" || c.GrantType != "AuthorizationCode" || c.Scope != "orders:read orders:write" ||
		strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" || !c.AllowLocalLogin || !c.RequirePKCE || c.AccessTokenExpiry != 600 || c.IDTokenExpiry != 3600 ||
		r.header.Get("Location") != "/v1/domain/acme/client/web-app" {
		t.Fatalf("created %+v", c)
	}
	secret := c.ClientSecret
	row, _ := f.st.Client(context.Background(), "acme", "web-app")
	if row.SecretHash != identity.HashSecret(secret) || strings.Contains(string(row.Data), secret) {
		t.Fatalf("stored %+v", row)
	}
	// The issuer's directory reads the client, and the secret matches.
	got := f.storedSnapshot("acme").Client("web-app")
	if got == nil || !got.SecretMatches(secret) || !got.HasRedirectURI("http://127.0.0.1:8080/cb") || got.AccessLifetime() != 10*time.Minute || !got.HasAudience("orders-api") {
		t.Fatalf("the directory reads %+v", got)
	}

	// Update (idempotent PUT): 200, the secret kept and not shown.
	etag := r.header.Get("ETag")
	body := webClient()
	body["scope"] = "orders:read"
	r = f.do(req{method: "PUT", path: "/v1/domain/acme/client/web-app", body: body, header: map[string]string{"If-Match": etag}})
	c = Client{}
	r.must(t, 200).json(t, &c)
	if c.ClientSecret != "" || c.Scope != "orders:read" {
		t.Fatalf("updated %+v", c)
	}
	if row2, _ := f.st.Client(context.Background(), "acme", "web-app"); row2.SecretHash != row.SecretHash {
		t.Fatal("an update changed the secret")
	}
	// What a GET answers can be PUT back as it is.
	var read Client
	r = f.get("/v1/domain/acme/client/web-app").must(t, 200)
	r.json(t, &read)
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/web-app", body: read, header: map[string]string{"If-Match": r.header.Get("ETag")}}).must(t, 200)
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/web-app", body: body, header: map[string]string{"If-Match": etag}}).problem(t, 412, TypeStaleETag)
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/web-app", body: body, header: map[string]string{"If-None-Match": "*"}}).problem(t, 412, TypeStaleETag)

	// Rotation: a new secret, the old one stops working.
	var rot ClientSecret
	f.do(req{method: "POST", path: "/v1/domain/acme/client/web-app/secret"}).must(t, 200).json(t, &rot)
	got = f.storedSnapshot("acme").Client("web-app")
	if rot.ClientSecret == secret || !got.SecretMatches(rot.ClientSecret) || got.SecretMatches(secret) {
		t.Fatal("rotation did not replace the secret")
	}

	// A public client, made confidential later: the secret appears then.
	spa := map[string]any{"clientType": "Public", "grantType": "AuthorizationCode", "redirectUris": []string{"http://localhost:3000/cb"}}
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/spa", body: spa}).must(t, 201).json(t, &c)
	if c.ClientSecret != "" || c.ClientType != "Public" {
		t.Fatalf("public %+v", c)
	}
	f.do(req{method: "POST", path: "/v1/domain/acme/client/spa/secret"}).problem(t, 409, TypeConflict)
	spa["clientType"] = "Confidential"
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/spa", body: spa}).must(t, 200).json(t, &c)
	if c.ClientSecret == "" {
		t.Fatal("a client made confidential got no secret")
	}
	// A service.
	svc := map[string]any{"clientType": "Confidential", "grantType": "ClientCredentials", "scope": "orders:read", "allowLocalLogin": false}
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/svc", body: svc}).must(t, 201)

	var l List[ClientItem]
	f.get("/v1/domain/acme/client").must(t, 200).json(t, &l)
	if len(l.Items) != 3 || l.Items[0].ClientID != "spa" || l.Items[1].ClientID != "svc" || l.Items[1].GrantType != "ClientCredentials" {
		t.Fatalf("list %+v", l)
	}

	// Delete revokes what was issued to the client.
	if err := f.st.CreateRefreshToken(context.Background(), store.RefreshToken{ID: "rt", FamilyID: "fam-svc", Domain: "acme", ClientID: "svc", Subject: "svc", CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var del Deleted
	f.do(req{method: "DELETE", path: "/v1/domain/acme/client/svc"}).must(t, 200).json(t, &del)
	if del.RevokedFamilies != 1 {
		t.Fatalf("deleted %+v", del)
	}
	if ok, _ := f.st.Revoked(context.Background(), "fam-svc"); !ok {
		t.Fatal("the client's family is not revoked")
	}
	f.get("/v1/domain/acme/client/svc").problem(t, 404, TypeNotFound)
}

func TestClientValidation(t *testing.T) {
	f := newFixture(t, withConfig(testConfig()))
	f.createDomain("acme")
	u := f.createUser("acme", map[string]any{"preferredUsername": "bob", "name": "Bob"})
	v := f.directoryVersion()
	with := func(k string, val any) map[string]any {
		b := webClient()
		if val == nil {
			delete(b, k)
		} else {
			b[k] = val
		}
		return b
	}
	cases := []struct {
		name   string
		id     string
		body   any
		status int
		typ    string
		field  string
	}{
		{"query in a redirect URI", "c", with("redirectUris", []string{"https://app.example.com/cb?x=1"}), 400, TypeInvalidField, "redirectUris[0]"},
		{"fragment", "c", with("redirectUris", []string{"https://a.example.com/ok", "https://app.example.com/cb#x"}), 400, TypeInvalidField, "redirectUris[1]"},
		{"http off loopback", "c", with("redirectUris", []string{"http://app.example.com/cb"}), 400, TypeInvalidField, "redirectUris[0]"},
		{"relative", "c", with("postSignOutRedirectUris", []string{"/bye"}), 400, TypeInvalidField, "postSignOutRedirectUris[0]"},
		{"no redirect URI", "c", with("redirectUris", []string{}), 400, TypeInvalidField, "redirectUris"},
		{"client type", "c", with("clientType", "spa"), 400, TypeInvalidField, "clientType"},
		{"grant type", "c", with("grantType", "Implicit"), 400, TypeInvalidField, "grantType"},
		{"public service", "c", map[string]any{"clientType": "Public", "grantType": "ClientCredentials"}, 400, TypeInvalidField, "grantType"},
		{"origin with a path", "c", with("allowedOrigins", []string{"https://app.example.com/x"}), 400, TypeInvalidField, "allowedOrigins"},
		{"scope token", "c", with("scope", `a "b"`), 400, TypeInvalidField, "scope"},
		{"lifetime", "c", with("accessTokenExpiry", 90000), 400, TypeInvalidField, "accessTokenExpiry"},
		{"providers", "c", with("providers", []string{"github"}), 400, TypeInvalidField, "providers"},
		{"no way to sign in", "c", with("allowLocalLogin", false), 400, TypeInvalidField, "allowLocalLogin"},
		{"unknown policy", "c", with("policies", []string{"nope"}), 400, TypeInvalidField, "policies[0]"},
		{"a secret", "c", with("clientSecret", "mine-mine-mine-mine"), 400, TypeInvalidField, "clientSecret"},
		{"another id", "c", with("clientId", "d"), 400, TypeInvalidField, "clientId"},
		{"bad id", "a%20b", webClient(), 400, TypeInvalidField, "clientId"},
		{"a user's sub", u.Sub, webClient(), 409, TypeConflict, "clientId"},
		{"unknown field", "c", with("colour", "red"), 400, TypeInvalidBody, "colour"},
		{"wrong type", "c", with("redirectUris", "https://app.example.com/cb"), 400, TypeInvalidBody, "redirectUris"},
	}
	for _, c := range cases {
		p := f.do(req{method: "PUT", path: "/v1/domain/acme/client/" + c.id, body: c.body}).problem(t, c.status, c.typ)
		if len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("%s: errors %+v, want field %s", c.name, p.Errors, c.field)
		}
	}
	if f.directoryVersion() != v {
		t.Fatal("a refused client was written")
	}
	// The configured client: read-only. A configured domain's policy may be
	// named by a stored client.
	var cc Client
	f.get("/v1/domain/corp/client/portal").must(t, 200).json(t, &cc)
	if cc.Managed != "config" || cc.ClientType != "Public" || cc.Policies[0] != "staff" {
		t.Fatalf("config client %+v", cc)
	}
	f.do(req{method: "PUT", path: "/v1/domain/corp/client/portal", body: webClient()}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "DELETE", path: "/v1/domain/corp/client/portal"}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "POST", path: "/v1/domain/corp/client/portal/secret"}).problem(t, 403, TypeManagedByConfig)
	// A policy a stored client names cannot be deleted.
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: staffYAML, ctype: "application/yaml"}).must(t, 201)
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/web", body: with("policies", []string{"staff"})}).must(t, 201)
	p := f.do(req{method: "DELETE", path: "/v1/domain/acme/policy/staff"}).problem(t, 409, TypeConflict)
	if !strings.Contains(p.Detail, "web") {
		t.Fatalf("in use: %+v", p)
	}
}

// TestConfigAgreesWithLayered: the API's view of what the configuration
// manages is directory.Layered's.
func TestConfigAgreesWithLayered(t *testing.T) {
	cfg := testConfig()
	dom := &identity.Domain{DomainSettings: identity.DomainSettings{Name: "corp", Issuer: "https://auth.example.com/corp"},
		Users:   []*identity.User{{Subject: "u-alice", PreferredUsername: "alice", Active: true}},
		Clients: []*identity.Client{{ID: "portal", Type: identity.Public, GrantTypes: []string{identity.GrantAuthorizationCode}, RedirectURIs: []string{"https://portal.example.com/cb"}, AllowLocalLogin: true}}}
	static, err := directory.NewStatic(directory.StaticDomain{Domain: dom})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	stored := directory.NewStored(f.st, nil)
	if err := stored.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := directory.NewLayered(static, stored)
	for _, c := range []struct {
		kind directory.Kind
		id   string
	}{{directory.KindDomain, "corp"}, {directory.KindUser, "u-alice"}, {directory.KindUser, "bob"}, {directory.KindClient, "portal"}, {directory.KindClient, "web"}, {directory.KindPolicy, "other"}} {
		want, err := l.ConfigManaged(context.Background(), c.kind, "corp", c.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ConfigManaged(string(c.kind), "corp", c.id); got != want {
			t.Errorf("%s %q: API %v, Layered %v", c.kind, c.id, got, want)
		}
	}
}

// TestDirectoryReadsWhatTheAPIWrites: domains, users (with claims),
// policies and clients written through the API are what directory.Stored
// — the issuer's and the gate's view of the store — reads, with nothing
// left out.
func TestDirectoryReadsWhatTheAPIWrites(t *testing.T) {
	f := newFixture(t)
	f.do(req{method: "POST", path: "/v1/domain", body: map[string]any{"name": "acme", "issuer": "https://auth.example.com/acme",
		"signingAlgorithm": "ES256", "sessionLifetime": 5400, "keyRotation": 86400}}).must(t, 201)
	u := f.createUser("acme", map[string]any{"preferredUsername": "bob", "name": "Bob", "email": "bob@example.com",
		"claims": []map[string]any{{"name": "groups", "value": []string{"staff"}, "in": "access"}, {"name": "level", "value": 4, "in": "identity"}}})
	f.do(req{method: "PUT", path: "/v1/domain/acme/user/" + u.Sub + "/password", body: map[string]any{"password": "bob-password-1"}}).must(t, 200)
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: staffYAML, ctype: "application/yaml"}).must(t, 201)
	f.do(req{method: "PUT", path: "/v1/domain/acme/client/web", body: map[string]any{"clientType": "Public", "grantType": "AuthorizationCode",
		"redirectUris": []string{"https://app.example.com/cb"}, "policies": []string{"staff"}, "requirePkce": true}}).must(t, 201)

	snap := f.storedSnapshot("acme") // fails the test on any row it leaves out
	s := snap.Settings
	if s.Issuer != "https://auth.example.com/acme" || s.SigningAlgorithm != "ES256" || s.SessionLifetime != 90*time.Minute || s.KeyRotation != 24*time.Hour {
		t.Fatalf("settings %+v", s)
	}
	if !snap.Policies.Has("staff") || snap.Client("web") == nil || snap.Client("web").Policies[0] != "staff" {
		t.Fatal("the policy or client is missing")
	}
	d := directory.NewStored(f.st, nil)
	user, err := d.UserByLogin(context.Background(), "acme", "BOB@example.com")
	if err != nil || user.Subject != u.Sub || len(user.Claims) != 2 || user.Claims[0].In != identity.ClaimAccess {
		t.Fatalf("user %+v (%v)", user, err)
	}
	if ok, err := identity.VerifyPassword(user.PasswordHash, "bob-password-1"); !ok || err != nil {
		t.Fatalf("the password set through the API does not sign in: %v", err)
	}
	// The claims as the policy sees them.
	decision := snap.Policies.Evaluate(map[string]any{"groups": []any{"staff"}, "level": 4, "email": "bob@example.com"}, []string{"staff"})
	if !decision.Allow {
		t.Fatalf("the stored policy does not hold: %s", decision.Explanation())
	}
}
