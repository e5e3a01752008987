package issuer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// withStoreDirectory runs the issuer on the directory the app builds: the
// configuration's over the (empty) store's.
func withStoreDirectory(b *testing.B) fixtureOpt {
	return withConfig(func(c *Config, d *identity.Domain) {
		static, err := directory.NewStatic(directory.StaticDomain{Domain: d, Policies: fixturePolicies})
		if err != nil {
			b.Fatal(err)
		}
		stored := directory.NewStored(c.Store.(directory.StoreDirectory), nil)
		if err := stored.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		c.Directory = directory.NewLayered(static, stored)
	})
}

func benchClientCredentials(b *testing.B, alg string) {
	f := newFixture(b, withAlg(alg), withStoreDirectory(b))
	form := urlValues("grant_type", "client_credentials", "scope", "orders:read").Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("service", serviceSecret)
		w := httptest.NewRecorder()
		f.iss.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkToken_ClientCredentials_RS256(b *testing.B) { benchClientCredentials(b, "RS256") }
func BenchmarkToken_ClientCredentials_ES256(b *testing.B) { benchClientCredentials(b, "ES256") }

// BenchmarkAuthorizeTokenRoundTrip: a signed-in browser (SSO session)
// authorizes and the client redeems the code — code store write, code
// consumption, refresh token write, access + ID token signatures (RS256).
func BenchmarkAuthorizeTokenRoundTrip(b *testing.B) {
	f := newFixture(b, withStoreDirectory(b))
	c := f.browser()
	f.code(c, authParams("spa", spaRedirect)) // establishes the session
	u, _ := url.Parse(f.url)
	cookies := c.Jar.Cookies(u)
	authz := "/authorize?" + authParams("spa", spaRedirect).Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, authz, nil)
		for _, ck := range cookies {
			r.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		f.iss.ServeHTTP(w, r)
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc.Query().Get("code") == "" {
			b.Fatalf("authorize: %d %s", w.Code, w.Header().Get("Location"))
		}
		tr := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(codeForm(loc.Query().Get("code"), spaRedirect).Encode()+"&client_id=spa"))
		tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w = httptest.NewRecorder()
		f.iss.ServeHTTP(w, tr)
		if w.Code != 200 {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
}

// benchSignOnly is the baseline: one signature of a comparable payload, so
// the token endpoint's own cost is the difference.
func benchSignOnly(b *testing.B, alg string) {
	f := newFixture(b, withAlg(alg))
	payload := []byte(`{"iss":"http://127.0.0.1:1","sub":"service","aud":["orders-api","billing-api"],"exp":1,"iat":1,"jti":"aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb","client_id":"service","scope":"orders:read"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.keys.Sign(payload, typAccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignOnly_RS256(b *testing.B) { benchSignOnly(b, "RS256") }
func BenchmarkSignOnly_ES256(b *testing.B) { benchSignOnly(b, "ES256") }

// BenchmarkLoginPage: the login page of a pending authorization request —
// opening the sealed sign-in, sealing it again and rendering the page.
func BenchmarkLoginPage(b *testing.B) {
	f := newFixture(b)
	c := f.browser()
	loc := location(b, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	u, _ := url.Parse(f.url)
	cookies := c.Jar.Cookies(u)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, loc.RequestURI(), nil)
		for _, ck := range cookies {
			r.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		f.iss.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("login page: %d %s", w.Code, w.Body)
		}
	}
}
