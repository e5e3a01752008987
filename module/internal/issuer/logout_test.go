package issuer

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

// signedIn reports whether browser c has a usable SSO session (prompt=none
// gets a code).
func (f *fixture) signedIn(c *http.Client) bool {
	f.t.Helper()
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	resp := f.get(c, f.authorizeURL(p))
	loc := location(f.t, resp)
	resp.Body.Close()
	return loc.Query().Get("code") != ""
}

var logoutFormRe = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// confirmationForm checks that resp is the sign-out confirmation page and
// returns its form fields.
func confirmationForm(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	b := body(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(b, `method="post"`) || !strings.Contains(b, "Sign out?") {
		t.Fatalf("want the sign-out confirmation page, got %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("confirmation page CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
	v := url.Values{}
	for _, m := range logoutFormRe.FindAllStringSubmatch(b, -1) {
		v.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	if v.Get("csrf") == "" {
		t.Fatalf("confirmation page without a CSRF token: %s", b)
	}
	return v
}

// TestLogout_CrossSiteGETWithoutHintAsksForConfirmation (issue 8, item 6): a
// page on any site could end a user's SSO session by sending the browser to
// /logout (a top-level GET carries the SameSite=Lax cookie) — silently. As
// OpenID Connect RP-Initiated Logout asks, a request without a valid
// id_token_hint now gets a confirmation page whose POST carries a CSRF token
// bound to the browser and the session; only that POST ends the session.
func TestLogout_CrossSiteGETWithoutHintAsksForConfirmation(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	f.code(c, authParams("web", webRedirect))
	q := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webPostLogout}, "state": {"bye"}}
	form := confirmationForm(t, f.get(c, f.url+"/logout?"+q.Encode()))
	if !f.signedIn(c) {
		t.Fatal("a GET to /logout without id_token_hint ended the session")
	}
	if form.Get("client_id") != "web" || form.Get("post_logout_redirect_uri") != webPostLogout || form.Get("state") != "bye" {
		t.Fatalf("the confirmation form does not carry the request: %v", form)
	}
	// A cross-site POST without the token (or with another browser's) does
	// not end it either.
	forged := url.Values{"client_id": {"web"}}
	resp, err := c.PostForm(f.url+"/logout", forged)
	if err != nil {
		t.Fatal(err)
	}
	confirmationForm(t, resp)
	other := f.browser()
	f.code(other, authParams("web", webRedirect))
	resp, err = other.PostForm(f.url+"/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another browser's CSRF token: %d, want 403", resp.StatusCode)
	}
	resp.Body.Close()
	if !f.signedIn(c) || !f.signedIn(other) {
		t.Fatal("a POST without this browser's CSRF token ended a session")
	}
	// The user confirms.
	resp, err = c.PostForm(f.url+"/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	if loc := location(t, resp); loc.String() != webPostLogout+"?state=bye" {
		t.Fatalf("after confirming: %s", loc)
	}
	if f.signedIn(c) {
		t.Fatal("the confirmed logout did not end the session")
	}
}

// TestLogout_HintOfAnotherUserIsNotEnough: an attacker's own ID token as
// id_token_hint does not end a victim's session silently.
func TestLogout_HintOfAnotherUserIsNotEnough(t *testing.T) {
	f := newFixture(t)
	attacker := f.browser()
	loc := f.signIn(attacker, authParams("web", webRedirect), "bob", alicePassword)
	tr := f.token(codeForm(loc.Query().Get("code"), webRedirect), "web", webSecret)
	victim := f.browser()
	f.code(victim, authParams("web", webRedirect))
	confirmationForm(t, f.get(victim, f.url+"/logout?"+url.Values{"id_token_hint": {tr.resp.IDToken}}.Encode()))
	if !f.signedIn(victim) {
		t.Fatal("another user's id_token_hint ended the victim's session")
	}
	// The hint's own user signs out without being asked.
	resp := f.get(attacker, f.url+"/logout?"+url.Values{"id_token_hint": {tr.resp.IDToken}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if f.signedIn(attacker) {
		t.Fatal("a matching id_token_hint did not end the session")
	}
}

// TestLogout_EndSessionURLForCountsAsAHint: the embedded gate keeps no ID
// token; the issuer seals a short-lived logout hint for it, bound to client
// and subject, which ends the session without a confirmation page — only
// for that subject, only with that client, only for a few minutes.
func TestLogout_EndSessionURLForCountsAsAHint(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	f.code(c, authParams("web", webRedirect))
	u := f.iss.EndSessionURLFor("web", "u-alice", webPostLogout, "st")
	if !strings.HasPrefix(u, f.url+"/logout?") || strings.Contains(u, "u-alice") {
		t.Fatalf("EndSessionURLFor = %s", u)
	}
	// For another subject: asks.
	confirmationForm(t, f.get(c, f.iss.EndSessionURLFor("web", "u-bob", webPostLogout, "")))
	// Another client_id than the hint's: refused.
	other, _ := url.Parse(u)
	q := other.Query()
	q.Set("client_id", "spa")
	assertErrorPage(t, f.get(c, f.url+"/logout?"+q.Encode()), "")
	// Expired: asks.
	f.clock.Advance(logoutHintLifetime + time.Second)
	confirmationForm(t, f.get(c, u))
	if !f.signedIn(c) {
		t.Fatal("a refused or expired hint ended the session")
	}
	u = f.iss.EndSessionURLFor("web", "u-alice", webPostLogout, "st")
	if loc := location(t, f.get(c, u)); loc.String() != webPostLogout+"?state=st" {
		t.Fatalf("logout with the issuer's hint: %s", loc)
	}
	if f.signedIn(c) {
		t.Fatal("the issuer's own hint did not end the session")
	}
}

// TestLogout_RevokesWhatTheSessionStarted (issue 8, item 10): signing out at
// the issuer deleted the SSO session and nothing else, so every application
// signed in through it — gates in front of the issuer's clients, refresh
// tokens, access tokens of code-only clients — went on as if nothing had
// happened. Logout now revokes the token family of every grant made under
// the session (recorded when the code was issued): refresh tokens stop
// working and access tokens are revoked (OnRevoke tells the gates), while
// another session of the same user is untouched.
func TestLogout_RevokesWhatTheSessionStarted(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	web := f.token(codeForm(f.code(c, authParams("web", webRedirect)), webRedirect), "web", webSecret)
	// A code-only client, signed in silently with the same session.
	legacy := f.token(codeForm(f.code(c, authParams("legacy", webRedirect)), webRedirect), "legacy", webSecret)
	// A code issued now and redeemed after the logout.
	late := f.code(c, authParams("web", webRedirect))
	// The same user in another browser: another session.
	other := f.token(codeForm(f.code(f.browser(), authParams("web", webRedirect)), webRedirect), "web", webSecret)
	for _, tr := range []tokenResult{web, legacy, other} {
		if tr.status != 200 {
			t.Fatalf("sign-in: %d %+v", tr.status, tr.err)
		}
	}
	resp := f.get(c, f.url+"/logout?"+url.Values{"id_token_hint": {web.resp.IDToken}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, b)
	}
	if r := f.token(refreshForm(web.resp.RefreshToken), "web", webSecret); r.err.Code != ErrInvalidGrant {
		t.Fatalf("the refresh token of the ended session still works: %d %+v", r.status, r.err)
	}
	if m := f.introspect(web.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("web's access token of the ended session: %v", m)
	}
	if m := f.introspect(legacy.resp.AccessToken, "legacy", webSecret); m["active"] != false {
		t.Fatalf("the code-only client's access token of the ended session: %v", m)
	}
	if r := f.token(codeForm(late, webRedirect), "web", webSecret); r.err.Code != ErrInvalidGrant {
		t.Fatalf("a code of the ended session redeemed after logout: %d %+v", r.status, r.err)
	}
	f.mu.Lock()
	revoked := append([]revocation.ID(nil), f.revoked...)
	f.mu.Unlock()
	for name, tr := range map[string]tokenResult{"web": web, "legacy": legacy} {
		_, at := claims(t, tr.resp.AccessToken)
		if fam := revocation.ID(at["jti"].(string)).Family(); !slices.Contains(revoked, fam) {
			t.Fatalf("%s's family %s was not published to the gates (OnRevoke): %v", name, fam, revoked)
		}
	}
	if r := f.token(refreshForm(other.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("another session of the same user was ended: %d %+v", r.status, r.err)
	}
	if !f.auditHas(evLogout, outcomeOK) {
		t.Fatal("logout not audited")
	}
}

// TestLogout_HintCarriesATargetOnTheClientsSite: the embedded gate sends the
// browser back to its own signed-out page after logout, a URL the client
// need not register: the issuer's sealed hint names it, and it is accepted
// only on the origin of one of the client's redirect URIs. Anyone else still
// needs an exactly registered URI, and the hint cannot carry a target to
// another site.
func TestLogout_HintCarriesATargetOnTheClientsSite(t *testing.T) {
	const signedOut = "https://web.example.com/.gatehouse/signed-out"
	f := newFixture(t)
	c := f.browser()
	f.code(c, authParams("web", webRedirect))

	// Without the hint (client_id only), the unregistered URI is refused.
	assertErrorPage(t, f.get(c, f.url+"/logout?"+url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {signedOut}}.Encode()), "not registered")
	// A hint sealed for one target does not vouch for another.
	u, _ := url.Parse(f.iss.EndSessionURLFor("web", "u-alice", signedOut, ""))
	q := u.Query()
	q.Set("post_logout_redirect_uri", "https://web.example.com/elsewhere")
	assertErrorPage(t, f.get(c, f.url+"/logout?"+q.Encode()), "not registered")
	// A hint cannot take the browser off the client's site.
	for _, off := range []string{"https://evil.example/.gatehouse/signed-out", "http://web.example.com/.gatehouse/signed-out", "https://web.example.com:8443/x", "https://user@web.example.com/x", "https://web.example.com/x#frag"} {
		assertErrorPage(t, f.get(c, f.iss.EndSessionURLFor("web", "u-alice", off, "")), "not registered")
	}
	if !f.signedIn(c) {
		t.Fatal("a refused logout ended the session")
	}

	// For another subject the user is asked; the form carries the hint, so
	// confirming still lands on the target.
	form := confirmationForm(t, f.get(c, f.iss.EndSessionURLFor("web", "u-bob", signedOut, "")))
	if form.Get("logout_hint") == "" || form.Get("post_logout_redirect_uri") != signedOut {
		t.Fatalf("the confirmation form does not carry the hint and target: %v", form)
	}
	resp, err := c.PostForm(f.url+"/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	if loc := location(t, resp); loc.String() != signedOut {
		t.Fatalf("after confirming: %s", loc)
	}
	if f.signedIn(c) {
		t.Fatal("the confirmed logout did not end the session")
	}

	// The hint's own subject lands there at once.
	f.code(c, authParams("web", webRedirect))
	if loc := location(t, f.get(c, f.iss.EndSessionURLFor("web", "u-alice", signedOut, ""))); loc.String() != signedOut {
		t.Fatalf("logout with the issuer's hint: %s", loc)
	}
	if f.signedIn(c) {
		t.Fatal("the hint did not end the session")
	}
}
