package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	_ "modernc.org/sqlite"
)

// recorder is the upstream app: it records the headers it receives.
type recorder struct {
	mu   sync.Mutex
	last http.Header
	// accessTokens are the bearer tokens in Authorization of every request,
	// in order (what forward_access_token forwards).
	accessTokens []string
	hits         atomic.Int64
	srv          *httptest.Server
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.last = r.Header.Clone()
		if at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			rec.accessTokens = append(rec.accessTokens, at)
		}
		rec.mu.Unlock()
		rec.hits.Add(1)
		fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) header() http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

func (rec *recorder) seenAccessTokens() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.accessTokens)
}

func (rec *recorder) addr() string { return strings.TrimPrefix(rec.srv.URL, "http://") }

type gateEnv struct {
	*issuerEnv
	app      string // the protected site, http://127.0.0.1:port
	upstream *recorder
}

func startGate(t *testing.T, gateBlock string, edits ...func(string) string) *gateEnv {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	appPort := env.rpPort
	env.app = fmt.Sprintf("http://127.0.0.1:%d", appPort)
	site := fmt.Sprintf(`
%s {
	@public path /healthz
	handle @public {
		respond "ok"
	}
	handle {
		gatehouse {
%s
		}
		reverse_proxy %s
	}
}`, env.app, gateBlock, env.upstream.addr())
	// The web app's redirect URI is the gate's callback on the app site.
	env.redirect = env.app + "/.gatehouse/callback"
	cf := issuerCaddyfile(t, env.issuerEnv, site)
	for _, e := range edits {
		cf = e(cf)
	}
	startCaddy(t, cf)
	return env
}

func serviceToken(t testing.TB, env *gateEnv, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: "service", ClientSecret: "service-secret-0123456789abcdef", TokenURL: env.issuer + "/token", Scopes: scopes,
		EndpointParams: url.Values{"resource": {"https://api.example.com"}}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	return tok.AccessToken
}

func do(t testing.TB, c *http.Client, method, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestGate_BearerFromEmbeddedIssuer(t *testing.T) {
	env := startGate(t, `
			bearer {
				audience https://api.example.com
				scopes orders:read
			}
			forward X-Auth-Subject sub
			forward X-Auth-Scope scope`)
	api := env.app + "/orders"

	// Public paths are Caddy matchers, untouched by the gate.
	if resp, body := do(t, nil, "GET", env.app+"/healthz", nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("public path: %d %q", resp.StatusCode, body)
	}

	// No credentials: 401 with a challenge, never a redirect, even for a browser.
	resp, _ := do(t, nil, "GET", api, map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// A valid token passes; spoofed identity headers are replaced.
	tok := serviceToken(t, env, "orders:read")
	resp, body := do(t, nil, "GET", api, map[string]string{"Authorization": "bearer " + tok, "X-Auth-Subject": "admin", "x-auth-scope": "everything"})
	if resp.StatusCode != 200 || !strings.Contains(body, "upstream saw /orders") {
		t.Fatalf("valid token: %d %q", resp.StatusCode, body)
	}
	h := env.upstream.header()
	if got := h.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "service" {
		t.Fatalf("upstream X-Auth-Subject = %q, want [service]", got)
	}
	if got := h.Values("X-Auth-Scope"); len(got) != 1 || got[0] != "orders:read" {
		t.Fatalf("upstream X-Auth-Scope = %q", got)
	}

	// Missing scope: 403 insufficient_scope naming the scope.
	hits := env.upstream.hits.Load()
	other := serviceToken(t, env, "orders:write")
	resp, _ = do(t, nil, "GET", api, map[string]string{"Authorization": "Bearer " + other, "X-Auth-Subject": "admin"})
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="orders:read"`) {
		t.Fatalf("missing scope: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Garbage and tampered tokens: 401 invalid_token.
	for name, bad := range map[string]string{
		"garbage":  "not-a-jwt",
		"tampered": tok[:len(tok)-4] + "AAAA",
		"alg none": "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(tok, ".")[1] + ".",
	} {
		resp, _ = do(t, nil, "GET", api, map[string]string{"Authorization": "Bearer " + bad})
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if env.upstream.hits.Load() != hits {
		t.Fatal("a refused request reached the upstream")
	}

	// Revocation at the issuer reaches the gate, even for a cached token.
	rev := postForm(t, env.issuer+"/revoke", "service", "service-secret-0123456789abcdef", url.Values{"token": {tok}})
	rev.Body.Close()
	resp, _ = do(t, nil, "GET", api, map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
}

func TestGate_BrowserLoginThroughEmbeddedIssuer(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub
			forward X-Auth-Email email
			forward X-Auth-Groups groups`)
	b := browser(t)

	// An XHR without a session gets 401, never a redirect.
	resp, _ := do(t, b, "GET", env.app+"/dashboard", map[string]string{"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"})
	if resp.StatusCode != 401 {
		t.Fatalf("XHR without session: %d", resp.StatusCode)
	}
	// A navigation is redirected into authorization code + PKCE.
	resp, _ = do(t, b, "GET", env.app+"/dashboard?tab=1", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/authorize") {
		t.Fatalf("navigation: %d %v", resp.StatusCode, loc)
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("redirect_uri") != env.app+"/.gatehouse/callback" {
		t.Fatalf("authorization request: %v", q)
	}
	back := signIn(t, b, loc.String(), "alice", testPassword)
	if !strings.HasPrefix(back.String(), env.app+"/.gatehouse/callback") {
		t.Fatalf("did not come back to the gate's callback: %s", back)
	}
	resp, _ = do(t, b, "GET", back.String(), nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/dashboard?tab=1" {
		t.Fatalf("callback: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Signed in: the upstream sees the claims and never the gate's cookie.
	resp, body := do(t, b, "GET", env.app+"/dashboard?tab=1", map[string]string{"Accept": "text/html", "X-Auth-Email": "spoof@evil.example"})
	if resp.StatusCode != 200 {
		t.Fatalf("with session: %d %q", resp.StatusCode, body)
	}
	h := env.upstream.header()
	if h.Get("X-Auth-Subject") != "alice" || h.Get("X-Auth-Email") != "alice@example.com" || h.Get("X-Auth-Groups") != "admins,dev" || len(h.Values("X-Auth-Email")) != 1 {
		t.Fatalf("upstream headers: %v", h)
	}
	if strings.Contains(h.Get("Cookie"), "gatehouse") {
		t.Fatalf("the session cookie leaked upstream: %q", h.Get("Cookie"))
	}

	// A tampered session cookie is ignored: back to login.
	appURL, _ := url.Parse(env.app)
	var tampered []*http.Cookie
	for _, c := range b.Jar.Cookies(appURL) {
		if strings.HasPrefix(c.Name, "gatehouse") && !strings.Contains(c.Name, "login") {
			c.Value = c.Value[:len(c.Value)-3] + "xyz"
		}
		tampered = append(tampered, c)
	}
	evil := browser(t)
	evil.Jar.SetCookies(appURL, tampered)
	resp, _ = do(t, evil, "GET", env.app+"/dashboard", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 302 {
		t.Fatalf("tampered cookie: %d", resp.StatusCode)
	}

	// Logout clears the session and ends the issuer session (RP-initiated).
	resp, _ = do(t, b, "GET", env.app+"/.gatehouse/logout", sameOrigin)
	loc, _ = resp.Location()
	// The session keeps no ID token it does not forward: the embedded
	// issuer's logout is named by client_id.
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/logout") || loc.Query().Get("client_id") != "webapp" || loc.Query().Has("id_token_hint") {
		t.Fatalf("logout: %d %v", resp.StatusCode, loc)
	}
	resp, _ = do(t, b, "GET", env.app+"/dashboard", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != 401 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestGate_PolicyDeniesWithAccessDeniedPage(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub`)
	b := browser(t)
	resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	back := signIn(t, b, loc.String(), "mallory", testPassword)
	do(t, b, "GET", back.String(), nil)
	hits := env.upstream.hits.Load()
	resp, body := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 403 || !strings.Contains(body, "admins-only") || strings.Contains(body, "guests") {
		t.Fatalf("policy denial: %d %q", resp.StatusCode, body)
	}
	if env.upstream.hits.Load() != hits {
		t.Fatal("a denied request reached the upstream")
	}
}

// externalIssuer is an OIDC issuer served by httptest: discovery and a
// JWKS it can rotate, counting JWKS fetches.
type externalIssuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	fetches atomic.Int64
}

func newExternalIssuer(t testing.TB) *externalIssuer {
	x := &externalIssuer{keys: map[string]*ecdsa.PrivateKey{}}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": x.srv.URL, "jwks_uri": x.srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"ES256"}})
		case "/keys":
			x.fetches.Add(1)
			x.mu.Lock()
			var set jose.JSONWebKeySet
			for kid, k := range x.keys {
				set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
			}
			x.mu.Unlock()
			json.NewEncoder(w).Encode(set)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(x.srv.Close)
	return x
}

func (x *externalIssuer) addKey(kid string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x.mu.Lock()
	x.keys[kid] = k
	x.mu.Unlock()
}

func (x *externalIssuer) sign(t testing.TB, kid string, claims map[string]any) string {
	x.mu.Lock()
	k := x.keys[kid]
	x.mu.Unlock()
	if k == nil {
		k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

func TestGate_BearerFromExternalIssuer(t *testing.T) {
	ext := newExternalIssuer(t)
	ext.addKey("k1")
	env := startGate(t, fmt.Sprintf(`
			bearer {
				issuer %s
				audience https://api.example.com
				scopes any orders:read orders:admin
			}
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub`, ext.srv.URL))
	claims := func() map[string]any {
		now := time.Now().Unix()
		return map[string]any{"iss": ext.srv.URL, "sub": "partner-7", "aud": "https://api.example.com", "exp": now + 300, "iat": now, "scope": "orders:read", "jti": randomString(t)}
	}
	resp, body := do(t, nil, "GET", env.app+"/x", map[string]string{"Authorization": "Bearer " + ext.sign(t, "k1", claims())})
	if resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "partner-7" {
		t.Fatalf("external token: %d %q %v", resp.StatusCode, body, env.upstream.header())
	}
	// The embedded issuer is trusted too; the token's iss selects the block.
	if resp, _ := do(t, nil, "GET", env.app+"/x", map[string]string{"Authorization": "Bearer " + serviceToken(t, env, "orders:read")}); resp.StatusCode != 200 {
		t.Fatalf("embedded token beside an external issuer: %d", resp.StatusCode)
	}
	// A burst of unknown kids does not become a burst of JWKS fetches.
	before := ext.fetches.Load()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := ext.sign(t, fmt.Sprintf("random-%d", i), claims())
			req, _ := http.NewRequest("GET", env.app+"/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Errorf("unknown kid: %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	if n := ext.fetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 40 unknown kids; want at most 1 per cooldown", n)
	}
	// Wrong audience from the trusted external issuer.
	c := claims()
	c["aud"] = "https://other.example.com"
	if resp, _ := do(t, nil, "GET", env.app+"/x", map[string]string{"Authorization": "Bearer " + ext.sign(t, "k1", c)}); resp.StatusCode != 401 {
		t.Fatalf("wrong audience: %d", resp.StatusCode)
	}
	_ = bytes.MinRead
}

// userToken runs the code flow for alice with the webapp client and returns
// her access token for https://api.example.com.
func userToken(t testing.TB, env *gateEnv, user string) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", RedirectURL: env.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.issuer + "/authorize", TokenURL: env.issuer + "/token"}, Scopes: []string{"openid", "orders:read"}}
	back := signIn(t, browser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), user, testPassword)
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange for %s: %v", user, err)
	}
	return tok.AccessToken
}

func readAudit(t testing.TB, env *gateEnv) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGate_PolicyDenialIsAuditedWithExplanation(t *testing.T) {
	env := startGate(t, `
			bearer {
				audience https://api.example.com
			}
			policy api-admins
			forward X-Auth-Subject sub`)
	svc := serviceToken(t, env, "orders:read")
	resp, body := do(t, nil, "GET", env.app+"/admin", map[string]string{"Authorization": "Bearer " + svc})
	if resp.StatusCode != 403 || !strings.Contains(body, "access_denied") {
		t.Fatalf("service token against api-admins: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, nil, "GET", env.app+"/admin", map[string]string{"Authorization": "Bearer " + userToken(t, env, "alice")}); resp.StatusCode != 200 {
		t.Fatalf("alice (role admin) against api-admins: %d", resp.StatusCode)
	}
	audit := readAudit(t, env)
	var found bool
	for _, line := range strings.Split(audit, "\n") {
		if strings.Contains(line, `"event":"gate.policy"`) && strings.Contains(line, `"outcome":"denied"`) {
			found = true
			if !strings.Contains(line, `"sub":"service"`) || !strings.Contains(line, `api-admins`) || !strings.Contains(line, `claim \"role\"`) {
				t.Fatalf("audit entry lacks subject, policy or explanation: %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no gate.policy denial in the audit log:\n%s", audit)
	}
	// Nothing secret in the audit log.
	if strings.Contains(audit, svc) || strings.Contains(audit, testPassword) || strings.Contains(audit, "secret-0123456789abcdef") {
		t.Fatal("the audit log contains a token, password or client secret")
	}
}

func TestGate_PolicyMatcherRoutesOnDecision(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	startCaddy(t, issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	route {
		gatehouse {
			bearer {
				audience https://api.example.com
			}
		}
		@admins gatehouse_policy api-admins
		respond @admins "admin area for {http.auth.user.id}"
		reverse_proxy %s
	}
}`, env.app, env.upstream.addr())))
	if resp, body := do(t, nil, "GET", env.app+"/", map[string]string{"Authorization": "Bearer " + userToken(t, env, "alice")}); resp.StatusCode != 200 || body != "admin area for alice" {
		t.Fatalf("alice: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, nil, "GET", env.app+"/", map[string]string{"Authorization": "Bearer " + serviceToken(t, env, "orders:read")}); resp.StatusCode != 200 || !strings.Contains(body, "upstream saw") {
		t.Fatalf("service: %d %q", resp.StatusCode, body)
	}
}

// loginAs runs the gate's browser login for user and returns the browser.
func loginAs(t *testing.T, env *gateEnv, user string) *http.Client {
	t.Helper()
	b := browser(t)
	resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("no redirect to sign in: %d", resp.StatusCode)
	}
	back := signIn(t, b, loc.String(), user, testPassword)
	if resp, _ := do(t, b, "GET", back.String(), nil); resp.StatusCode != 302 {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	return b
}

// shortTokens makes the embedded issuer's access tokens live 30s.
func shortTokens(cf string) string {
	return strings.Replace(cf, "\t\t\t\taudience https://api.example.com\n", "\t\t\t\taudience https://api.example.com\n\t\t\t\taccess_token_lifetime 30s\n", 1)
}

func TestGate_SessionRefreshesTokensBeforeExpiry(t *testing.T) {
	env := startGate(t, `
			login webapp {
				refresh_before 1m
			}
			forward X-Auth-Subject sub
			forward_access_token`, shortTokens)
	// refresh_before 1m with 30s tokens: every request finds the token due.
	b := loginAs(t, env, "alice")
	resp, _ := do(t, b, "GET", env.app+"/a", map[string]string{"Accept": "text/html", "Authorization": "Basic c3Bvb2Y6ZWQ="})
	if resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	first, _ := strings.CutPrefix(env.upstream.header().Get("Authorization"), "Bearer ")
	if first == "" || len(env.upstream.header().Values("Authorization")) != 1 {
		t.Fatalf("token not forwarded as the one Authorization: %v", env.upstream.header())
	}
	var resealed bool
	for _, c := range resp.Cookies() {
		resealed = resealed || strings.HasPrefix(c.Name, "gatehouse") && c.MaxAge >= 0 && c.Value != ""
	}
	if !resealed {
		t.Fatal("the session was not refreshed and resealed")
	}
	if claims := jwtClaims(t, first); claims["typ"] != nil || claims["sub"] != "alice" {
		t.Fatalf("forwarded access token claims: %v", claims)
	}
	// The next request carries the refreshed session: another access token.
	do(t, b, "GET", env.app+"/b", map[string]string{"Accept": "text/html"})
	if second, _ := strings.CutPrefix(env.upstream.header().Get("Authorization"), "Bearer "); second == "" || second == first {
		t.Fatal("the refreshed access token was not used")
	}
}

// TestGate_ShortTokensAreNotRefreshedOnEveryRequest: by default a session
// refreshes when a quarter of the token's lifetime is left (at most 30s), so
// 30s tokens are not renewed by every request.
func TestGate_ShortTokensAreNotRefreshedOnEveryRequest(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward_access_token`, shortTokens)
	b := loginAs(t, env, "alice")
	for _, p := range []string{"/a", "/b", "/c"} {
		if resp, _ := do(t, b, "GET", env.app+p, map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	seen := env.upstream.seenAccessTokens()
	if len(seen) != 3 || seen[0] != seen[1] || seen[1] != seen[2] {
		t.Fatalf("a fresh 30s token was refreshed by the next requests: %d distinct forwarded tokens", len(slices.Compact(slices.Clone(seen))))
	}
}

// TestGate_ParallelRequestsShareOneRefresh: a page and its assets arrive
// together when the token is due. One refresh serves them all (the issuer
// treats a rotated refresh token presented again as reuse), and a request
// that still carries the old cookie a moment later is served too.
func TestGate_ParallelRequestsShareOneRefresh(t *testing.T) {
	env := startGate(t, `
			login webapp {
				refresh_before 1m
			}
			forward_access_token`, shortTokens)
	b := loginAs(t, env, "alice")
	appURL, _ := url.Parse(env.app)
	oldCookies := b.Jar.Cookies(appURL)

	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Each request carries the same (old) cookies, like a browser
			// firing its subrequests before any response arrived.
			c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/asset/%d", env.app, i), nil)
			req.Header.Set("Accept", "text/html")
			for _, ck := range oldCookies {
				req.AddCookie(ck)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("parallel request %d: %d (codes %v)", i, c, codes)
		}
	}
	seen := env.upstream.seenAccessTokens()
	if distinct := slices.Compact(slices.Sorted(slices.Values(seen))); len(seen) != n || len(distinct) != 1 {
		t.Fatalf("%d parallel requests forwarded %d distinct access tokens; want one shared refresh", len(seen), len(distinct))
	}
	// Later, the old cookie once more (a request that was in flight): served
	// with the same refreshed session, not refused as refresh-token reuse.
	later := browser(t)
	later.Jar.SetCookies(appURL, oldCookies)
	if resp, _ := do(t, later, "GET", env.app+"/late", map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 {
		t.Fatalf("old cookie after the refresh: %d", resp.StatusCode)
	}
	if seen := env.upstream.seenAccessTokens(); seen[len(seen)-1] != seen[0] {
		t.Fatal("the late request refreshed again instead of sharing the result")
	}
}

// TestGate_LogoutRevokesTheSession: logout revokes the session's refresh
// token at the embedded issuer, which revokes the whole token family, so a
// copy of the session cookie taken before logout is dead too.
func TestGate_LogoutRevokesTheSession(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "alice")
	appURL, _ := url.Parse(env.app)
	stolen := browser(t)
	stolen.Jar.SetCookies(appURL, b.Jar.Cookies(appURL))
	if resp, _ := do(t, stolen, "GET", env.app+"/x", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("copied cookie before logout: %d", resp.StatusCode)
	}
	if resp, _ := do(t, b, "GET", env.app+"/.gatehouse/logout", sameOrigin); resp.StatusCode != 302 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := do(t, stolen, "GET", env.app+"/x", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
		t.Fatalf("copied cookie after logout: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, stolen, "GET", env.app+"/x", map[string]string{"Accept": "text/html"}); resp.StatusCode != 302 {
		t.Fatalf("copied cookie after logout, navigation: %d, want a redirect to sign in", resp.StatusCode)
	}
}

// TestGate_WebSocketUpgradeWithBearerPassesThrough: an upgrade request with a
// valid token reaches the upstream as an upgrade; without one it is refused.
func TestGate_WebSocketUpgradeWithBearerPassesThrough(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t)}
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Auth-Subject") != "service" {
			http.Error(w, "not an authenticated upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
		brw.Flush()
	}))
	t.Cleanup(ws.Close)
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	startCaddy(t, issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	gatehouse {
		bearer {
			audience https://api.example.com
		}
		forward X-Auth-Subject sub
	}
	reverse_proxy %s
}`, env.app, strings.TrimPrefix(ws.URL, "http://"))))
	upgrade := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", env.app+"/ws", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return resp.StatusCode, ""
		}
		b := make([]byte, 5)
		io.ReadFull(resp.Body, b)
		return resp.StatusCode, string(b)
	}
	if code, msg := upgrade(serviceToken(t, env, "orders:read")); code != 101 || msg != "hello" {
		t.Fatalf("upgrade with a valid token: %d %q", code, msg)
	}
	if code, _ := upgrade(""); code != 401 {
		t.Fatalf("upgrade without a token: %d", code)
	}
}

// TestGate_RevocationByAnotherInstanceReachesTheGate: instances that share a
// store learn each other's revocations by polling it. Here the "other
// instance" is a second connection to the same SQLite file recording a
// revocation the way the store does (schema version 2), for a token this
// gate has already verified and cached.
func TestGate_RevocationByAnotherInstanceReachesTheGate(t *testing.T) {
	env := startGate(t, `
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub`, func(cf string) string {
		return strings.Replace(cf, "\t\tdomain {\n", "\t\trevocation_poll 50ms\n\t\tdomain {\n", 1)
	})
	tok := serviceToken(t, env)
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	for range 2 { // the second request is a cache hit
		if resp, _ := do(t, nil, "GET", env.app+"/orders", bearer); resp.StatusCode != 200 {
			t.Fatalf("valid token: %d", resp.StatusCode)
		}
	}

	revokeAsAnotherInstance(t, env, tok)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := do(t, nil, "GET", env.app+"/orders", bearer)
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after another instance revoked the token the gate still answers %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGate_SigningKeysSealedWithKeyEncryptionKey: with key_encryption_key the
// private keys in the database are sealed, and everything still signs and
// verifies.
func TestGate_SigningKeysSealedWithKeyEncryptionKey(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_KEK", "integration-key-encryption-secret-0123456789")
	env := startGate(t, `
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub`, func(cf string) string {
		return strings.Replace(cf, "\t\tdomain {\n", "\t\tkey_encryption_key {env.GATEHOUSE_TEST_KEK}\n\t\tdomain {\n", 1)
	})
	tok := serviceToken(t, env)
	if resp, _ := do(t, nil, "GET", env.app+"/orders", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Fatalf("token signed with a sealed key: %d", resp.StatusCode)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(env.dir, "gatehouse.db")+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT kid, private_key FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var kid string
		var blob []byte
		if err := rows.Scan(&kid, &blob); err != nil {
			t.Fatal(err)
		}
		n++
		if !bytes.HasPrefix(blob, []byte("GHK1")) {
			t.Errorf("signing key %s is stored unsealed", kid)
		}
		if _, err := x509.ParsePKCS8PrivateKey(blob); err == nil {
			t.Errorf("signing key %s parses as a plaintext private key", kid)
		}
	}
	if n == 0 {
		t.Fatal("no signing key in the database")
	}
}

// TestGate_OverlongClaimIsNotForwarded: a claim whose header value would pass
// 4096 bytes is left out (never cut short: a truncated list or name could
// mean something else upstream), and a client's own copy is still deleted.
func TestGate_OverlongClaimIsNotForwarded(t *testing.T) {
	long := strings.Repeat("x", 5000)
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub
			forward X-Auth-Notes notes
			forward X-Auth-Groups groups`, func(cf string) string {
		return strings.Replace(cf, "\t\t\t\t\tgroups admins dev\n", "\t\t\t\t\tgroups admins dev\n\t\t\t\t\tnotes "+long+"\n", 1)
	})
	b := loginAs(t, env, "alice")
	resp, _ := do(t, b, "GET", env.app+"/x", map[string]string{"Accept": "text/html", "X-Auth-Notes": "spoofed"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := env.upstream.header()
	if _, present := h["X-Auth-Notes"]; present {
		t.Fatalf("an overlong or spoofed X-Auth-Notes reached the upstream (%d bytes)", len(h.Get("X-Auth-Notes")))
	}
	if h.Get("X-Auth-Subject") != "alice" || h.Get("X-Auth-Groups") != "admins,dev" {
		t.Fatalf("the other headers: %v", h)
	}
}

// TestGate_OversizedSessionIsRefusedAtSignIn: Caddy answers 431 to request
// headers over 16 KiB, so a session cookie that large would lock the user
// out with no explanation. The gate refuses it at the callback instead, and
// says why in the audit log.
func TestGate_OversizedSessionIsRefusedAtSignIn(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`, func(cf string) string {
		return strings.Replace(cf, "\t\t\t\t\tgroups admins dev\n", "\t\t\t\t\tgroups admins dev\n\t\t\t\t\tnotes "+strings.Repeat("y", 9000)+"\n", 1)
	})
	b := browser(t)
	resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if loc == nil {
		t.Fatalf("no redirect to sign in: %d", resp.StatusCode)
	}
	back := signIn(t, b, loc.String(), "alice", testPassword)
	resp, _ = do(t, b, "GET", back.String(), nil)
	if resp.StatusCode != 500 {
		t.Fatalf("callback with an oversized session: %d, want 500", resp.StatusCode)
	}
	appURL, _ := url.Parse(env.app)
	for _, c := range b.Jar.Cookies(appURL) {
		if isSessionCookie(c.Name) {
			t.Fatalf("a session cookie was set: %s (%d bytes)", c.Name, len(c.Value))
		}
	}
	if audit := readAudit(t, env); !strings.Contains(audit, "session too large for a cookie") {
		t.Fatalf("the refusal is not in the audit log:\n%s", audit)
	}
}

// TestGate_GatesSharingASessionGetTheTokensTheyForward: two gates on one
// host share the session cookie. One that forwards the access token still
// does so when the session was sealed by one that does not (it refreshes to
// get a token instead of forwarding nothing).
func TestGate_GatesSharingASessionGetTheTokensTheyForward(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	startCaddy(t, issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	handle /api/* {
		gatehouse {
			login webapp
			forward_access_token
		}
		reverse_proxy %s
	}
	handle /id/* {
		gatehouse {
			login webapp
			forward_id_token
		}
		reverse_proxy %s
	}
	handle {
		gatehouse {
			login webapp
		}
		reverse_proxy %s
	}
}`, env.app, env.upstream.addr(), env.upstream.addr(), env.upstream.addr())))
	b := loginAs(t, env, "alice") // signed in through the gate that forwards nothing
	if resp, _ := do(t, b, "GET", env.app+"/api/orders", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("api: %d", resp.StatusCode)
	}
	at, _ := strings.CutPrefix(env.upstream.header().Get("Authorization"), "Bearer ")
	if at == "" {
		t.Fatal("the gate that forwards the access token forwarded none")
	}
	if claims := jwtClaims(t, at); claims["sub"] != "alice" || claims["client_id"] != "webapp" {
		t.Fatalf("forwarded token: %v", claims)
	}
	// The resealed session carries the token now: no refresh on the next call.
	do(t, b, "GET", env.app+"/api/orders", map[string]string{"Accept": "application/json"})
	if again, _ := strings.CutPrefix(env.upstream.header().Get("Authorization"), "Bearer "); again != at {
		t.Fatal("the second request refreshed again")
	}
	if resp, _ := do(t, b, "GET", env.app+"/id/me", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("id: %d", resp.StatusCode)
	}
	if id, _ := strings.CutPrefix(env.upstream.header().Get("Authorization"), "Bearer "); id == "" || jwtClaims(t, id)["aud"] != "webapp" {
		t.Fatalf("the gate that forwards the ID token forwarded %q", id)
	}
}

// TestGate_StartingInstanceKnowsEarlierRevocations: an instance (here: a
// domain rebuilt by a reload with other settings) loads the revocations
// already in the store before it serves, so it never accepts a token that
// was revoked while it was not running — no waiting for a poll.
func TestGate_StartingInstanceKnowsEarlierRevocations(t *testing.T) {
	var cf string
	env := startGate(t, `
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub`, func(c string) string {
		// Polls too rare to matter in this test.
		cf = strings.Replace(c, "\t\tdomain {\n", "\t\trevocation_poll 1h\n\t\tdomain {\n", 1)
		return cf
	})
	tok := serviceToken(t, env)
	if resp, _ := do(t, nil, "GET", env.app+"/orders", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Fatalf("valid token: %d", resp.StatusCode)
	}
	revokeAsAnotherInstance(t, env, tok)
	// Other poll settings: the domain's runtime is built anew, as on a fresh
	// instance.
	reloadCaddy(t, strings.Replace(cf, "revocation_poll 1h", "revocation_poll 59m", 1))
	req, _ := http.NewRequest("GET", env.app+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp := getAfterReload(t, &http.Client{Transport: withHeaders{req.Header, http.DefaultTransport}, Timeout: 10 * time.Second}, env.app+"/orders")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("the first request after start with a token revoked earlier: %d, want 401", resp.StatusCode)
	}
}

// isSessionCookie reports whether name is a gate's session cookie
// ("gatehouse-<tag>", chunks "gatehouse-<tag>.1", ..., "__Host-" on https),
// not its pending-login cookie nor the issuer's.
func isSessionCookie(name string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(name, "__Host-"), "gatehouse-")
	tag, _, _ := strings.Cut(rest, ".")
	return ok && len(tag) == 8 && strings.Trim(tag, "0123456789abcdef") == ""
}

// withHeaders adds fixed headers to every request.
type withHeaders struct {
	h  http.Header
	rt http.RoundTripper
}

func (w withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range w.h {
		r.Header[k] = v
	}
	return w.rt.RoundTrip(r)
}

// revokeAsAnotherInstance records the revocation of tok's jti the way the
// store does (schema version 2), through its own connection to the SQLite
// file: what another instance sharing the store would do.
func revokeAsAnotherInstance(t *testing.T, env *gateEnv, tok string) {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+filepath.Join(env.dir, "gatehouse.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	claims := jwtClaims(t, tok)
	jti, _ := claims["jti"].(string)
	if jti == "" {
		t.Fatalf("token without jti: %v", claims)
	}
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	if _, err := other.Exec(`INSERT INTO revocations (id, expires_at, revoked_at) VALUES (?, ?, ?)`, jti, exp.UnixMicro(), time.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
}
