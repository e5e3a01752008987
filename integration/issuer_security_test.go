package integration

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
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
