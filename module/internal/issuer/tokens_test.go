package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestTokens_IDTokenClaims(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	h, c := claims(t, tr.resp.IDToken)
	if h["alg"] != "RS256" || h["typ"] != "JWT" || h["kid"] == nil || h["kid"] == "" {
		t.Fatalf("header %v", h)
	}
	now := float64(f.clock.Now().Unix())
	if c["iss"] != f.url || c["sub"] != "u-alice" || c["aud"] != "spa" || c["azp"] != "spa" || c["nonce"] != "n-456" {
		t.Fatalf("claims %v", c)
	}
	if c["iat"] != now || c["exp"].(float64) <= now || c["auth_time"] == nil {
		t.Fatalf("times %v", c)
	}
	sum := sha256.Sum256([]byte(tr.resp.AccessToken))
	if c["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
		t.Fatalf("at_hash %v", c["at_hash"])
	}
	// Profile, email and identity custom claims; access claims stay out.
	if c["preferred_username"] != "alice" || c["email_verified"] != true || c["department"] != "research" {
		t.Fatalf("identity claims %v", c)
	}
	if _, ok := c["role"]; ok {
		t.Fatal("access claim role in the ID token")
	}
	f.verifyJWT(tr.resp.IDToken)
}

func TestTokens_IDTokenOnlyReleasesClaimsOfGrantedScopes(t *testing.T) {
	f := newFixture(t)
	p := authParams("spa", spaRedirect)
	p.Set("scope", "openid")
	tr := f.token(codeForm(f.code(f.browser(), p), spaRedirect), "spa", "")
	_, c := claims(t, tr.resp.IDToken)
	for _, k := range []string{"email", "name", "preferred_username"} {
		if _, ok := c[k]; ok {
			t.Errorf("%s released without its scope", k)
		}
	}
	// Without openid there is no ID token at all.
	p.Set("scope", "orders:read")
	tr = f.token(codeForm(f.code(f.browser(), p), spaRedirect), "spa", "")
	if tr.status != 200 || tr.resp.IDToken != "" {
		t.Fatalf("%v", tr.raw)
	}
}

func TestTokens_AccessTokenRFC9068(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	h, c := claims(t, tr.resp.AccessToken)
	if h["typ"] != "at+jwt" || h["kid"] == nil {
		t.Fatalf("header %v", h)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"} {
		if _, ok := c[k]; !ok {
			t.Errorf("access token lacks %s", k)
		}
	}
	if c["aud"] != apiAudience || c["client_id"] != "spa" || c["sub"] != "u-alice" {
		t.Fatalf("claims %v", c)
	}
	if role, _ := c["role"].([]any); len(role) != 1 || role[0] != "admin" {
		t.Fatalf("role %v", c["role"])
	}
	if _, ok := c["email"]; ok {
		t.Fatal("identity claim in the access token")
	}
	if _, ok := c["gty"]; ok {
		t.Fatal("a user's token carries the client_credentials marker gty")
	}
	if !strings.Contains(c["jti"].(string), ".") {
		t.Fatalf("jti %v is not <family>.<random>", c["jti"])
	}
	f.verifyJWT(tr.resp.AccessToken)
}

func TestTokens_AccessTokenNeverAcceptedAsIDTokenAndViceVersa(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	// ID token as a bearer at userinfo.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.resp.IDToken)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("ID token accepted at userinfo: %d", resp.StatusCode)
	}
	// Access token as id_token_hint.
	resp = f.get(http.DefaultClient, f.url+"/logout?"+url.Values{"id_token_hint": {tr.resp.AccessToken}}.Encode())
	assertErrorPage(t, resp, "id_token_hint")
	// ID token at introspection is not an active access token.
	if m := f.introspect(tr.resp.IDToken, "web", webSecret); m["active"] != false {
		t.Fatalf("ID token introspected as active: %v", m)
	}
}

func TestTokens_ES256SignsWithKid(t *testing.T) {
	f := newFixture(t, withAlg("ES256"))
	tr := f.codeTokens("spa", spaRedirect, "")
	for _, tok := range []string{tr.resp.AccessToken, tr.resp.IDToken} {
		h, _ := claims(t, tok)
		if h["alg"] != "ES256" || h["kid"] == nil {
			t.Fatalf("header %v", h)
		}
		f.verifyJWT(tok)
	}
}

func userinfo(t *testing.T, f *fixture, method, tok, scheme string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+"/userinfo", nil)
	if tok != "" {
		req.Header.Set("Authorization", scheme+" "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body(t, resp)), &m)
	return resp, m
}

func TestUserinfo_GETAndPOSTWithBearerHeaderSubEqualsIDTokenSub(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	_, id := claims(t, tr.resp.IDToken)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			resp, m := userinfo(t, f, method, tr.resp.AccessToken, scheme)
			if resp.StatusCode != 200 || m["sub"] != id["sub"] || m["email"] != "Alice@Example.com" || m["department"] != "research" {
				t.Fatalf("%s %s: %d %v", method, scheme, resp.StatusCode, m)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		}
	}
}

func TestUserinfo_RejectsMissingExpiredAndQueryTokens(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	if resp, _ := userinfo(t, f, "GET", "", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp := f.get(http.DefaultClient, f.url+"/userinfo?access_token="+tr.resp.AccessToken)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("query token accepted: %d", resp.StatusCode)
	}
	if resp, _ := userinfo(t, f, "GET", tr.resp.AccessToken[:len(tr.resp.AccessToken)-4]+"AAAA", "Bearer"); resp.StatusCode != 401 {
		t.Fatalf("tampered token: %d", resp.StatusCode)
	}
	f.clock.Advance(2 * 3600e9)
	if resp, _ := userinfo(t, f, "GET", tr.resp.AccessToken, "Bearer"); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d", resp.StatusCode)
	}
}

func TestUserinfo_ClientCredentialsTokenLacksOpenIDScope(t *testing.T) {
	f := newFixture(t)
	r := f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	resp, _ := userinfo(t, f, "GET", r.resp.AccessToken, "Bearer")
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestIntrospection_ClientAuthenticatedAndScoped(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	m := f.introspect(tr.resp.AccessToken, "web", webSecret)
	if m["active"] != true || m["client_id"] != "web" || m["sub"] != "u-alice" || m["token_type"] != "Bearer" {
		t.Fatalf("%v", m)
	}
	if m := f.introspect(tr.resp.RefreshToken, "web", webSecret); m["active"] != true || m["token_type"] != "refresh_token" {
		t.Fatalf("refresh: %v", m)
	}
	// Another client that is neither the token's client nor its audience
	// learns nothing.
	if m := f.introspect(tr.resp.AccessToken, "service", serviceSecret); m["active"] != false || len(m) != 1 {
		t.Fatalf("foreign client: %v", m)
	}
	// Public clients and unauthenticated callers are refused.
	resp := f.post("/introspect", url.Values{"token": {tr.resp.AccessToken}, "client_id": {"spa"}}, "", "")
	if resp.StatusCode != 401 {
		t.Fatalf("public client: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if m := f.introspect("garbage", "web", webSecret); m["active"] != false {
		t.Fatalf("garbage: %v", m)
	}
}

func TestRevocation_RefreshTokenRevokesFamilyAccessTokenRevokesJti(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	resp := f.post("/revoke", url.Values{"token": {tr.resp.AccessToken}, "token_type_hint": {"access_token"}}, "web", webSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("revoke access: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if m := f.introspect(tr.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("revoked access token active: %v", m)
	}
	// The refresh token still works after revoking one access token.
	r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret)
	if r.status != 200 {
		t.Fatalf("%v", r.raw)
	}
	resp = f.post("/revoke", url.Values{"token": {r.resp.RefreshToken}}, "web", webSecret)
	resp.Body.Close()
	if x := f.token(refreshForm(r.resp.RefreshToken), "web", webSecret); x.err.Code != "invalid_grant" {
		t.Fatalf("revoked refresh token works: %v", x.raw)
	}
	if m := f.introspect(r.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("access token of a revoked family active: %v", m)
	}
	// Unknown tokens: 200, nothing revealed.
	resp = f.post("/revoke", url.Values{"token": {"nope"}}, "web", webSecret)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
	// Bad client: 401.
	resp = f.post("/revoke", url.Values{"token": {"nope"}}, "web", "wrong-secret-xxxxxxxx")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bad client: %d", resp.StatusCode)
	}
	if len(f.revoked) < 2 {
		t.Fatalf("OnRevoke calls %v", f.revoked)
	}
}

func TestRevocation_AnotherClientsTokenIsNotRevoked(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	resp := f.post("/revoke", url.Values{"token": {tr.resp.RefreshToken}}, "service", serviceSecret)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("another client revoked web's token: %v", r.raw)
	}
}

func TestLogout_PostLogoutRedirectURIExactMatchAndStateEchoed(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	code := f.code(c, authParams("web", webRedirect))
	tr := f.token(codeForm(code, webRedirect), "web", webSecret)
	q := url.Values{"id_token_hint": {tr.resp.IDToken}, "post_logout_redirect_uri": {webPostLogout + "/x"}, "state": {"bye"}}
	assertErrorPage(t, f.get(c, f.url+"/logout?"+q.Encode()), "not registered")
	// The session survived the refused logout.
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	if loc := location(t, f.get(c, f.authorizeURL(p))); loc.Query().Get("code") == "" {
		t.Fatalf("session ended by a refused logout: %s", loc)
	}
	q.Set("post_logout_redirect_uri", webPostLogout)
	loc := location(t, f.get(c, f.url+"/logout?"+q.Encode()))
	if loc.Scheme+"://"+loc.Host+loc.Path != webPostLogout || loc.Query().Get("state") != "bye" {
		t.Fatalf("logout redirect %s", loc)
	}
	// Session gone: prompt=none now fails.
	assertRedirectError(t, f.get(c, f.authorizeURL(p)), webRedirect, "login_required", "st-123")
	if !f.auditHas(evLogout, outcomeOK) {
		t.Fatal("logout not audited")
	}
}

func TestLogout_WithoutRedirectShowsSignedOutPage(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	code := f.code(c, authParams("spa", spaRedirect))
	tr := f.token(codeForm(code, spaRedirect), "spa", "")
	resp := f.get(c, f.url+"/logout?"+url.Values{"id_token_hint": {tr.resp.IDToken}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// Without a session there is nothing to confirm.
	resp = f.get(c, f.url+"/logout")
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// client_id alone identifies the client too; unknown URIs never redirect.
	resp = f.get(c, f.url+"/logout?"+url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example.com"}}.Encode())
	assertErrorPage(t, resp, "")
}

// TestIndependentClient_OIDCFlow drives the issuer with golang.org/x/oauth2
// and go-oidc, as a standard relying party would.
func TestIndependentClient_OIDCFlow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "web", ClientSecret: webSecret, Endpoint: provider.Endpoint(),
		RedirectURL: webRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-1"))
	u, _ := url.Parse(authURL)
	loc := f.signIn(f.browser(), u.Query(), "alice", alicePassword)
	if loc.Query().Get("state") != "state-1" || loc.Query().Get("iss") != f.url {
		t.Fatalf("%s", loc)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "web", Now: f.clock.Now}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != "nonce-1" || idt.Subject != "u-alice" {
		t.Fatalf("%+v", idt)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject || ui.Email != "Alice@Example.com" {
		t.Fatalf("userinfo %+v %v", ui, err)
	}
	// Refresh with rotation through the library.
	f.clock.Advance(2 * 3600e9)
	tok.Expiry = time.Now().Add(-time.Minute) // the library uses the wall clock
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	// Client credentials through the library.
	cc := clientcredentials.Config{ClientID: "service", ClientSecret: serviceSecret, TokenURL: provider.Endpoint().TokenURL,
		Scopes: []string{"orders:read"}, EndpointParams: url.Values{"resource": {apiAudience}}}
	st, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := claims(t, st.AccessToken); c["aud"] != apiAudience || c["scope"] != "orders:read" {
		t.Fatalf("client credentials claims %v", c)
	}
}

func TestRevocation_InProcessRevokeUsesTheSameCodePath(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	if _, err := f.iss.RelyingParty("nope"); err == nil {
		t.Fatal("a relying party for an unknown client")
	}
	svc, err := f.iss.RelyingParty("service")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(context.Background(), tr.resp.RefreshToken); err != nil {
		t.Fatalf("another client's token: %v (RFC 7009: not an error)", err)
	}
	if x := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); x.status != 200 {
		t.Fatalf("another client's Revoke revoked the token: %v", x.raw)
	} else {
		tr.resp = x.resp
	}
	web, err := f.iss.RelyingParty("web")
	if err != nil {
		t.Fatal(err)
	}
	if err := web.Revoke(context.Background(), tr.resp.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if x := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); x.err.Code != "invalid_grant" {
		t.Fatalf("revoked refresh token works: %v", x.raw)
	}
	if m := f.introspect(tr.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("access token of a revoked family active: %v", m)
	}
}
