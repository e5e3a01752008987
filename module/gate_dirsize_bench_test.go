package module

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory/dirtest"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dirtest.RemoveTemplates()
	os.Exit(code)
}

// The gate's per-request cost with a large directory: the gate's policy is
// read from domain "bench" of the directory the app builds, the
// configuration's over a store that holds, in the same domain, 10,000
// users and 1,000 clients — against the same gate over an empty store, as
// sub-benchmarks of one run. A cached bearer token (one the gate verified
// before) and a browser session (a sealed cookie opened before), each with
// the three-rule policy of gbPolicies. Subtract BenchmarkGate_Harness for
// the gate's share.
//
// Run: go test ./module -run '^$' -bench GateDirectorySize -benchmem

var gateBigDirectory = dirtest.Spec{Domain: "bench", Issuer: "https://auth.bench.gatehouse.test/bench", Users: 10000, Clients: 1000}

// gbDirectory is the directory the app builds for domain "bench" (whose
// configuration defines gbPolicies) over the SQLite store at path.
func gbDirectory(b *testing.B, path string) directory.Directory {
	b.Helper()
	f := gbFixtureFor(b)
	static, err := directory.NewStatic(directory.StaticDomain{Domain: &identity.Domain{DomainSettings: identity.DomainSettings{Name: "bench", Issuer: gbIssuer}}, Policies: f.set})
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	stored := directory.NewStored(st, func(err error) { b.Fatal(err) })
	if err := stored.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return directory.NewLayered(static, stored)
}

// gbSessionGate is gbGate with the policy read from dir, plus a browser
// login whose cookie keys are made here (a session the embedded issuer's
// client "webapp" made), and a cookie of a session of user-7 that the
// gate admits.
func gbSessionGate(b *testing.B, dir directory.Directory) (*Gate, []*http.Cookie) {
	b.Helper()
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{})
	g.Domain, g.Policies = "bench", []string{"api-clients"}
	var err error
	if g.policies, err = newPolicyRef(dir, "bench", g.Policies, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	keys, err := seal.NewKeys([][]byte{bytes.Repeat([]byte{7}, seal.SecretSize)})
	if err != nil {
		b.Fatal(err)
	}
	aud := rp.Audience{Domain: "bench", Issuer: gbIssuer, Client: "webapp"}
	web := &gateWeb{g: g, cfg: &GateLogin{Client: "webapp"}, callbackPath: "/.gatehouse/callback", logoutPath: "/.gatehouse/logout",
		lifetime: 12 * time.Hour, audience: aud, keys: keys.Bind(aud.String()), refreshBefore: 30 * time.Second,
		sessions: seal.NewCache[rp.Session](0), revoked: revocation.NewHub(), ended: revocation.NewHub()}
	for i, secure := range []bool{false, true} {
		if web.sealers[i], err = seal.NewSealer(web.keys, seal.Config{Name: sessionCookiePrefix + aud.Tag(), Secure: secure, MaxAge: web.lifetime, MaxChunks: maxSessionChunks}); err != nil {
			b.Fatal(err)
		}
	}
	g.run.bound.Store(&gateBinding{validators: g.validators, web: web})
	if g.metrics, err = newGateMetrics(nil); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s := rp.Session{ID: "session-1", Audience: aud, Subject: "user-7", Issuer: gbIssuer, TokenID: "family-1.jti-1",
		Claims: map[string]any{"sub": "user-7", "client_id": "bench-client", "aud": gbAudience, "email": "user7@example.org"},
		Expiry: now.Add(time.Hour), Obtained: now, SessionExpiry: now.Add(12 * time.Hour)}
	w := httptest.NewRecorder()
	if err := web.sealers[0].Seal(w, &s, s.SessionExpiry); err != nil {
		b.Fatal(err)
	}
	return g, w.Result().Cookies()
}

func BenchmarkGateDirectorySize(b *testing.B) {
	f := gbFixtureFor(b)
	for _, size := range []struct {
		name string
		path func() string
	}{
		{"store=empty", func() string { return filepath.Join(b.TempDir(), "gatehouse.db") }},
		{"store=10k-users-1k-clients", func() string { return dirtest.SQLite(b, gateBigDirectory) }},
	} {
		dir := gbDirectory(b, size.path())
		snap, err := dir.Snapshot(context.Background(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		if size.name != "store=empty" && len(snap.Clients()) != gateBigDirectory.Clients {
			b.Fatalf("%s: %d clients in the domain", size.name, len(snap.Clients()))
		}
		g, cookies := gbSessionGate(b, dir)
		gbCheck(b, g, f.valid[0])
		b.Run("BearerCachedWithPolicy/"+size.name, func(b *testing.B) {
			gbRun(b, g, f.valid[:1], 200)
		})
		b.Run("SessionWithPolicy/"+size.name, func(b *testing.B) {
			base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
			base.Header.Set("Accept", "application/json")
			for _, c := range cookies {
				base.AddCookie(c)
			}
			// The gate strips its cookies from the request it passes on:
			// each request carries them again, as gbServe's carry their
			// token.
			cookie := base.Header.Get("Cookie")
			w := httptest.NewRecorder()
			serve := func() error {
				r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
				r.Header.Set("Cookie", cookie)
				r.Header.Set("X-Auth-Subject", "admin")
				return g.ServeHTTP(w, r, gbNext)
			}
			if err := serve(); err != nil {
				b.Fatalf("the session was refused: %v", err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := serve(); err != nil {
					b.Fatalf("the session was refused: %v", err)
				}
			}
		})
	}
}
