package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// testPassword and its bcrypt hash (cost 4 keeps tests fast; production
// hashes from `caddy hash-password` use cost 14).
const testPassword = "correct horse battery staple"

func bcryptHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

type issuerEnv struct {
	issuer   string
	rpPort   int
	redirect string
	dir      string
}

// issuerCaddyfile is a domain with alice, a confidential web client, a
// public client, a service client and a policy-guarded client.
func issuerCaddyfile(t testing.TB, env *issuerEnv, extra string) string {
	return fmt.Sprintf(`{
	log audit {
		output file %s
		include gatehouse.audit
		format json
	}
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
			user alice {
				name "Alice Liddell"
				email alice@example.com
				password_hash %s
				claims {
					groups admins dev
				}
				access_claims {
					role admin
				}
			}
			user mallory {
				email mallory@example.com
				password_hash %s
				claims {
					groups guests
				}
			}
			client webapp {
				secret webapp-secret-0123456789abcdef
				redirect_uris %s
				post_logout_redirect_uris %s/bye
				scopes openid profile email offline_access orders:read
				audience https://api.example.com
			}
			client spa {
				redirect_uris %s
				scopes openid profile email
			}
			client service {
				secret service-secret-0123456789abcdef
				grant_types client_credentials
				scopes orders:read orders:write
				audience https://api.example.com https://billing.example.com
			}
			client admin-console {
				secret admin-secret-0123456789abcdef
				redirect_uris %s
				policies admins-only
			}
			policy admins-only {
				all {
					rule {
						claim groups
						in admins
					}
				}
			}
			policy api-admins {
				description "Access tokens with the admin role"
				all {
					rule {
						claim role
						in admin
					}
				}
			}
		}
	}
}

%s {
	gatehouse_issuer
}
%s`, filepath.Join(env.dir, "audit.log"), filepath.Join(env.dir, "gatehouse.db"), env.issuer, bcryptHash(t, testPassword), bcryptHash(t, testPassword),
		env.redirect, strings.TrimSuffix(env.redirect, "/cb"), env.redirect, env.redirect, env.issuer, extra)
}

func newIssuerEnv(t testing.TB) *issuerEnv {
	env := &issuerEnv{dir: t.TempDir(), rpPort: freePort(t)}
	env.issuer = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	env.redirect = fmt.Sprintf("http://127.0.0.1:%d/cb", env.rpPort)
	return env
}

var hiddenField = regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)

func randomString(t testing.TB) string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// codeFlow is a finished authorization code + PKCE sign-in at an issuer
// found by discovery: its browser (holding the SSO session), the client's
// configuration and verifier, and the tokens, the ID token verified.
type codeFlow struct {
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
	verifier string
	browser  *http.Client
	tok      *oauth2.Token
	idToken  *oidc.IDToken
}

// signInCodeFlow signs login in at issuer with a confidential client asking
// for openid, email and offline_access, and checks what comes back: a code
// exchanged with its verifier, an ID token that verifies with the nonce, and
// a refresh token.
func signInCodeFlow(t testing.TB, issuer, clientID, secret, redirect, login, password, nonce string) *codeFlow {
	t.Helper()
	f := &codeFlow{ctx: oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second}), verifier: oauth2.GenerateVerifier(), browser: browser(t)}
	var err error
	if f.provider, err = oidc.NewProvider(f.ctx, issuer); err != nil {
		t.Fatalf("discovery of %s: %v", issuer, err)
	}
	f.conf = oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: f.provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "offline_access"}}
	back := signIn(t, f.browser, f.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(nonce)), login, password)
	if f.tok, err = f.conf.Exchange(f.ctx, back.Query().Get("code"), oauth2.VerifierOption(f.verifier)); err != nil {
		t.Fatalf("code exchange (callback %s): %v", back, err)
	}
	raw, _ := f.tok.Extra("id_token").(string)
	if f.idToken, err = f.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(f.ctx, raw); err != nil || f.idToken.Nonce != nonce {
		t.Fatalf("ID token: %v, %+v", err, f.idToken)
	}
	if f.tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return f
}

// signIn follows authURL through the login form as a browser would and
// returns the redirect back to the client (with code or error).
func signIn(t testing.TB, c *http.Client, authURL, login, password string) *url.URL {
	t.Helper()
	// The issuer's own URLs; the trailing slash matters: an issuer on port
	// 4123 must not claim a client callback on port 41234.
	issuerPrefix := strings.Split(authURL, "/authorize")[0] + "/"
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := 0; i < 5 && (resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther); i++ {
		loc, _ := resp.Location()
		if !strings.HasPrefix(loc.String(), issuerPrefix) {
			return loc // back at the client: signed in silently
		}
		if resp, err = c.Get(loc.String()); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			break
		}
		resp.Body.Close()
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("expected the login page, got %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"login": {login}, "password": {password}, "method": {"pwd"}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	if form.Get("csrf") == "" {
		t.Fatalf("login page has no CSRF field:\n%s", body)
	}
	post, err := c.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusFound && post.StatusCode != http.StatusSeeOther {
		t.Fatalf("login POST: status %d", post.StatusCode)
	}
	loc, err := post.Location()
	if err != nil {
		t.Fatal(err)
	}
	// The issuer may pass through its authorize endpoint once more.
	for i := 0; i < 3 && strings.HasPrefix(loc.String(), issuerPrefix); i++ {
		r, err := c.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if loc, err = r.Location(); err != nil {
			t.Fatalf("expected a redirect, got %d", r.StatusCode)
		}
	}
	return loc
}

func TestIssuer_CompleteFlowWithStandardClients(t *testing.T) {
	env := newIssuerEnv(t)
	startCaddy(t, issuerCaddyfile(t, env, ""))
	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})

	// Discovery with go-oidc: the issuer must equal the URL prefix exactly.
	provider, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Revocation    string `json:"revocation_endpoint"`
		Introspection string `json:"introspection_endpoint"`
		EndSession    string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.Revocation == "" || meta.Introspection == "" || meta.EndSession == "" {
		t.Fatalf("discovery lacks endpoints: %+v %v", meta, err)
	}

	conf := oauth2.Config{
		ClientID:     "webapp",
		ClientSecret: "webapp-secret-0123456789abcdef",
		Endpoint:     provider.Endpoint(),
		RedirectURL:  env.redirect,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "offline_access", "orders:read"},
	}
	verifier := oauth2.GenerateVerifier()
	state, nonce := randomString(t), randomString(t)
	b := browser(t)
	back := signIn(t, b, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), "alice", testPassword)
	q := back.Query()
	if q.Get("state") != state || q.Get("iss") != env.issuer || q.Get("code") == "" {
		t.Fatalf("callback %s: want state, iss=%s and a code", back, env.issuer)
	}

	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "webapp"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token verification: %v", err)
	}
	var idClaims struct {
		Nonce    string   `json:"nonce"`
		Email    string   `json:"email"`
		AuthTime int64    `json:"auth_time"`
		AtHash   string   `json:"at_hash"`
		Groups   []string `json:"groups"`
	}
	if err := idt.Claims(&idClaims); err != nil {
		t.Fatal(err)
	}
	t.Logf("id claims %+v; sub %s", idClaims, idt.Subject)
	if idClaims.Nonce != nonce || idClaims.Email != "alice@example.com" || idClaims.AuthTime == 0 || idClaims.AtHash == "" {
		t.Fatalf("ID token claims: %+v", idClaims)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash does not match the access token: %v", err)
	}

	// Userinfo: sub equals the ID token's.
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "alice@example.com" {
		t.Fatalf("userinfo sub %q email %q, ID token sub %q", ui.Subject, ui.Email, idt.Subject)
	}

	// Refresh with rotation.
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token issued")
	}
	old := tok.RefreshToken
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == old || fresh.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the refresh token and issue a new access token")
	}

	// Introspection (client-authenticated) says the new access token is active.
	if got := introspect(t, provider, meta.Introspection, "webapp", "webapp-secret-0123456789abcdef", fresh.AccessToken); got["active"] != true || got["sub"] != idt.Subject {
		t.Fatalf("introspection: %v", got)
	}

	// Revocation (RFC 7009) of the refresh token ends the family: the
	// access token issued with it is no longer active.
	resp := postForm(t, meta.Revocation, "webapp", "webapp-secret-0123456789abcdef", url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %d", resp.StatusCode)
	}
	if got := introspect(t, provider, meta.Introspection, "webapp", "webapp-secret-0123456789abcdef", fresh.AccessToken); got["active"] != false {
		t.Fatalf("access token still active after its family was revoked: %v", got)
	}
	refreshed := *fresh
	refreshed.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(ctx, &refreshed).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("revoked refresh token still works: %v", err)
	}

	// Client credentials.
	cc := clientcredentials.Config{ClientID: "service", ClientSecret: "service-secret-0123456789abcdef", TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"orders:read"}}
	svc, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	claims := jwtClaims(t, svc.AccessToken)
	if claims["client_id"] != "service" || claims["scope"] != "orders:read" {
		t.Fatalf("client_credentials access token claims: %v", claims)
	}
	// Scopes beyond the client's are refused.
	cc.Scopes = []string{"admin"}
	if _, err := cc.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Fatalf("scope beyond the client's: %v", err)
	}

	// SSO: a second client signs in silently with the issuer's session.
	spa := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid", "email"}}
	v2 := oauth2.GenerateVerifier()
	resp2, err := b.Get(spa.AuthCodeURL("s2", oauth2.S256ChallengeOption(v2), oidc.Nonce("n2")))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	loc, _ := resp2.Location()
	if loc == nil || !strings.HasPrefix(loc.String(), env.redirect) || loc.Query().Get("code") == "" {
		t.Fatalf("second client was not signed in silently: %d %v", resp2.StatusCode, loc)
	}
	if _, err := spa.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(v2)); err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
}

func TestIssuer_CodeReuseRevokesTokensAndPolicyDenies(t *testing.T) {
	env := newIssuerEnv(t)
	startCaddy(t, issuerCaddyfile(t, env, ""))
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	back := signIn(t, browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice@example.com", testPassword)
	code := back.Query().Get("code")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second use of a code: %v", err)
	}
	var meta struct {
		Introspection string `json:"introspection_endpoint"`
	}
	provider.Claims(&meta)
	if got := introspect(t, provider, meta.Introspection, "webapp", "webapp-secret-0123456789abcdef", tok.AccessToken); got["active"] != false {
		t.Fatalf("tokens issued from a replayed code stay active: %v", got)
	}

	// A client whose policy the user does not satisfy: access_denied.
	admin := oauth2.Config{ClientID: "admin-console", ClientSecret: "admin-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid"}}
	v := oauth2.GenerateVerifier()
	denied := signIn(t, browser(t), admin.AuthCodeURL("st2", oauth2.S256ChallengeOption(v)), "mallory", testPassword)
	if denied.Query().Get("error") != "access_denied" || denied.Query().Get("code") != "" || denied.Query().Get("state") != "st2" {
		t.Fatalf("policy denial: %s", denied)
	}
	// And one who does, signs in.
	ok := signIn(t, browser(t), admin.AuthCodeURL("st3", oauth2.S256ChallengeOption(v)), "alice", testPassword)
	if ok.Query().Get("code") == "" {
		t.Fatalf("alice should satisfy admins-only: %s", ok)
	}

	// Unregistered redirect_uri: an error page, never a redirect.
	bad := admin
	bad.RedirectURL = env.redirect + "/../evil"
	resp, err := browser(t).Get(bad.AuthCodeURL("x", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("unregistered redirect_uri: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestIssuer_ReloadKeepsSessionsAndKeys(t *testing.T) {
	env := newIssuerEnv(t)
	cf := issuerCaddyfile(t, env, "")
	startCaddy(t, cf)
	ctx := context.Background()
	jwks1 := getJSON(t, env.issuer+"/jwks")
	provider, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid"}}
	b := browser(t)
	v := oauth2.GenerateVerifier()
	if back := signIn(t, b, conf.AuthCodeURL("a", oauth2.S256ChallengeOption(v)), "alice", testPassword); back.Query().Get("code") == "" {
		t.Fatal("sign-in failed")
	}

	// caddy reload with the same state: same keys, the SSO session survives.
	reloadCaddy(t, cf)
	resp := getAfterReload(t, http.DefaultClient, env.issuer+"/jwks")
	var jwks2 map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&jwks2); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if fmt.Sprint(jwks1) != fmt.Sprint(jwks2) {
		t.Fatalf("signing keys changed across a reload:\n%v\n%v", jwks1, jwks2)
	}
	resp = getAfterReload(t, b, conf.AuthCodeURL("b", oauth2.S256ChallengeOption(v)))
	resp.Body.Close()
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("the SSO session did not survive the reload: %d %v", resp.StatusCode, loc)
	}
}

// getAfterReload GETs u, retrying transport errors for a moment: Caddy shuts
// the old servers down in the background after a reload, and a connection
// the old server accepted in that instant is reset.
func getAfterReload(t testing.TB, c *http.Client, u string) *http.Response {
	t.Helper()
	var err error
	for range 20 {
		var resp *http.Response
		if resp, err = c.Get(u); err == nil {
			return resp
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s after the reload: %v", u, err)
	return nil
}

func introspect(t testing.TB, _ *oidc.Provider, endpoint, id, secret, token string) map[string]any {
	t.Helper()
	resp := postForm(t, endpoint, id, secret, url.Values{"token": {token}})
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspection answer: %v", err)
	}
	return out
}

func postForm(t testing.TB, endpoint, id, secret string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getJSON(t testing.TB, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return out
}

func jwtClaims(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forwardedFor makes a client look like it comes through a proxy for addr.
type forwardedFor struct {
	addr string
	rt   http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.rt.RoundTrip(r)
}

// TestIssuer_LoginThrottleCountsPerClientBehindTrustedProxies: behind a load
// balancer every sign-in arrives from the balancer's address. With the
// balancer in the server's trusted_proxies, throttling counts per the real
// client (Caddy's client IP), so one guesser cannot lock everyone out.
func TestIssuer_LoginThrottleCountsPerClientBehindTrustedProxies(t *testing.T) {
	env := newIssuerEnv(t)
	cf := strings.Replace(issuerCaddyfile(t, env, ""), "\tgatehouse {\n", "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n\tgatehouse {\n", 1)
	startCaddy(t, cf)
	provider, err := oidc.NewProvider(context.Background(), env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid"}}
	from := func(addr string) *http.Client {
		c := browser(t)
		c.Transport = forwardedFor{addr, http.DefaultTransport}
		return c
	}
	attempt := func(c *http.Client, password string) int {
		t.Helper()
		return loginAttempt(t, c, conf, "alice", password)
	}
	guesser := from("203.0.113.7")
	for i := range 5 {
		if got := attempt(guesser, "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, got)
		}
	}
	if got := attempt(guesser, testPassword); got != http.StatusTooManyRequests {
		t.Fatalf("the guesser's address is not throttled: %d", got)
	}
	// Alice, at another address behind the same balancer, signs in.
	if got := attempt(from("198.51.100.20"), testPassword); got != http.StatusFound && got != http.StatusSeeOther {
		t.Fatalf("alice from another client address: %d; the throttle counted the balancer's address", got)
	}
}
