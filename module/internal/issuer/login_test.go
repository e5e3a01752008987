package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// magicMethod stands in for a future login method (magic link): it signs
// in whoever presents the right one-time value.
type magicMethod struct{ domain *identity.Domain }

func (magicMethod) Name() string                  { return "magic" }
func (magicMethod) Offered(*identity.Client) bool { return true }
func (m magicMethod) Authenticate(_ context.Context, form url.Values) (*identity.User, error) {
	if form.Get("magic") != "open-sesame" {
		return nil, errors.New("bad magic")
	}
	return m.domain.UserBySubject("u-bob"), nil
}

func TestLogin_PluggableMethodSignsIn(t *testing.T) {
	f := newFixture(t, withConfig(func(c *Config, d *identity.Domain) { c.LoginMethods = []LoginMethod{magicMethod{d}} }))
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(c, loc.String())))
	form.Set("method", "magic")
	form.Set("magic", "wrong")
	resp, _ := c.PostForm(f.url+"/login", form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong magic: %d", resp.StatusCode)
	}
	form.Set("magic", "open-sesame")
	resp, _ = c.PostForm(f.url+"/login", form)
	code := location(t, resp).Query().Get("code")
	tr := f.token(codeForm(code, spaRedirect), "spa", "")
	if _, id := claims(t, tr.resp.IDToken); id["sub"] != "u-bob" {
		t.Fatalf("signed in as %v", id["sub"])
	}
}

func TestLogin_CompleteLoginForRedirectBasedMethods(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	sealed := loc.Query().Get("req")
	// e.g. a federated callback arrives with the sealed request it carried.
	w := httptest.NewRecorder()
	f.iss.CompleteLogin(w, httptest.NewRequest(http.MethodGet, "/callback", nil), sealed, f.domain.UserBySubject("u-alice"), []string{"fed"})
	got, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || got.Query().Get("code") == "" || got.Query().Get("state") != "st-123" {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	f.iss.CompleteLogin(w, httptest.NewRequest(http.MethodGet, "/callback", nil), "forged", f.domain.UserBySubject("u-alice"), []string{"fed"})
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
		t.Fatalf("forged request: %d", w.Code)
	}
	// A disabled user is refused.
	w = httptest.NewRecorder()
	f.iss.CompleteLogin(w, httptest.NewRequest(http.MethodGet, "/callback", nil), sealed, f.domain.UserBySubject("u-carol"), []string{"fed"})
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
		t.Fatalf("disabled user: %d", w.Code)
	}
}
