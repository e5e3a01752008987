package issuer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory/dirtest"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dirtest.RemoveTemplates()
	os.Exit(code)
}

// The token endpoint with a large directory: the configuration's domain
// "bench" layered over a store that holds, in the same domain, 10,000
// users and 1,000 clients (as a management API would have stored them),
// against the same requests over an empty store. Both run as sub-benchmarks
// of one benchmark, in one process, so their ratio means something. The
// stored-client and stored-user cases use one of the 1,000 clients and
// one of the 10,000 users instead of the configuration's.
//
// Run: go test ./module/internal/issuer -run '^$' -bench DirectorySize -benchmem

var bigDirectory = dirtest.Spec{Domain: "bench", Issuer: "https://auth.bench.example/bench", Users: 10000, Clients: 1000}

// benchDirectoryFixture starts the issuer of domain "bench" over the store
// at path (empty, or a copy of bigDirectory), with the directory the app
// builds: the configuration's over the store's.
func benchDirectoryFixture(b *testing.B, seeded bool) *fixture {
	b.Helper()
	path := b.TempDir() + "/gatehouse.db"
	if seeded {
		path = dirtest.SQLite(b, bigDirectory)
	}
	f := newFixtureAt(b, path, withConfig(func(c *Config, d *identity.Domain) {
		d.Name, c.Domain = bigDirectory.Domain, bigDirectory.Domain
		static, err := directory.NewStatic(directory.StaticDomain{Domain: d, Policies: fixturePolicies})
		if err != nil {
			b.Fatal(err)
		}
		stored := directory.NewStored(c.Store.(directory.StoreDirectory), func(err error) { b.Fatal(err) })
		if err := stored.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		c.Directory = directory.NewLayered(static, stored)
	}))
	snap, err := f.iss.dir.Snapshot(context.Background(), bigDirectory.Domain)
	if err != nil {
		b.Fatal(err)
	}
	want := len(f.domain.Clients)
	if seeded {
		want += bigDirectory.Clients
	}
	if got := len(snap.Clients()); got != want {
		b.Fatalf("the domain has %d clients, want %d", got, want)
	}
	return f
}

// BenchmarkDirectorySize_ClientCredentials: one client_credentials token
// (client authentication, scope and audience checks, an RS256 signature).
func BenchmarkDirectorySize_ClientCredentials(b *testing.B) {
	empty, big := benchDirectoryFixture(b, false), benchDirectoryFixture(b, true)
	for _, tc := range []struct {
		name           string
		f              *fixture
		client, secret string
	}{
		{"store=empty/config-client", empty, "service", serviceSecret},
		{"store=10k-users-1k-clients/config-client", big, "service", serviceSecret},
		{"store=10k-users-1k-clients/stored-client", big, dirtest.ClientID(501), dirtest.ClientSecret},
	} {
		b.Run(tc.name, func(b *testing.B) {
			form := urlValues("grant_type", "client_credentials", "scope", "orders:read").Encode()
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth(tc.client, tc.secret)
				w := httptest.NewRecorder()
				tc.f.iss.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDirectorySize_AuthorizeToken: a signed-in browser (SSO session)
// authorizes and the client redeems the code, as
// BenchmarkAuthorizeTokenRoundTrip.
func BenchmarkDirectorySize_AuthorizeToken(b *testing.B) {
	empty, big := benchDirectoryFixture(b, false), benchDirectoryFixture(b, true)
	for _, tc := range []struct {
		name                     string
		f                        *fixture
		login, password          string
		client, secret, redirect string
	}{
		{"store=empty/config-user-and-client", empty, "alice", alicePassword, "spa", "", spaRedirect},
		{"store=10k-users-1k-clients/config-user-and-client", big, "alice", alicePassword, "spa", "", spaRedirect},
		{"store=10k-users-1k-clients/stored-user-and-client", big, dirtest.UserLogin(4242), dirtest.Password, dirtest.ClientID(500), dirtest.ClientSecret, dirtest.ClientRedirect(500)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f
			c := f.browser()
			p := authParams(tc.client, tc.redirect)
			p.Set("scope", "openid profile email")
			if loc := f.signIn(c, p, tc.login, tc.password); loc.Query().Get("code") == "" { // the SSO session
				b.Fatalf("sign-in: %s", loc)
			}
			u, _ := url.Parse(f.url)
			cookies := c.Jar.Cookies(u)
			authz := "/authorize?" + p.Encode()
			b.ReportAllocs()
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
				form := codeForm(loc.Query().Get("code"), tc.redirect)
				if tc.secret == "" {
					form.Set("client_id", tc.client)
				}
				tr := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
				tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.secret != "" {
					tr.SetBasicAuth(tc.client, tc.secret)
				}
				w = httptest.NewRecorder()
				f.iss.ServeHTTP(w, tr)
				if w.Code != 200 {
					b.Fatalf("token: %d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
		})
	}
}
