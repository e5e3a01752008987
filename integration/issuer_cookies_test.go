package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestIssuer_TwoIssuersOnOneHostKeepTheirOwnSSOSessions is the regression
// test for issuers overwriting each other's SSO cookie: cookies ignore the
// port (RFC 6265), so two issuers on one host — loopback development, or
// two domains served from different ports — shared the cookie name
// "gatehouse-sso", and signing in at one signed the browser out of the
// other. Each issuer's cookies are now named after its issuer URL.
func TestIssuer_TwoIssuersOnOneHostKeepTheirOwnSSOSessions(t *testing.T) {
	env := newIssuerEnv(t)
	second := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	caddyfile := issuerCaddyfile(t, env, fmt.Sprintf(`
%s {
	gatehouse_issuer tenant2
}`, second))
	// A second domain whose issuer shares the host (another port).
	caddyfile = strings.Replace(caddyfile, "\t\tdomain {", fmt.Sprintf(`		domain tenant2 {
			issuer %s
			user bob {
				password_hash %s
			}
			client spa2 {
				redirect_uris %s
				scopes openid
			}
		}
		domain {`, second, bcryptHash(t, testPassword), env.redirect), 1)
	startCaddy(t, caddyfile)

	b := browser(t)
	authorize := func(issuer, client string) string {
		v := url.Values{
			"response_type": {"code"}, "client_id": {client}, "redirect_uri": {env.redirect}, "scope": {"openid"},
			"state": {randomString(t)}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		}
		return issuer + "/authorize?" + v.Encode()
	}
	// Sign in at the first issuer, then at the second, in one browser.
	if loc := signIn(t, b, authorize(env.issuer, "spa"), "alice", testPassword); loc.Query().Get("code") == "" {
		t.Fatalf("signing in at the first issuer: %v", loc)
	}
	if loc := signIn(t, b, authorize(second, "spa2"), "bob", testPassword); loc.Query().Get("code") == "" {
		t.Fatalf("signing in at the second issuer: %v", loc)
	}
	// Both sessions are still there: each issuer signs in silently.
	for _, c := range []struct{ issuer, client string }{{env.issuer, "spa"}, {second, "spa2"}} {
		resp, err := b.Get(authorize(c.issuer, c.client))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), env.redirect) || loc.Query().Get("code") == "" {
			t.Errorf("%s asked the browser to sign in again (%d %v): the other issuer's sign-in replaced its SSO session", c.issuer, resp.StatusCode, loc)
		}
	}
}
