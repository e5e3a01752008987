package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
)

func discover(t *testing.T, f *fixture, path string) map[string]any {
	t.Helper()
	resp := f.get(http.DefaultClient, f.url+path)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d", path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body(t, resp)), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func strList(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestDiscovery_OpenIDConfigurationIs200JSON(t *testing.T) {
	f := newFixture(t)
	m := discover(t, f, "/.well-known/openid-configuration")
	if len(m) < 10 {
		t.Fatalf("metadata too small: %v", m)
	}
}

func TestDiscovery_IssuerEqualsURLPrefix(t *testing.T) {
	f := newFixture(t)
	m := discover(t, f, "/.well-known/openid-configuration")
	if m["issuer"] != f.url {
		t.Fatalf("issuer %q, want exactly %q", m["issuer"], f.url)
	}
}

func TestDiscovery_RequiredMetadata(t *testing.T) {
	f := newFixture(t)
	m := discover(t, f, "/.well-known/openid-configuration")
	endpoints := map[string]string{
		"authorization_endpoint": "/authorize", "token_endpoint": "/token", "userinfo_endpoint": "/userinfo",
		"jwks_uri": "/jwks", "revocation_endpoint": "/revoke", "introspection_endpoint": "/introspect",
		"end_session_endpoint": "/logout",
	}
	for k, p := range endpoints {
		if m[k] != f.url+p {
			t.Errorf("%s = %v, want %s", k, m[k], f.url+p)
		}
	}
	mustContain := map[string]string{
		"response_types_supported":              "code",
		"subject_types_supported":               "public",
		"id_token_signing_alg_values_supported": "RS256",
		"scopes_supported":                      "openid",
		"grant_types_supported":                 "authorization_code",
		"code_challenge_methods_supported":      "S256",
		"token_endpoint_auth_methods_supported": "client_secret_basic",
		"claims_supported":                      "sub",
	}
	for k, want := range mustContain {
		if v, ok := m[k]; !ok || !contains(strList(v), want) {
			t.Errorf("%s = %v, want it to contain %q", k, v, want)
		}
	}
	for _, a := range strList(m["id_token_signing_alg_values_supported"]) {
		if strings.EqualFold(a, "none") {
			t.Error("alg none advertised")
		}
	}
	for _, g := range []string{"refresh_token", "client_credentials"} {
		if !contains(strList(m["grant_types_supported"]), g) {
			t.Errorf("grant %s not advertised", g)
		}
	}
	for _, am := range []string{"client_secret_post", "none"} {
		if !contains(strList(m["token_endpoint_auth_methods_supported"]), am) {
			t.Errorf("auth method %s not advertised", am)
		}
	}
	if m["authorization_response_iss_parameter_supported"] != true {
		t.Error("authorization_response_iss_parameter_supported is not true")
	}
	// OpenID Connect Back-Channel Logout 2.1.
	if m["backchannel_logout_supported"] != true || m["backchannel_logout_session_supported"] != true {
		t.Errorf("back-channel logout not advertised: %v %v", m["backchannel_logout_supported"], m["backchannel_logout_session_supported"])
	}
	if !contains(strList(m["claims_supported"]), "sid") {
		t.Error("sid not in claims_supported")
	}
	if contains(strList(m["scopes_supported"]), "orders:read") == false {
		t.Error("client scopes not advertised")
	}
}

func TestDiscovery_AlsoServedAtOAuthAuthorizationServer(t *testing.T) {
	f := newFixture(t)
	a := discover(t, f, "/.well-known/openid-configuration")
	b := discover(t, f, "/.well-known/oauth-authorization-server")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("RFC 8414 metadata differs:\n%s\n%s", ja, jb)
	}
}

func TestDiscovery_IssuerWithPath_RFC8414PathForm(t *testing.T) {
	f := newFixture(t, withConfig(func(_ *Config, d *identity.Domain) { d.Issuer += "/auth" }))
	iss := f.url + "/auth"
	for _, p := range []string{"/auth/.well-known/openid-configuration", "/auth/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/auth"} {
		m := discover(t, f, p)
		if m["issuer"] != iss || m["token_endpoint"] != iss+"/token" {
			t.Errorf("%s: issuer %v token %v", p, m["issuer"], m["token_endpoint"])
		}
	}
	for _, p := range []string{"/.well-known/openid-configuration", "/token", "/authx/token", "/auth/tokens"} {
		r := httptest.NewRequest(http.MethodGet, p, nil)
		if f.iss.Handles(r) {
			t.Errorf("Handles(%s) = true for an issuer under /auth", p)
		}
	}
	if !f.iss.Handles(httptest.NewRequest(http.MethodPost, "/auth/token", nil)) {
		t.Error("Handles(/auth/token) = false")
	}
}

func TestDiscovery_EndpointsHTTPSExceptLoopbackInDev(t *testing.T) {
	f := newFixture(t)
	// An https issuer advertises only https endpoints.
	static := func(iss string) directory.Directory {
		return fixedDirectory{snap: directory.NewSnapshot(1, identity.DomainSettings{Issuer: iss}, nil, nil), dom: &identity.Domain{}}
	}
	iss, err := New(t.Context(), Config{Directory: static("https://auth.example.com"), Store: f.st, Keys: f.keys})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(iss.discovery.Load().doc, &m)
	for k, v := range m {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "http") && !strings.HasPrefix(s, "https://auth.example.com") {
			t.Errorf("%s = %s is not https on the issuer host", k, s)
		}
	}
	// http is refused unless the host is loopback.
	if _, err := New(t.Context(), Config{Directory: static("http://auth.example.com"), Store: f.st, Keys: f.keys}); err == nil ||
		!strings.Contains(err.Error(), "use https") {
		t.Errorf("http issuer on a non-loopback host: %v", err)
	}
	if _, err := New(t.Context(), Config{Directory: static("http://127.0.0.1:8080"), Store: f.st, Keys: f.keys}); err != nil {
		t.Errorf("http issuer on loopback: %v", err)
	}
}

func jwks(t *testing.T, f *fixture) []map[string]any {
	t.Helper()
	resp := f.get(http.DefaultClient, f.url+"/jwks")
	if resp.StatusCode != 200 {
		t.Fatalf("jwks status %d", resp.StatusCode)
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(body(t, resp)), &set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

func TestJWKS_PublicKeysOnlyWithDistinctKidUseAlg(t *testing.T) {
	f := newFixture(t)
	if err := f.keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ks := jwks(t, f)
	if len(ks) < 2 {
		t.Fatalf("want the old and the new key, got %d", len(ks))
	}
	seen := map[string]bool{}
	for _, k := range ks {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %v publishes private member %q", k["kid"], private)
			}
		}
		kid, _ := k["kid"].(string)
		if kid == "" || seen[kid] {
			t.Errorf("kid %q missing or repeated", kid)
		}
		seen[kid] = true
		if k["use"] != "sig" || k["alg"] == nil || k["alg"] == "" {
			t.Errorf("key %s: use=%v alg=%v", kid, k["use"], k["alg"])
		}
	}
}

func TestJWKS_PreviousKeysStayPublishedUntilTheirTokensExpire(t *testing.T) {
	f := newFixture(t)
	tr := f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	if tr.status != 200 {
		t.Fatalf("token: %d %v", tr.status, tr.raw)
	}
	h, _ := claims(t, tr.resp.AccessToken)
	oldKID := h["kid"].(string)
	if err := f.keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour) // the token has expired, the old key must still be there
	if err := f.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range jwks(t, f) {
		found = found || k["kid"] == oldKID
	}
	if !found {
		t.Fatalf("old kid %s left the JWKS right after rotation", oldKID)
	}
	f.verifyJWT(tr.resp.AccessToken) // still verifiable
	tr2 := f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	h2, _ := claims(t, tr2.resp.AccessToken)
	if h2["kid"] == oldKID {
		t.Fatal("new tokens are still signed with the retired key")
	}
}

func TestDiscovery_ES256Advertised(t *testing.T) {
	f := newFixture(t, withAlg(keys.ES256))
	m := discover(t, f, "/.well-known/openid-configuration")
	algs := strList(m["id_token_signing_alg_values_supported"])
	if !contains(algs, "ES256") || !contains(algs, "RS256") {
		t.Fatalf("algs %v", algs)
	}
}
