package issuer

import (
	"net/url"
	"testing"
	"time"
)

// TestOwnTokens_ExpiredHintsStillSayWhose: the issuer's own checks go
// through the gate's validator, with what its endpoints need: an expired
// ID token is still a valid id_token_hint (the user signs out without
// being asked), and an expired access token can still be revoked; but
// userinfo refuses it, and a forged signature is refused everywhere.
func TestOwnTokens_ExpiredHintsStillSayWhose(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	tr := f.token(codeForm(f.code(c, authParams("web", webRedirect)), webRedirect), "web", webSecret)
	f.clock.Advance(2 * time.Hour) // both tokens expired an hour ago (the SSO session lives on)

	forged := tr.resp.IDToken[:len(tr.resp.IDToken)-6] + "AAAAAA"
	assertErrorPage(t, f.get(c, f.url+"/logout?"+url.Values{"id_token_hint": {forged}}.Encode()), "")

	if resp := f.post("/revoke", url.Values{"token": {tr.resp.AccessToken}}, "web", webSecret); resp.StatusCode != 200 {
		t.Fatalf("revoking an expired access token: %d", resp.StatusCode)
	}
	if !f.auditHasReason(evRevoke, "access token revoked") {
		t.Fatal("the expired access token was not recognised as the client's")
	}

	q := url.Values{"id_token_hint": {tr.resp.IDToken}, "post_logout_redirect_uri": {webPostLogout}}
	if loc := location(t, f.get(c, f.url+"/logout?"+q.Encode())); loc.String() != webPostLogout {
		t.Fatalf("an expired id_token_hint did not end the session at once: %s", loc)
	}
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	assertRedirectError(t, f.get(c, f.authorizeURL(p)), webRedirect, "login_required", "st-123")
}

// auditHasReason reports whether an audit entry of event has reason.
func (f *fixture) auditHasReason(event, reason string) bool {
	for _, e := range f.audit.All() {
		m := e.ContextMap()
		if m["event"] == event && m["reason"] == reason {
			return true
		}
	}
	return false
}
