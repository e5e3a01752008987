package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

// codeTokens runs a sign-in for client and redeems the code.
func (f *fixture) codeTokens(clientID, redirect, secret string) tokenResult {
	f.t.Helper()
	code := f.code(f.browser(), authParams(clientID, redirect))
	tr := f.token(codeForm(code, redirect), clientID, secret)
	if tr.status != 200 {
		f.t.Fatalf("code exchange: %d %v", tr.status, tr.raw)
	}
	return tr
}

func TestToken_ClientSecretBasicWithFormEncodedCredentials(t *testing.T) {
	f := newFixture(t)
	// webSecret contains ':', '/', '+', '%' and a space: RFC 6749 2.3.1
	// form-encodes them inside the Basic header.
	tr := f.codeTokens("web", webRedirect, webSecret)
	if tr.resp.AccessToken == "" {
		t.Fatal("no access token")
	}
	// The raw (not form-encoded) secret with '+' would decode to a space
	// and must fail.
	code := f.code(f.browser(), authParams("web", webRedirect))
	req, _ := http.NewRequest(http.MethodPost, f.url+"/token", strings.NewReader(codeForm(code, webRedirect).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", webSecret)
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unencoded secret: status %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestToken_ClientSecretPost(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	form := codeForm(code, webRedirect)
	form.Set("client_id", "web")
	form.Set("client_secret", webSecret)
	tr := f.token(form, "", "")
	if tr.status != 200 || tr.resp.AccessToken == "" {
		t.Fatalf("%d %v", tr.status, tr.raw)
	}
}

func TestToken_NoneForPublicClientsWithPKCE(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	if tr.resp.IDToken == "" || tr.resp.RefreshToken == "" {
		t.Fatalf("%v", tr.raw)
	}
	// A confidential client cannot use none.
	code := f.code(f.browser(), authParams("web", webRedirect))
	if tr := f.token(codeForm(code, webRedirect), "web", ""); tr.status != 401 || tr.err.Code != "invalid_client" {
		t.Fatalf("confidential client without secret: %d %v", tr.status, tr.raw)
	}
}

func TestToken_ResponseIsJSONNoStoreBearerPositiveExpiresIn(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	if ct := tr.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if cc := tr.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("cache control %q", cc)
	}
	if tr.resp.TokenType != "Bearer" || tr.resp.ExpiresIn <= 0 {
		t.Errorf("token_type %q expires_in %d", tr.resp.TokenType, tr.resp.ExpiresIn)
	}
	if tr.resp.Scope != "openid profile email" {
		t.Errorf("scope %q", tr.resp.Scope)
	}
}

func TestToken_ErrorsAre400JSONWithErrorAndDescription(t *testing.T) {
	f := newFixture(t)
	tr := f.token(urlValues("grant_type", "authorization_code", "code", "nope", "code_verifier", testVerifier), "spa", "")
	if tr.status != 400 || tr.err.Code != "invalid_grant" || tr.err.Description == "" {
		t.Fatalf("%d %v", tr.status, tr.raw)
	}
	if tr.header.Get("Content-Type") != "application/json" || tr.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", tr.header)
	}
	tr = f.token(urlValues("grant_type", "password", "username", "a", "password", "b"), "spa", "")
	if tr.status != 400 || tr.err.Code != "unsupported_grant_type" {
		t.Fatalf("password grant: %d %v", tr.status, tr.raw)
	}
	tr = f.token(urlValues("grant_type", "implicit"), "spa", "")
	if tr.err.Code != "unsupported_grant_type" {
		t.Fatalf("implicit: %v", tr.raw)
	}
}

func TestToken_InvalidClientIs401WithWWWAuthenticate(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string][2]string{
		"wrong secret":   {"web", "wrong-secret-xxxxxxxx"},
		"unknown client": {"nobody", "whatever-secret-xx"},
	} {
		t.Run(name, func(t *testing.T) {
			tr := f.token(urlValues("grant_type", "client_credentials"), c[0], c[1])
			if tr.status != 401 || tr.err.Code != "invalid_client" {
				t.Fatalf("%d %v", tr.status, tr.raw)
			}
			if !strings.HasPrefix(tr.header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("WWW-Authenticate %q", tr.header.Get("WWW-Authenticate"))
			}
		})
	}
	if !f.auditHas(evToken, outcomeDenied) {
		t.Fatal("failed client authentication not audited")
	}
}

func TestToken_NoCRLFInErrorDescriptions(t *testing.T) {
	for _, in := range []string{"a\r\nSet-Cookie: x=1", "quote\" and \\ back", "tab\there", "ünïcode"} {
		out := cleanDescription(in)
		for i := 0; i < len(out); i++ {
			if b := out[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
				t.Fatalf("cleanDescription(%q) = %q keeps byte %#x", in, out, b)
			}
		}
	}
	// End to end: a parameter name with CR/LF echoed in a description.
	f := newFixture(t)
	resp := f.post("/token", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, "service", serviceSecret)
	b := body(t, resp)
	if resp.StatusCode != 400 || strings.ContainsAny(b, "\r\n") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

func TestToken_CodeIsSingleUse(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("spa", spaRedirect))
	if tr := f.token(codeForm(code, spaRedirect), "spa", ""); tr.status != 200 {
		t.Fatalf("first use: %v", tr.raw)
	}
	if tr := f.token(codeForm(code, spaRedirect), "spa", ""); tr.status != 400 || tr.err.Code != "invalid_grant" {
		t.Fatalf("second use: %d %v", tr.status, tr.raw)
	}
}

func TestToken_CodeReuseRevokesIssuedTokens(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	first := f.token(codeForm(code, webRedirect), "web", webSecret)
	if first.status != 200 {
		t.Fatalf("first use: %v", first.raw)
	}
	if m := f.introspect(first.resp.AccessToken, "web", webSecret); m["active"] != true {
		t.Fatalf("fresh token inactive: %v", m)
	}
	replay := f.token(codeForm(code, webRedirect), "web", webSecret)
	if replay.err.Code != "invalid_grant" || !strings.Contains(replay.err.Description, "revoked") {
		t.Fatalf("replay: %v", replay.raw)
	}
	if m := f.introspect(first.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("access token from a replayed code still active: %v", m)
	}
	rf := f.token(urlValues("grant_type", "refresh_token", "refresh_token", first.resp.RefreshToken), "web", webSecret)
	if rf.err.Code != "invalid_grant" {
		t.Fatalf("refresh token from a replayed code still works: %v", rf.raw)
	}
	// userinfo refuses the revoked access token too.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+first.resp.AccessToken)
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 401 {
		t.Fatalf("userinfo with revoked token: %d", resp.StatusCode)
	}
	resp.Body.Close()
	_, at := claims(t, first.resp.AccessToken)
	fam := revocation.ID(at["jti"].(string)).Family()
	if len(f.revoked) == 0 || f.revoked[0] != fam {
		t.Fatalf("OnRevoke got %v, want family %s", f.revoked, fam)
	}
	if !f.auditHas(evRevoke, outcomeDenied) {
		t.Fatal("code replay not audited")
	}
}

func TestToken_ExpiredCodeIsInvalidGrant(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("spa", spaRedirect))
	f.clock.Advance(61 * time.Second)
	if tr := f.token(codeForm(code, spaRedirect), "spa", ""); tr.err.Code != "invalid_grant" {
		t.Fatalf("%d %v", tr.status, tr.raw)
	}
	// Within 60s it works.
	code = f.code(f.browser(), authParams("spa", spaRedirect))
	f.clock.Advance(59 * time.Second)
	if tr := f.token(codeForm(code, spaRedirect), "spa", ""); tr.status != 200 {
		t.Fatalf("%d %v", tr.status, tr.raw)
	}
}

func TestToken_CodeBoundToItsClient(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("spa", spaRedirect))
	if tr := f.token(codeForm(code, spaRedirect), "guarded", ""); tr.err.Code != "invalid_grant" {
		t.Fatalf("code used by another client: %v", tr.raw)
	}
}

func TestToken_CodeBoundToRedirectURI(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	if tr := f.token(codeForm(code, webRedirect2), "web", webSecret); tr.err.Code != "invalid_grant" {
		t.Fatalf("other registered redirect_uri: %v", tr.raw)
	}
	code = f.code(f.browser(), authParams("web", webRedirect))
	form := codeForm(code, webRedirect)
	form.Del("redirect_uri")
	if tr := f.token(form, "web", webSecret); tr.err.Code != "invalid_grant" {
		t.Fatalf("missing redirect_uri: %v", tr.raw)
	}
}

func TestToken_MissingOrWrongCodeVerifierIsInvalidGrant(t *testing.T) {
	f := newFixture(t)
	for name, v := range map[string]string{
		"missing":              "",
		"wrong":                strings.Repeat("x", 50),
		"too short":            "abc",
		"the challenge itself": s256(testVerifier),
	} {
		t.Run(name, func(t *testing.T) {
			code := f.code(f.browser(), authParams("spa", spaRedirect))
			form := codeForm(code, spaRedirect)
			if v == "" {
				form.Del("code_verifier")
			} else {
				form.Set("code_verifier", v)
			}
			if tr := f.token(form, "spa", ""); tr.err.Code != "invalid_grant" {
				t.Fatalf("%d %v", tr.status, tr.raw)
			}
		})
	}
	t.Run("verifier without challenge", func(t *testing.T) {
		p := authParams("legacy", webRedirect)
		p.Del("code_challenge")
		p.Del("code_challenge_method")
		code := f.code(f.browser(), p)
		if tr := f.token(codeForm(code, webRedirect), "legacy", webSecret); tr.err.Code != "invalid_grant" {
			t.Fatalf("%v", tr.raw)
		}
	})
}

func refreshForm(rt string) url.Values {
	return urlValues("grant_type", "refresh_token", "refresh_token", rt)
}

func TestToken_RefreshRotatesOnEveryUse(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	rt := tr.resp.RefreshToken
	seen := map[string]bool{rt: true}
	for n := 0; n < 3; n++ {
		f.clock.Advance(time.Minute)
		r := f.token(refreshForm(rt), "spa", "")
		if r.status != 200 || r.resp.RefreshToken == "" || seen[r.resp.RefreshToken] {
			t.Fatalf("refresh %d: %d %v", n, r.status, r.raw)
		}
		if r.resp.IDToken == "" {
			t.Fatal("no ID token on refresh of an openid grant")
		}
		seen[r.resp.RefreshToken] = true
		rt = r.resp.RefreshToken
	}
}

func TestToken_RefreshScopeCanOnlyNarrow(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	f2 := refreshForm(tr.resp.RefreshToken)
	f2.Set("scope", "openid orders:read")
	if r := f.token(f2, "spa", ""); r.err.Code != "invalid_scope" {
		t.Fatalf("widening: %v", r.raw)
	}
	f2.Set("scope", "openid")
	r := f.token(f2, "spa", "")
	if r.status != 200 || r.resp.Scope != "openid" {
		t.Fatalf("narrowing: %v", r.raw)
	}
}

func TestToken_RefreshReuseRevokesFamily(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	old := tr.resp.RefreshToken
	r1 := f.token(refreshForm(old), "spa", "")
	if r1.status != 200 {
		t.Fatalf("%v", r1.raw)
	}
	// Within the grace window: refused, family intact.
	f.clock.Advance(time.Second)
	if r := f.token(refreshForm(old), "spa", ""); r.err.Code != "invalid_grant" {
		t.Fatalf("reuse in grace: %v", r.raw)
	}
	if m := f.introspectAs(r1.resp.AccessToken); m["active"] != true {
		t.Fatalf("family revoked within grace: %v", m)
	}
	// Outside: the family is revoked, successor included.
	f.clock.Advance(5 * time.Second)
	if r := f.token(refreshForm(old), "spa", ""); r.err.Code != "invalid_grant" || !strings.Contains(r.err.Description, "revoked") {
		t.Fatalf("reuse: %v", r.raw)
	}
	if r := f.token(refreshForm(r1.resp.RefreshToken), "spa", ""); r.err.Code != "invalid_grant" {
		t.Fatalf("successor still works after reuse: %v", r.raw)
	}
	if m := f.introspectAs(r1.resp.AccessToken); m["active"] != false {
		t.Fatalf("access token of a revoked family active: %v", m)
	}
}

// introspectAs introspects a token whose audience includes orders-api via
// the web client (which may see tokens it is the client or audience of);
// spa tokens are audience orders-api, so a resource server client is used.
func (f *fixture) introspectAs(tok string) map[string]any {
	_, c := claims(f.t, tok)
	if c["client_id"] == "web" {
		return f.introspect(tok, "web", webSecret)
	}
	// Make the API a confidential client on the fly is not possible; use
	// the store directly, exactly as introspection does.
	revoked, err := f.iss.accessTokenRevoked(context.Background(), c["jti"].(string))
	if err != nil {
		f.t.Fatal(err)
	}
	return map[string]any{"active": !revoked}
}

func TestToken_RefreshBoundToItsClient(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("spa", spaRedirect, "")
	if r := f.token(refreshForm(tr.resp.RefreshToken), "guarded", ""); r.err.Code != "invalid_grant" {
		t.Fatalf("refresh by another client: %v", r.raw)
	}
	// Presenting it elsewhere means it leaked: its family is revoked.
	if r := f.token(refreshForm(tr.resp.RefreshToken), "spa", ""); r.err.Code != "invalid_grant" {
		t.Fatalf("leaked refresh token still usable: %v", r.raw)
	}
}

func TestToken_NoRefreshWithoutClientAuthForConfidentialClients(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", ""); r.status != 401 || r.err.Code != "invalid_client" {
		t.Fatalf("%d %v", r.status, r.raw)
	}
	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("with auth: %v", r.raw)
	}
}

func TestToken_ClientCredentialsOnlyForConfidentialClientsAllowedThatGrant(t *testing.T) {
	f := newFixture(t)
	if r := f.token(urlValues("grant_type", "client_credentials"), "spa", ""); r.err.Code != "unauthorized_client" {
		t.Fatalf("public: %v", r.raw)
	}
	if r := f.token(urlValues("grant_type", "client_credentials"), "web", webSecret); r.err.Code != "unauthorized_client" {
		t.Fatalf("confidential without the grant: %v", r.raw)
	}
	r := f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	if r.status != 200 || r.resp.RefreshToken != "" || r.resp.IDToken != "" {
		t.Fatalf("service: %v", r.raw)
	}
	_, c := claims(t, r.resp.AccessToken)
	// gty marks a client's own token, so gates can tell it from a user's.
	if c["sub"] != "service" || c["client_id"] != "service" || c["gty"] != "client_credentials" {
		t.Fatalf("claims %v", c)
	}
}

func TestToken_ClientCredentialsScopesLimitedToTheClients(t *testing.T) {
	f := newFixture(t)
	if r := f.token(urlValues("grant_type", "client_credentials", "scope", "orders:read admin"), "service", serviceSecret); r.err.Code != "invalid_scope" {
		t.Fatalf("%v", r.raw)
	}
	r := f.token(urlValues("grant_type", "client_credentials", "scope", "orders:read"), "service", serviceSecret)
	_, c := claims(t, r.resp.AccessToken)
	if c["scope"] != "orders:read" || r.resp.Scope != "orders:read" {
		t.Fatalf("%v", c)
	}
	r = f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	if _, c := claims(t, r.resp.AccessToken); c["scope"] != "orders:read orders:write" {
		t.Fatalf("default scope %v", c["scope"])
	}
}

func TestToken_ClientCredentialsAudienceFromConfigOrResource(t *testing.T) {
	f := newFixture(t)
	r := f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	_, c := claims(t, r.resp.AccessToken)
	if aud, ok := c["aud"].([]any); !ok || len(aud) != 2 || aud[0] != apiAudience {
		t.Fatalf("aud %v", c["aud"])
	}
	r = f.token(urlValues("grant_type", "client_credentials", "resource", otherAudience), "service", serviceSecret)
	if _, c := claims(t, r.resp.AccessToken); c["aud"] != otherAudience {
		t.Fatalf("aud with resource %v", c["aud"])
	}
	if r := f.token(urlValues("grant_type", "client_credentials", "resource", "https://evil.example.com"), "service", serviceSecret); r.err.Code != "invalid_target" {
		t.Fatalf("foreign resource: %v", r.raw)
	}
	r = f.token(urlValues("grant_type", "client_credentials"), "lonely-service", serviceSecret)
	if _, c := claims(t, r.resp.AccessToken); c["aud"] != "lonely-service" {
		t.Fatalf("aud without audiences %v", c["aud"])
	}
}

func TestToken_MalformedOrOversizedRequestsAreClean400s(t *testing.T) {
	f := newFixture(t)
	do := func(method, ct, payload string) (int, string) {
		req, _ := http.NewRequest(method, f.url+"/token", strings.NewReader(payload))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.SetBasicAuth("service", serviceSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body(t, resp)
	}
	cases := []struct {
		name, method, ct, body string
		status                 int
	}{
		{"json body", "POST", "application/json", `{"grant_type":"client_credentials"}`, 400},
		{"no content type", "POST", "", "grant_type=client_credentials", 400},
		{"oversized", "POST", "application/x-www-form-urlencoded", "grant_type=client_credentials&x=" + strings.Repeat("a", maxFormBytes), 400},
		{"bad escape", "POST", "application/x-www-form-urlencoded", "grant_type=%zz", 400},
		{"repeated grant_type", "POST", "application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=client_credentials", 400},
		{"missing grant_type", "POST", "application/x-www-form-urlencoded", "scope=x", 400},
		{"GET", "GET", "", "", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := do(c.method, c.ct, c.body)
			if status != c.status || !strings.Contains(b, `"error":"invalid_request"`) {
				t.Fatalf("%d %s", status, b)
			}
		})
	}
	t.Run("basic and post together", func(t *testing.T) {
		status, b := do("POST", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_secret=x")
		if status != 400 || !strings.Contains(b, "invalid_request") {
			t.Fatalf("%d %s", status, b)
		}
	})
}

func TestToken_ExchangeInProcessUsesTheSameCodePath(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	rp, err := f.iss.RelyingParty("web")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rp.Exchange(context.Background(), code, testVerifier, webRedirect)
	if err != nil || resp.AccessToken == "" || resp.IDToken == "" {
		t.Fatalf("%v %v", resp, err)
	}
	var oe *OAuthError
	if _, err = rp.Exchange(context.Background(), code, testVerifier, webRedirect); !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("replay via Exchange: %v", err)
	}
	// Trusted as the client it names, not beyond it: a grant the client may
	// not use is refused, and an unknown client has no relying party.
	svc, err := f.iss.RelyingParty("service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exchange(context.Background(), f.code(f.browser(), authParams("web", webRedirect)), testVerifier, webRedirect); !errors.As(err, &oe) || oe.Code != "unauthorized_client" {
		t.Fatalf("a client without the code grant: %v", err)
	}
	if _, err := f.iss.RelyingParty("nope"); err == nil {
		t.Fatal("a relying party for an unknown client")
	}
}

func TestToken_CORSForRegisteredOrigins(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodOptions, f.url+"/token", nil)
	req.Header.Set("Origin", "http://127.0.0.1:9999")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:9999" {
		t.Fatalf("preflight headers %v", resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("unregistered origin allowed")
	}
}

// TestLocalRP_ReturnsTheClaimsItMinted: the embedded gate's relying party
// gets the claims as the issuer signed them — the ID token's, plus the
// access token's that describe the user — and the access token's jti, with
// no token decoded.
func TestLocalRP_ReturnsTheClaimsItMinted(t *testing.T) {
	f := newFixture(t)
	p := authParams("web", webRedirect)
	code := f.code(f.browser(), p)
	rp, err := f.iss.RelyingParty("web")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rp.Exchange(context.Background(), code, testVerifier, webRedirect)
	if err != nil {
		t.Fatal(err)
	}
	_, at := claims(t, got.AccessToken)
	_, id := claims(t, got.IDToken)
	if got.AccessTokenID == "" || got.AccessTokenID != at["jti"] {
		t.Fatalf("AccessTokenID %q, the token's jti %v", got.AccessTokenID, at["jti"])
	}
	if got.Subject != "u-alice" || got.Issuer != f.url || got.Nonce != "n-456" {
		t.Fatalf("sub %q iss %q nonce %q", got.Subject, got.Issuer, got.Nonce)
	}
	for k, v := range id {
		if fmt.Sprint(got.Claims[k]) != fmt.Sprint(v) {
			t.Errorf("claim %s = %v, the ID token says %v", k, got.Claims[k], v)
		}
	}
	// The access token's user claims are merged; what describes the access
	// token itself is not.
	if fmt.Sprint(got.Claims["role"]) != "[admin]" || got.Claims["scope"] != at["scope"] || got.Claims["client_id"] != "web" {
		t.Fatalf("access-token claims not merged: %v", got.Claims)
	}
	if got.Claims["jti"] != nil || got.Claims["exp"] != id["exp"] || got.Claims["aud"] != "web" {
		t.Fatalf("token-only claims of the access token leaked in: %v", got.Claims)
	}
	if want := f.clock.Now().Add(time.Hour); !got.Expiry.Equal(want) {
		t.Fatalf("Expiry %v, want %v", got.Expiry, want)
	}
	// A refresh returns the same shape, with a rotated refresh token.
	again, err := rp.Refresh(context.Background(), got.RefreshToken)
	if err != nil || again.RefreshToken == got.RefreshToken || again.Subject != "u-alice" || again.Claims["department"] != "research" {
		t.Fatalf("refresh: %+v %v", again, err)
	}
}
