package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// Test accounts and clients.
const (
	alicePassword = "correct horse battery staple"
	webSecret     = "web-secret:with/odd+chars%and more"
	serviceSecret = "service-secret-0123456789"
	spaRedirect   = "http://127.0.0.1:9999/callback"
	webRedirect   = "https://web.example.com/callback"
	webRedirect2  = "https://web.example.com/other"
	webPostLogout = "https://web.example.com/signed-out"
	testVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789"
	apiAudience   = "orders-api"
	otherAudience = "billing-api"
)

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	keyOnce   sync.Once
	rsaDER    []byte
	ecDER     []byte
	hashOnce  sync.Once
	aliceHash string
)

// testKeys generates one RSA and one EC key per test binary.
func testKeys(t testing.TB) {
	keyOnce.Do(func() {
		var rk crypto.Signer
		rk, _ = rsa.GenerateKey(rand.Reader, 2048)
		rsaDER, _ = x509.MarshalPKCS8PrivateKey(rk)
		ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ecDER, _ = x509.MarshalPKCS8PrivateKey(ek)
	})
}

type fixture struct {
	t       testing.TB
	clock   *clock
	st      *sqlite.Store
	keys    *keys.Manager
	iss     *Issuer
	srv     *httptest.Server
	url     string
	domain  *identity.Domain
	audit   *observer.ObservedLogs
	policy  *fakePolicy
	revoked []revocation.ID
	mu      sync.Mutex
}

type fakePolicy struct {
	mu    sync.Mutex
	deny  map[string]bool // subject → denied
	calls int
	last  map[string]any
}

func (p *fakePolicy) Check(claims map[string]any, ids []string) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.last = claims
	sub, _ := claims["sub"].(string)
	if p.deny[sub] {
		return false, "policy.staff: rule on claim department failed"
	}
	return true, ""
}

// fixtureSettings are what options may change before the issuer starts.
type fixtureSettings struct {
	alg    string
	cfg    *Config
	domain *identity.Domain
	// realPolicies: the snapshot's policies decide, not fakePolicy.
	realPolicies bool
}

// withRealPolicies lets the snapshot's policies decide instead of the
// fixture's fakePolicy.
func withRealPolicies() fixtureOpt { return func(s *fixtureSettings) { s.realPolicies = true } }

type fixtureOpt func(*fixtureSettings)

func withAlg(alg string) fixtureOpt { return func(s *fixtureSettings) { s.alg = alg } }

func withConfig(fn func(*Config, *identity.Domain)) fixtureOpt {
	return func(s *fixtureSettings) { fn(s.cfg, s.domain) }
}

// newFixture starts an issuer on a loopback httptest server with the real
// SQLite store.
func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	testKeys(t)
	hashOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
		aliceHash = string(h)
	})
	f := &fixture{t: t, clock: &clock{t: time.Now().Truncate(time.Second)}, policy: &fakePolicy{deny: map[string]bool{}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.iss.Handles(r) {
			http.NotFound(w, r)
			return
		}
		f.iss.ServeHTTP(w, r)
	}))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.url = "http://" + ln.Addr().String()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.domain = &identity.Domain{
		DomainSettings: identity.DomainSettings{Name: "", Issuer: f.url},
		Users: []*identity.User{
			{Subject: "u-alice", PreferredUsername: "alice", Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell",
				Email: "Alice@Example.com", EmailVerified: true, Active: true, PasswordHash: aliceHash,
				Claims: []identity.CustomClaim{
					{Name: "role", Value: []string{"admin"}, In: identity.ClaimAccess},
					{Name: "department", Value: "research", In: identity.ClaimIdentity},
				}},
			{Subject: "u-bob", PreferredUsername: "bob", Email: "bob@example.com", Active: true, PasswordHash: aliceHash},
			{Subject: "u-carol", PreferredUsername: "carol", Active: false, PasswordHash: aliceHash},
		},
		Clients: []*identity.Client{
			{ID: "spa", Type: identity.Public, GrantTypes: []string{"authorization_code", "refresh_token"},
				RedirectURIs: []string{spaRedirect}, AllowLocalLogin: true, Audiences: []string{apiAudience},
				AllowedOrigins: []string{"http://127.0.0.1:9999"}, Scopes: []string{"orders:read"}},
			{ID: "web", Type: identity.Confidential, SecretHash: identity.HashSecret(webSecret), GrantTypes: []string{"authorization_code", "refresh_token"},
				RedirectURIs: []string{webRedirect, webRedirect2}, PostLogoutRedirectURIs: []string{webPostLogout},
				AllowLocalLogin: true, RequirePKCE: true, Audiences: []string{apiAudience, otherAudience}},
			{ID: "legacy", Type: identity.Confidential, SecretHash: identity.HashSecret(webSecret), GrantTypes: []string{"authorization_code"},
				RedirectURIs: []string{webRedirect}, AllowLocalLogin: true, RequirePKCE: false, AllowPlainPKCE: true},
			{ID: "guarded", Type: identity.Public, GrantTypes: []string{"authorization_code", "refresh_token"},
				RedirectURIs: []string{spaRedirect}, AllowLocalLogin: true, Policies: []string{"policy.staff"}},
			{ID: "service", Type: identity.Confidential, SecretHash: identity.HashSecret(serviceSecret), GrantTypes: []string{"client_credentials"},
				Scopes: []string{"orders:read", "orders:write"}, Audiences: []string{apiAudience, otherAudience}},
			{ID: "lonely-service", Type: identity.Confidential, SecretHash: identity.HashSecret(serviceSecret), GrantTypes: []string{"client_credentials"}},
		},
	}
	core, logs := observer.New(zap.InfoLevel)
	f.audit = logs
	cfg := Config{
		Domain: f.domain.Name,
		Store:  st,
		Audit:  zap.New(core),
		Now:    f.clock.Now,
		OnRevoke: func(id revocation.ID) {
			f.mu.Lock()
			f.revoked = append(f.revoked, id)
			f.mu.Unlock()
		},
	}
	set := fixtureSettings{alg: keys.RS256, cfg: &cfg, domain: f.domain}
	for _, o := range opts {
		o(&set)
	}
	alg, der := keys.RS256, rsaDER
	if set.alg == keys.ES256 {
		alg, der = keys.ES256, ecDER
	}
	ctx := context.Background()
	now := f.clock.Now()
	if _, err := st.RotateSigningKeys(ctx, "", func([]store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{{Domain: "", KID: "test-" + alg, Alg: alg, PrivateKey: der,
			CreatedAt: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour), ExpiresAt: now.Add(91 * 24 * time.Hour)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	km, err := keys.New(st, "", keys.Config{Algorithm: alg, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.keys = km
	cfg.Keys = km
	if cfg.Directory == nil {
		cfg.Directory = f.directory()
	}
	iss, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !set.realPolicies {
		iss.policyCheck = func(_ *policy.Set, claims map[string]any, ids []string) (bool, string) {
			return f.policy.Check(claims, ids)
		}
	}
	f.iss = iss
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// fixturePolicies define the policy the "guarded" client names; the
// fixture's fakePolicy decides in its place.
var fixturePolicies = func() *policy.Set {
	s, err := policy.Compile([]policy.Policy{{ID: "policy.staff", All: []policy.Rule{{Claim: "sub"}}}})
	if err != nil {
		panic(err)
	}
	return s
}()

// directory is the configuration's directory of the fixture's domain.
func (f *fixture) directory() *directory.Static {
	f.t.Helper()
	d, err := directory.NewStatic(directory.StaticDomain{Domain: f.domain, Policies: fixturePolicies})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// browser is an http.Client with a cookie jar that does not follow
// redirects, so tests see every hop.
func (f *fixture) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) get(c *http.Client, u string) *http.Response {
	f.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func body(t testing.TB, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authParams are the parameters of a typical authorization request.
func authParams(clientID, redirect string) url.Values {
	return url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"response_type":         {"code"},
		"scope":                 {"openid profile email"},
		"state":                 {"st-123"},
		"nonce":                 {"n-456"},
		"code_challenge":        {s256(testVerifier)},
		"code_challenge_method": {"S256"},
	}
}

func (f *fixture) authorizeURL(p url.Values) string { return f.url + "/authorize?" + p.Encode() }

var hiddenRe = regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)

// loginForm reads the hidden fields of a login page.
func loginForm(t testing.TB, page string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("req") == "" || v.Get("csrf") == "" {
		t.Fatalf("no login form in page:\n%s", page)
	}
	v.Set("method", "pwd")
	return v
}

// location parses a redirect's Location header.
func location(t testing.TB, r *http.Response) *url.URL {
	t.Helper()
	if r.StatusCode != http.StatusFound && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect; body: %s", r.StatusCode, body(t, r))
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signIn drives authorize → login page → POST credentials and returns the
// final redirect to the client.
func (f *fixture) signIn(c *http.Client, p url.Values, login, password string) *url.URL {
	f.t.Helper()
	resp := f.get(c, f.authorizeURL(p))
	loc := location(f.t, resp)
	resp.Body.Close()
	if !strings.HasPrefix(loc.String(), f.url+"/login?") {
		return loc
	}
	page := f.get(c, loc.String())
	if page.StatusCode != 200 {
		f.t.Fatalf("login page status %d", page.StatusCode)
	}
	form := loginForm(f.t, body(f.t, page))
	form.Set("login", login)
	form.Set("password", password)
	resp, err := c.PostForm(f.url+"/login", form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	return location(f.t, resp)
}

// code runs a full sign-in and returns the code.
func (f *fixture) code(c *http.Client, p url.Values) string {
	f.t.Helper()
	loc := f.signIn(c, p, "alice", alicePassword)
	code := loc.Query().Get("code")
	if code == "" {
		f.t.Fatalf("no code in %s", loc)
	}
	return code
}

type tokenResult struct {
	status int
	header http.Header
	raw    map[string]any
	resp   TokenResponse
	err    OAuthError
}

// token posts a token request; secret "" means no client authentication
// header (client_id goes in the form).
func (f *fixture) token(form url.Values, clientID, secret string) tokenResult {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	} else if clientID != "" {
		form.Set("client_id", clientID)
		req.Body = io.NopCloser(strings.NewReader(form.Encode()))
		req.ContentLength = int64(len(form.Encode()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	b := body(f.t, resp)
	res := tokenResult{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal([]byte(b), &res.raw)
	_ = json.Unmarshal([]byte(b), &res.resp)
	_ = json.Unmarshal([]byte(b), &res.err)
	return res
}

func codeForm(code, redirect string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {testVerifier}}
}

// claims decodes a JWT's header and payload without verifying it.
func claims(t testing.TB, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

// signingAlgs are the algorithms the issuer signs with.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// verifyJWT checks a token's signature against the issuer's JWKS.
func (f *fixture) verifyJWT(tok string) map[string]any {
	f.t.Helper()
	var set jose.JSONWebKeySet
	resp := f.get(http.DefaultClient, f.url+"/jwks")
	if err := json.Unmarshal([]byte(body(f.t, resp)), &set); err != nil {
		f.t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, signingAlgs)
	if err != nil {
		f.t.Fatal(err)
	}
	ks := set.Key(jws.Signatures[0].Header.KeyID)
	if len(ks) != 1 {
		f.t.Fatalf("kid %q not in JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(ks[0].Key)
	if err != nil {
		f.t.Fatalf("signature: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	return m
}

// post sends a form with optional basic auth to an issuer path.
func (f *fixture) post(path string, form url.Values, clientID, secret string, hdr ...string) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// introspect returns the introspection response for tok as seen by web.
func (f *fixture) introspect(tok, clientID, secret string) map[string]any {
	f.t.Helper()
	resp := f.post("/introspect", url.Values{"token": {tok}}, clientID, secret)
	var m map[string]any
	if err := json.Unmarshal([]byte(body(f.t, resp)), &m); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// auditHas reports whether an audit entry with event and outcome exists.
func (f *fixture) auditHas(event, outcome string) bool {
	for _, e := range f.audit.All() {
		m := e.ContextMap()
		if m["event"] == event && m["outcome"] == outcome {
			return true
		}
	}
	return false
}

// urlValues builds url.Values from key, value pairs.
func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
