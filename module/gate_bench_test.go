package module

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/bearer"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// These benchmarks measure the gate's own work per request — bearer
// validation, policy evaluation, header stripping/forwarding and the
// {http.auth.user.*} placeholders — by calling Gate.ServeHTTP with a no-op
// next handler. The Gate is built from its parts (no Caddy server may run in
// this package): the bearer block goes through provisionBearer with a
// public_key JWKS file, exactly as a Caddyfile `bearer { public_key ... }`
// block would, and the policy set is compiled from YAML.
//
// Each iteration builds a fresh replacer and request context, as Caddy does
// per request; BenchmarkGate_Harness measures that part alone, so subtract it
// for the gate's share.
//
// Run: go test ./module -run '^$' -bench Gate -benchmem

const (
	gbIssuer   = "https://issuer.bench.gatehouse.test"
	gbAudience = "https://api.bench.gatehouse.test"
	gbKID      = "bench-1"
)

const gbPolicies = `policy:
  - id: api-clients
    all:
      - rule: {claim: client_id, in: [bench-client, reporting]}
      - rule: {claim: sub, matches: 'user-[0-9]+'}
      - rule: {claim: aud, in: ["https://api.bench.gatehouse.test"]}
`

// gbFixture is shared by every benchmark of the binary: RSA key generation
// and signing are not what is measured.
type gbFixture struct {
	key, other *rsa.PrivateKey
	jwksPath   string
	valid      []string // distinct valid tokens
	expired    []string
	badSig     []string
	unknownKID []string
	garbage    []string
	set        *policy.Set
}

var (
	gbOnce sync.Once
	gbFix  *gbFixture
	gbErr  error
)

// gbUniqueTokens is how many distinct valid tokens are signed. The unique
// benchmarks cycle through them with a verified-token cache of
// gbUniqueCache entries, so a token is always evicted before it comes round
// again: every iteration is a full RS256 verification plus a cache insert
// with eviction, as in steady state with a full cache.
const (
	gbUniqueTokens = 1024
	gbUniqueCache  = 128
)

func gbFixtureFor(b *testing.B) *gbFixture {
	b.Helper()
	gbOnce.Do(func() { gbFix, gbErr = gbBuildFixture() })
	if gbErr != nil {
		b.Fatal(gbErr)
	}
	return gbFix
}

func gbBuildFixture() (*gbFixture, error) {
	f := &gbFixture{}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if f.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: gbKID, Algorithm: "RS256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gatehouse-gate-bench")
	if err != nil {
		return nil, err
	}
	f.jwksPath = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(f.jwksPath, doc, 0o600); err != nil {
		return nil, err
	}
	now := time.Now()
	sign := func(n int, key *rsa.PrivateKey, kid string, iat, exp time.Time) ([]string, error) {
		out := make([]string, n)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += len(errs) {
					if out[i], errs[w] = gbSign(key, kid, i, iat, exp); errs[w] != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		return out, errors.Join(errs...)
	}
	if f.valid, err = sign(gbUniqueTokens, f.key, gbKID, now, now.Add(2*time.Hour)); err != nil {
		return nil, err
	}
	if f.expired, err = sign(16, f.key, gbKID, now.Add(-3*time.Hour), now.Add(-2*time.Hour)); err != nil {
		return nil, err
	}
	if f.unknownKID, err = sign(16, f.other, "bench-unknown", now, now.Add(2*time.Hour)); err != nil {
		return nil, err
	}
	for i := range 16 {
		t := f.valid[i]
		j := len(t) - 100 // inside the signature, away from its last character
		c := byte('A')
		if t[j] == 'A' {
			c = 'B'
		}
		f.badSig = append(f.badSig, t[:j]+string(c)+t[j+1:])
		f.garbage = append(f.garbage, fmt.Sprintf("garbage-%d", i), "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln")
	}
	ps, err := policy.Parse("bench.yaml", []byte(gbPolicies))
	if err != nil {
		return nil, err
	}
	if f.set, err = policy.Compile(ps); err != nil {
		return nil, err
	}
	return f, nil
}

// gbSign mints an RFC 9068 access token the way an issuer would.
func gbSign(key *rsa.PrivateKey, kid string, i int, iat, exp time.Time) (string, error) {
	enc := base64.RawURLEncoding
	hb, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": kid})
	pb, _ := json.Marshal(map[string]any{
		"iss": gbIssuer, "aud": gbAudience, "sub": fmt.Sprintf("user-%d", i), "client_id": "bench-client",
		"scope": "orders:read orders:write", "jti": fmt.Sprintf("jti-%d-%d", i, iat.UnixNano()),
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": exp.Unix(),
	})
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

type gbOptions struct {
	policies  bool
	cacheSize int // 0: the gate's default (what provisionBearer builds)
}

// gbGate builds a Gate as Provision would for
//
//	gatehouse {
//		bearer { issuer ...; public_key jwks.json; audience ...; scopes orders:read }
//		[policy api-clients]
//		forward X-Auth-Subject sub
//		forward X-Auth-Client client_id
//		forward X-Auth-Scope scope
//	}
func gbGate(b *testing.B, f *gbFixture, o gbOptions) *Gate {
	b.Helper()
	g := &Gate{
		Bearer: []*GateBearer{{Issuer: gbIssuer, PublicKeyFile: f.jwksPath, Audiences: []string{gbAudience}, Scopes: []string{"orders:read"}}},
		Forward: []ForwardHeader{
			{Header: "X-Auth-Subject", Claim: "sub"},
			{Header: "X-Auth-Client", Claim: "client_id"},
			{Header: "X-Auth-Scope", Claim: "scope"},
		},
		logger: zap.NewNop(),
		audit:  zap.NewNop(),
	}
	if err := g.provisionHeaders(); err != nil {
		b.Fatal(err)
	}
	if o.policies {
		g.Policies = []string{"api-clients"}
		// The directory the app builds: the configuration's over the
		// (empty) store's.
		static, err := directory.NewStatic(directory.StaticDomain{Domain: &identity.Domain{DomainSettings: identity.DomainSettings{Issuer: gbIssuer}}, Policies: f.set})
		if err != nil {
			b.Fatal(err)
		}
		st, err := sqlite.Open(filepath.Join(b.TempDir(), "gatehouse.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		stored := directory.NewStored(st, nil)
		if err := stored.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		if g.policies, err = newPolicyRef(directory.NewLayered(static, stored), "", g.Policies, zap.NewNop()); err != nil {
			b.Fatal(err)
		}
	}
	gv, err := g.provisionBearer(caddy.Context{}, g.Bearer[0])
	if err != nil {
		b.Fatal(err)
	}
	if o.cacheSize != 0 {
		ks, err := bearer.LoadPublicKeyFile(f.jwksPath)
		if err != nil {
			b.Fatal(err)
		}
		if gv.v, err = bearer.NewValidator(bearer.Config{
			Issuer: gbIssuer, Audiences: []string{gbAudience}, Algorithms: bearer.AsymmetricAlgorithms(),
			Scopes: []string{"orders:read"}, CacheSize: o.cacheSize,
		}, ks); err != nil {
			b.Fatal(err)
		}
	}
	g.validators = []*gateValidator{gv}
	// As the app's start leaves it: started, the gate bound.
	g.app = &App{started: new(atomic.Bool)}
	g.app.started.Store(true)
	g.run = new(gateRun)
	g.run.bound.Store(&gateBinding{validators: g.validators})
	return g
}

var gbNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// gbServe runs one request through the gate the way Caddy calls it: a fresh
// replacer in the request context, a client that tries to spoof an owned
// header. It returns the status the gate answered (200 when next ran).
func gbServe(g *Gate, w http.ResponseWriter, base *http.Request, token string) int {
	r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("X-Auth-Subject", "admin")
	if err := g.ServeHTTP(w, r, gbNext); err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			return he.StatusCode
		}
		return 500
	}
	return 200
}

// gbCheck fails the benchmark unless the gate admits tok and forwards the
// token's subject instead of the spoofed one.
func gbCheck(b *testing.B, g *Gate, tok string) {
	b.Helper()
	base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
	var seen string
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Get("X-Auth-Subject")
		return nil
	})
	r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("X-Auth-Subject", "admin")
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		b.Fatalf("gate refused a valid token: %v", err)
	}
	if seen == "" || seen == "admin" {
		b.Fatalf("upstream saw X-Auth-Subject %q, want the token's sub", seen)
	}
}

func gbRun(b *testing.B, g *Gate, tokens []string, want int) {
	base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if got := gbServe(g, w, base, tokens[i%len(tokens)]); got != want {
			b.Fatalf("status %d, want %d", got, want)
		}
		i++
	}
}

// BenchmarkGate_Harness is the per-iteration cost outside the gate (request
// copy, context, replacer): subtract it from the other results.
func BenchmarkGate_Harness(b *testing.B) {
	base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
	w := httptest.NewRecorder()
	tok := gbFixtureFor(b).valid[0]
	b.ReportAllocs()
	for b.Loop() {
		r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Auth-Subject", "admin")
		_ = gbNext.ServeHTTP(w, r)
	}
}

// BenchmarkGate_BearerCached: a client re-using its token (a cache hit).
func BenchmarkGate_BearerCached(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{})
	gbCheck(b, g, f.valid[0])
	gbRun(b, g, f.valid[:1], 200)
}

// BenchmarkGate_BearerCachedWithPolicy adds a three-rule policy.
func BenchmarkGate_BearerCachedWithPolicy(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{policies: true})
	gbCheck(b, g, f.valid[0])
	gbRun(b, g, f.valid[:1], 200)
}

// BenchmarkGate_BearerCachedParallel: cache hits from every core.
func BenchmarkGate_BearerCachedParallel(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{policies: true})
	toks := f.valid[:64]
	for _, t := range toks {
		gbCheck(b, g, t)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
		w := httptest.NewRecorder()
		i := 0
		for pb.Next() {
			if got := gbServe(g, w, base, toks[i%len(toks)]); got != 200 {
				b.Errorf("status %d", got)
				return
			}
			i++
		}
	})
}

// BenchmarkGate_BearerUnique_RS256: every request a token the gate has not
// seen (full RS256 verification, claims, cache insert with eviction).
func BenchmarkGate_BearerUnique_RS256(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{cacheSize: gbUniqueCache})
	gbCheck(b, g, f.valid[0])
	gbRun(b, g, f.valid, 200)
}

// BenchmarkGate_BearerUniqueWithPolicy_RS256: the same with the policy.
func BenchmarkGate_BearerUniqueWithPolicy_RS256(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{policies: true, cacheSize: gbUniqueCache})
	gbCheck(b, g, f.valid[0])
	gbRun(b, g, f.valid, 200)
}

// BenchmarkGate_RejectExpired: a correctly signed token past its exp.
func BenchmarkGate_RejectExpired(b *testing.B) {
	f := gbFixtureFor(b)
	gbRun(b, gbGate(b, f, gbOptions{}), f.expired, http.StatusUnauthorized)
}

// BenchmarkGate_RejectBadSignature: a valid token with one signature byte changed.
func BenchmarkGate_RejectBadSignature(b *testing.B) {
	f := gbFixtureFor(b)
	gbRun(b, gbGate(b, f, gbOptions{}), f.badSig, http.StatusUnauthorized)
}

// BenchmarkGate_RejectUnknownKID: signed by a key the gate does not know.
func BenchmarkGate_RejectUnknownKID(b *testing.B) {
	f := gbFixtureFor(b)
	gbRun(b, gbGate(b, f, gbOptions{}), f.unknownKID, http.StatusUnauthorized)
}

// BenchmarkGate_RejectGarbage: bearer values that are not JWTs.
func BenchmarkGate_RejectGarbage(b *testing.B) {
	f := gbFixtureFor(b)
	gbRun(b, gbGate(b, f, gbOptions{}), f.garbage, http.StatusUnauthorized)
}

// BenchmarkGate_Mixed is the wrk mixed load per request: 80% valid (64
// clients re-using their tokens), 10% expired, 5% bad signature, 3% unknown
// kid, 2% garbage.
func BenchmarkGate_Mixed(b *testing.B) {
	f := gbFixtureFor(b)
	g := gbGate(b, f, gbOptions{policies: true})
	type req struct {
		tok  string
		want int
	}
	var seq []req
	add := func(n int, toks []string, want int) {
		for i := range n {
			seq = append(seq, req{toks[i%len(toks)], want})
		}
	}
	add(80, f.valid[:64], 200)
	add(10, f.expired, 401)
	add(5, f.badSig, 401)
	add(3, f.unknownKID, 401)
	add(2, f.garbage, 401)
	// Interleave deterministically (a stride coprime with 100).
	mixed := make([]req, len(seq))
	for i := range seq {
		mixed[i] = seq[(i*37)%len(seq)]
	}
	for _, t := range f.valid[:64] {
		gbCheck(b, g, t)
	}
	base := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		q := mixed[i%len(mixed)]
		if got := gbServe(g, w, base, q.tok); got != q.want {
			b.Fatalf("status %d, want %d", got, q.want)
		}
		i++
	}
}

// gbEmbedded is a domain runtime as the registry holds it: RS256 keys in a
// SQLite store and the issuer, and an access token that issuer would mint.
func gbEmbedded(b *testing.B) (*domainRuntime, string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "gatehouse.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	mgr, err := keys.New(st, "", keys.Config{Algorithm: keys.RS256})
	if err != nil {
		b.Fatal(err)
	}
	if err := mgr.Load(ctx); err != nil {
		b.Fatal(err)
	}
	static, err := directory.NewStatic(directory.StaticDomain{Domain: &identity.Domain{DomainSettings: identity.DomainSettings{Issuer: gbIssuer}}})
	if err != nil {
		b.Fatal(err)
	}
	iss, err := issuer.New(ctx, issuer.Config{Directory: static, Domain: "", Store: st, Keys: mgr})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tok, err := mgr.Sign(map[string]any{
		"iss": gbIssuer, "aud": gbAudience, "sub": "user-1", "client_id": "bench-client",
		"scope": "orders:read orders:write", "jti": "family-1.token-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}, "at+jwt")
	if err != nil {
		b.Fatal(err)
	}
	return &domainRuntime{name: "", keys: mgr, issuer: iss, revoke: revocation.NewHub()}, tok
}

// BenchmarkGate_EmbeddedBearerCached: a client re-using a token of the
// domain's embedded issuer (a cache hit, and the revocation check); the
// gate finds its domain in the app's registry on every request.
func BenchmarkGate_EmbeddedBearerCached(b *testing.B) {
	rt, tok := gbEmbedded(b)
	app := &App{started: new(atomic.Bool)}
	app.started.Store(true)
	app.registry = newRegistry(app)
	app.registry.configured[""] = rt
	app.registry.publish()
	g := &Gate{
		Bearer: []*GateBearer{{Audiences: []string{gbAudience}, Scopes: []string{"orders:read"}}},
		Forward: []ForwardHeader{
			{Header: "X-Auth-Subject", Claim: "sub"},
			{Header: "X-Auth-Client", Claim: "client_id"},
			{Header: "X-Auth-Scope", Claim: "scope"},
		},
		logger: zap.NewNop(),
		audit:  zap.NewNop(),
		app:    app, run: new(gateRun), needsDomain: true, validators: []*gateValidator{nil},
	}
	if err := g.provisionHeaders(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Cleanup() })
	gbCheck(b, g, tok)
	gbRun(b, g, []string{tok}, 200)
}
