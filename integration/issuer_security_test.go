package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// loginAttempt starts a sign-in of conf's client in browser c, posts the
// login form once with login and password and returns the status.
func loginAttempt(t *testing.T, c *http.Client, conf oauth2.Config, login, password string) int {
	t.Helper()
	resp, err := c.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	if resp, err = c.Get(loc.String()); err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"login": {login}, "password": {password}, "method": {"pwd"}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	post, err := c.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	return post.StatusCode
}

// TestIssuer_ThrottleCountsPerAccountNotPerSpelling (issue 8, item 7): five
// failed guesses as alice@example.com locked only that string; "ALICE" (the
// same account by username, another case) still got a password check, so a
// guesser could multiply the limit by the spellings of one account. Failures
// now count per resolved account.
func TestIssuer_ThrottleCountsPerAccountNotPerSpelling(t *testing.T) {
	env := newIssuerEnv(t)
	startCaddy(t, issuerCaddyfile(t, env, ""))
	provider, err := oidc.NewProvider(context.Background(), env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid"}}
	c := browser(t)
	for i := range 5 {
		if got := loginAttempt(t, c, conf, "alice@example.com", "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, got)
		}
	}
	for _, spelling := range []string{"ALICE", "alice", "Alice@Example.com"} {
		if got := loginAttempt(t, c, conf, spelling, testPassword); got != http.StatusTooManyRequests {
			t.Fatalf("%q after five failures as alice@example.com: %d, want 429 (no password check)", spelling, got)
		}
	}
	// Another account from the same address still signs in.
	if got := loginAttempt(t, c, conf, "mallory", testPassword); got != http.StatusFound && got != http.StatusSeeOther {
		t.Fatalf("mallory after alice was throttled: %d", got)
	}
}

// TestIssuer_RevocationDuringStoreOutageIs503 (issue 8, item 12): with the
// database unreachable, the revocation endpoint could not find the refresh
// token, took it for an unknown one and answered 200 — the client believed
// it revoked, and it worked again once the database was back. Here Caddy
// reaches a real PostgreSQL through a proxy the test cuts: revocation (and
// introspection) answer 503 with Retry-After and claim nothing; the token,
// never revoked, still works after the outage; the retried revocation holds.
func TestIssuer_RevocationDuringStoreOutageIs503(t *testing.T) {
	dsn := postgresDSN(t)
	schemaDSN := postgresSchema(t)
	proxy := startTCPProxy(t, postgresTarget(t, dsn))
	t.Setenv("GATEHOUSE_TEST_OUTAGE_DSN", viaProxy(t, schemaDSN, proxy.Addr()))
	env := newIssuerEnv(t)
	cf := issuerCaddyfile(t, env, "")
	cf = strings.Replace(cf, "store sqlite "+filepath.Join(env.dir, "gatehouse.db"), "store postgres {env.GATEHOUSE_TEST_OUTAGE_DSN}", 1)
	startCaddy(t, cf)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	back := signIn(t, browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice", testPassword)
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("code exchange: %v", err)
	}
	const secret = "webapp-secret-0123456789abcdef"
	call := func(path, token string) (int, string, map[string]any) {
		resp := postForm(t, env.issuer+path, "webapp", secret, url.Values{"token": {token}})
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, resp.Header.Get("Retry-After"), m
	}

	proxy.Cut()
	for name, tk := range map[string]string{"refresh token": tok.RefreshToken, "access token": tok.AccessToken} {
		status, retry, m := call("/revoke", tk)
		if status != http.StatusServiceUnavailable || retry == "" || m["error"] != "temporarily_unavailable" {
			t.Fatalf("revoking the %s with the database down: %d (Retry-After %q) %v; want 503 temporarily_unavailable with Retry-After", name, status, retry, m)
		}
	}
	if status, retry, m := call("/introspect", tok.RefreshToken); status != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("introspection with the database down: %d %v; want 503, not a claim about the token", status, m)
	}

	proxy.Restore()
	// The pool notices the closed connections on first use; wait until the
	// store answers again. Nothing was recorded: the token is still active.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, m := call("/introspect", tok.RefreshToken)
		if status == http.StatusOK {
			if m["active"] != true {
				t.Fatalf("after the outage the refresh token is %v; nothing was revoked, so it must be active", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not come back: introspection answers %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	next, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("after the outage the (never revoked) refresh token: %v", err)
	}
	// The client retries, as the 503 told it to: now the revocation holds.
	if status, _, m := call("/revoke", next.RefreshToken); status != http.StatusOK {
		t.Fatalf("revocation after the outage: %d %v", status, m)
	}
	again := *next
	again.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(ctx, &again).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("the revoked refresh token still works: %v", err)
	}
}

// silentSignIn reports whether browser c still has an SSO session at the
// issuer: an authorization request with prompt=none gets a code.
func silentSignIn(t *testing.T, c *http.Client, conf oauth2.Config) bool {
	t.Helper()
	resp, err := c.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("prompt=none: %d", resp.StatusCode)
	}
	return loc.Query().Get("code") != ""
}

var formField = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// TestIssuer_LogoutWithoutHintAsksForConfirmation (issue 8, item 6): any
// site could sign a user out of the issuer by sending the browser to
// /logout — a top-level GET carries the SameSite=Lax session cookie — and it
// happened silently. Without a valid id_token_hint the issuer now shows a
// confirmation page; only its POST, with a CSRF token bound to the browser
// and the session, ends the session.
func TestIssuer_LogoutWithoutHintAsksForConfirmation(t *testing.T) {
	env := newIssuerEnv(t)
	startCaddy(t, issuerCaddyfile(t, env, ""))
	provider, err := oidc.NewProvider(context.Background(), env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{"openid"}}
	b := browser(t)
	signIn(t, b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "alice", testPassword)
	bye := strings.TrimSuffix(env.redirect, "/cb") + "/bye"
	// What a link or redirect on an attacker's page makes the browser do.
	req, _ := http.NewRequest("GET", env.issuer+"/logout?"+url.Values{"client_id": {"webapp"}, "post_logout_redirect_uri": {bye}}.Encode(), nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sign out?") {
		t.Fatalf("cross-site GET /logout without id_token_hint: %d %s; want the confirmation page", resp.StatusCode, page)
	}
	if !silentSignIn(t, b, conf) {
		t.Fatal("a cross-site GET to /logout ended the session")
	}
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	post, err := b.PostForm(env.issuer+"/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if loc, _ := post.Location(); post.StatusCode != http.StatusSeeOther || loc == nil || loc.String() != bye {
		t.Fatalf("confirmed sign-out: %d %v", post.StatusCode, loc)
	}
	if silentSignIn(t, b, conf) {
		t.Fatal("the confirmed sign-out left the session")
	}
}

// TestGate_LogoutEndsTheIssuerSessionWithoutConfirmation: the embedded
// gate keeps no ID token, so its logout sends the issuer a logout_hint the
// issuer sealed for it (EndSessionURLFor); that counts as a valid hint, and
// the user is signed out of the issuer without a confirmation page.
func TestGate_LogoutEndsTheIssuerSessionWithoutConfirmation(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "alice")
	req, _ := http.NewRequest("GET", env.app+"/.gatehouse/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), env.issuer+"/logout?") || loc.Query().Get("logout_hint") == "" {
		t.Fatalf("gate logout: %d %v; want a redirect to the issuer's logout with a logout_hint", resp.StatusCode, loc)
	}
	resp, err = b.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if end, _ := resp.Location(); resp.StatusCode != http.StatusFound || end == nil || end.String() != env.app+"/.gatehouse/signed-out" {
		t.Fatalf("issuer logout with the gate's hint: %d %v; want a redirect back to the gate's signed-out page", resp.StatusCode, end)
	}
	// Signed out of the issuer too: the app sends the browser to the login page.
	resp, _ = do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	authz, _ := resp.Location()
	if authz == nil {
		t.Fatalf("app after logout: %d", resp.StatusCode)
	}
	resp, err = b.Get(authz.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if next, _ := resp.Location(); next == nil || !strings.HasPrefix(next.String(), env.issuer+"/login?") {
		t.Fatalf("after logout the issuer signed the browser in silently: %d %v", resp.StatusCode, next)
	}
}

// TestIssuer_LogoutEndsWhatItStarted (issue 8, item 10): signing out at the
// issuer deleted its SSO session and nothing else — the gate session made
// through it, a partner's refresh token and a code-only client's access
// token all went on working, and the partner was never told. Now the
// issuer's logout revokes the token family of every grant made under the
// session (the gate refuses its cookie at once), and sends each registered
// partner a signed OpenID Connect Back-Channel Logout token, received here
// by a real HTTP endpoint and verified against the issuer's JWKS.
func TestIssuer_LogoutEndsWhatItStarted(t *testing.T) {
	type delivery struct {
		contentType, token string
	}
	received := make(chan delivery, 4)
	partnerRP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- delivery{r.Header.Get("Content-Type"), r.PostFormValue("logout_token")}
	}))
	t.Cleanup(partnerRP.Close)
	partnerCallback := fmt.Sprintf("http://127.0.0.1:%d/partner/cb", freePort(t))
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`, func(cf string) string {
		return strings.Replace(cf, "\t\t\tclient spa {\n", fmt.Sprintf(`			client partner {
				secret partner-secret-0123456789abcdef
				redirect_uris %[1]s
				backchannel_logout_uri %[2]s/backchannel-logout
				backchannel_logout_session_required
			}
			client reports {
				secret reports-secret-0123456789abcdef
				grant_types authorization_code
				redirect_uris %[1]s
			}
			client spa {
`, partnerCallback, partnerRP.URL), 1)
	})
	ctx := context.Background()
	b := loginAs(t, env, "alice")
	json200 := map[string]string{"Accept": "application/json"}
	if resp, _ := do(t, b, "GET", env.app+"/x", json200); resp.StatusCode != 200 {
		t.Fatalf("gate session: %d", resp.StatusCode)
	}
	// Same browser, same SSO session: the partner and a code-only client
	// sign in silently.
	endpoint := oauth2.Endpoint{AuthURL: env.issuer + "/authorize", TokenURL: env.issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	silently := func(conf oauth2.Config) *oauth2.Token {
		t.Helper()
		v := oauth2.GenerateVerifier()
		back := signIn(t, b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), "alice", testPassword)
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("%s: %v", conf.ClientID, err)
		}
		return tok
	}
	partner := oauth2.Config{ClientID: "partner", ClientSecret: "partner-secret-0123456789abcdef", Endpoint: endpoint, RedirectURL: partnerCallback, Scopes: []string{"openid"}}
	partnerTok := silently(partner)
	reportsTok := silently(oauth2.Config{ClientID: "reports", ClientSecret: "reports-secret-0123456789abcdef", Endpoint: endpoint, RedirectURL: partnerCallback, Scopes: []string{"openid"}})
	idToken, _ := partnerTok.Extra("id_token").(string)
	sid, _ := jwtClaims(t, idToken)["sid"].(string)
	if sid == "" || partnerTok.RefreshToken == "" {
		t.Fatalf("partner tokens: sid %q, refresh token issued: %v", sid, partnerTok.RefreshToken != "")
	}

	resp, body := do(t, b, "GET", env.issuer+"/logout?"+url.Values{"id_token_hint": {idToken}}.Encode(), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "signed out") {
		t.Fatalf("issuer logout: %d %s", resp.StatusCode, body)
	}
	// The gate in front of webapp refuses the session at once.
	if resp, _ := do(t, b, "GET", env.app+"/x", json200); resp.StatusCode != 401 {
		t.Fatalf("gate session after signing out at the issuer: %d, want 401", resp.StatusCode)
	}
	// The partner's refresh token and the code-only client's access token are dead.
	expired := *partnerTok
	expired.Expiry = time.Now().Add(-time.Minute)
	if _, err := partner.TokenSource(ctx, &expired).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("partner refresh after logout: %v", err)
	}
	if m := introspect(t, nil, env.issuer+"/introspect", "reports", "reports-secret-0123456789abcdef", reportsTok.AccessToken); m["active"] != false {
		t.Fatalf("code-only client's access token after logout: %v", m)
	}
	// The partner was told, with a token it can verify.
	var d delivery
	select {
	case d = <-received:
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout token within 5s")
	}
	if d.contentType != "application/x-www-form-urlencoded" {
		t.Fatalf("back-channel logout content type %q", d.contentType)
	}
	jws, err := jose.ParseSigned(d.token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Fatalf("logout token typ %v", typ)
	}
	var set jose.JSONWebKeySet
	raw, _ := json.Marshal(getJSON(t, env.issuer+"/jwks"))
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the logout token's kid is not in the issuer's JWKS")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var lt map[string]any
	if err := json.Unmarshal(payload, &lt); err != nil {
		t.Fatal(err)
	}
	events, _ := lt["events"].(map[string]any)
	if lt["iss"] != env.issuer || lt["aud"] != "partner" || lt["sub"] != "alice" || lt["sid"] != sid || lt["jti"] == nil ||
		lt["iat"] == nil || lt["exp"] == nil || lt["nonce"] != nil || events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Fatalf("logout token claims: %v", lt)
	}
}
