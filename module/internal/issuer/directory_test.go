package issuer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	claimsmap "github.com/gatehouse-auth/gatehouse/module/internal/claims"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// swapDirectory serves whichever directory it holds now — a directory
// whose contents change while requests run, as the store's does — and can
// fail its user lookups (a store that cannot be read), or hand out users
// changed by patch (stored users nobody validated).
type swapDirectory struct {
	cur   atomic.Pointer[dirRef]
	down  atomic.Bool
	patch func(*identity.User) *identity.User
}

type dirRef struct{ directory.Directory }

func (s *swapDirectory) set(d directory.Directory) { s.cur.Store(&dirRef{d}) }

func (s *swapDirectory) Snapshot(ctx context.Context, d string) (*directory.Snapshot, error) {
	return s.cur.Load().Snapshot(ctx, d)
}

func (s *swapDirectory) user(u *identity.User, err error) (*identity.User, error) {
	if s.down.Load() {
		return nil, errors.Join(directory.ErrUnavailable, errors.New("connection refused"))
	}
	if err == nil && s.patch != nil {
		u = s.patch(u)
	}
	return u, err
}

func (s *swapDirectory) UserBySubject(ctx context.Context, d, sub string) (*identity.User, error) {
	return s.user(s.cur.Load().UserBySubject(ctx, d, sub))
}
func (s *swapDirectory) UserByLogin(ctx context.Context, d, l string) (*identity.User, error) {
	return s.user(s.cur.Load().UserByLogin(ctx, d, l))
}
func (s *swapDirectory) UserByExternal(ctx context.Context, d, p, x string) (*identity.User, error) {
	return s.user(s.cur.Load().UserByExternal(ctx, d, p, x))
}
func (s *swapDirectory) Domains(ctx context.Context) ([]string, error) {
	return s.cur.Load().Domains(ctx)
}

// newSwapFixture starts the fixture on a swapDirectory holding the
// fixture's configuration, and returns a second version of it: the
// "service" client may also ask for orders:admin, and the "spa" client's
// CORS origin moved to port 8888.
func newSwapFixture(t *testing.T) (f *fixture, sw *swapDirectory, a, b *directory.Static) {
	sw = &swapDirectory{}
	f = newFixture(t, withConfig(func(c *Config, d *identity.Domain) {
		s, err := directory.NewStatic(directory.StaticDomain{Domain: d, Policies: fixturePolicies})
		if err != nil {
			t.Fatal(err)
		}
		sw.set(s)
		c.Directory = sw
	}))
	a = sw.cur.Load().Directory.(*directory.Static)
	d2 := &identity.Domain{DomainSettings: f.domain.DomainSettings, Users: f.domain.Users}
	for _, c := range f.domain.Clients {
		c2 := *c
		switch c.ID {
		case "service":
			c2.Scopes = append(slices.Clone(c.Scopes), "orders:admin")
		case "spa":
			c2.AllowedOrigins = []string{"http://127.0.0.1:8888"}
		}
		d2.Clients = append(d2.Clients, &c2)
	}
	b, err := directory.NewStatic(directory.StaticDomain{Domain: d2, Policies: fixturePolicies})
	if err != nil {
		t.Fatal(err)
	}
	return f, sw, a, b
}

// serve runs one request through the issuer in-process.
func serve(f *fixture, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.iss.ServeHTTP(w, r)
	return w
}

func clientCredentialsRequest(scope string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(urlValues("grant_type", "client_credentials", "scope", scope).Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("service", serviceSecret)
	return r
}

func scopesSupported(t testing.TB, f *fixture) string {
	w := serve(f, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return strings.Join(strList(m["scopes_supported"]), " ")
}

// TestDirectory_DerivedStateFollowsTheSnapshot: the discovery document,
// CORS origins and the clients' scopes come from the current snapshot, and
// what is derived is built once per snapshot version, not per request.
func TestDirectory_DerivedStateFollowsTheSnapshot(t *testing.T) {
	f, sw, a, b := newSwapFixture(t)
	preflight := func(origin string) string {
		r := httptest.NewRequest(http.MethodOptions, "/token", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		return serve(f, r).Header().Get("Access-Control-Allow-Origin")
	}
	if strings.Contains(scopesSupported(t, f), "orders:admin") || preflight("http://127.0.0.1:9999") == "" || preflight("http://127.0.0.1:8888") != "" {
		t.Fatal("the first snapshot is not served")
	}
	if w := serve(f, clientCredentialsRequest("orders:admin")); w.Code != 400 {
		t.Fatalf("a scope the client does not have yet: %d", w.Code)
	}
	sw.set(b)
	if !strings.Contains(scopesSupported(t, f), "orders:admin") {
		t.Fatal("scopes_supported did not follow the snapshot")
	}
	if preflight("http://127.0.0.1:8888") != "http://127.0.0.1:8888" || preflight("http://127.0.0.1:9999") != "" {
		t.Fatal("CORS origins did not follow the snapshot")
	}
	if w := serve(f, clientCredentialsRequest("orders:admin")); w.Code != 200 {
		t.Fatalf("a scope the new snapshot grants: %d %s", w.Code, w.Body)
	}
	// Built once per snapshot.
	snap, _ := b.Snapshot(context.Background(), "")
	d1, _ := f.iss.discoveryFor(snap)
	d2, _ := f.iss.discoveryFor(snap)
	if &d1[0] != &d2[0] {
		t.Fatal("the discovery document was rebuilt for the same snapshot")
	}
	sw.set(a)
	if strings.Contains(scopesSupported(t, f), "orders:admin") {
		t.Fatal("scopes_supported kept a scope of an older snapshot")
	}
}

// TestDirectory_SnapshotSwapUnderConcurrentRequests mints tokens,
// authorizes with an SSO session, redeems codes and reads discovery from
// many goroutines while the directory's snapshot is swapped back and
// forth. Run with -race; every request must succeed against one snapshot
// or the other.
func TestDirectory_SnapshotSwapUnderConcurrentRequests(t *testing.T) {
	f, sw, a, b := newSwapFixture(t)
	c := f.browser()
	f.code(c, authParams("spa", spaRedirect)) // an SSO session
	u, _ := url.Parse(f.url)
	cookies := c.Jar.Cookies(u)
	authz := "/authorize?" + authParams("spa", spaRedirect).Encode()

	stop := make(chan struct{})
	var swaps sync.WaitGroup
	swaps.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				sw.set(b)
			} else {
				sw.set(a)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	const workers, rounds = 8, 25
	errs := make(chan string, workers*rounds*3)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				if w := serve(f, clientCredentialsRequest("orders:read")); w.Code != 200 {
					errs <- "client_credentials: " + w.Body.String()
				}
				if s := scopesSupported(t, f); s != strings.Join(mustSnap(a).Scopes, " ") && s != strings.Join(mustSnap(b).Scopes, " ") {
					errs <- "scopes_supported of no snapshot: " + s
				}
				r := httptest.NewRequest(http.MethodGet, authz, nil)
				for _, ck := range cookies {
					r.AddCookie(ck)
				}
				loc, err := url.Parse(serve(f, r).Header().Get("Location"))
				if err != nil || loc.Query().Get("code") == "" {
					errs <- "authorize: " + loc.String()
					continue
				}
				tr := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(codeForm(loc.Query().Get("code"), spaRedirect).Encode()+"&client_id=spa"))
				tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if w := serve(f, tr); w.Code != 200 {
					errs <- "code exchange: " + w.Body.String()
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	swaps.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func mustSnap(s *directory.Static) *directory.Snapshot {
	snap, err := s.Snapshot(context.Background(), "")
	if err != nil {
		panic(err)
	}
	return snap
}

// TestDirectory_UnreadableUsersAreTryAgainNeverUnknown: when the directory
// cannot read users (its store is down), the token endpoint, userinfo and
// the SSO session answer "temporarily unavailable" — never "the user is no
// longer active" — and nothing is revoked: once it answers again, the same
// refresh token works.
func TestDirectory_UnreadableUsersAreTryAgainNeverUnknown(t *testing.T) {
	f, sw, _, _ := newSwapFixture(t)
	c := f.browser()
	tr := f.token(codeForm(f.code(c, authParams("web", webRedirect)), webRedirect), "web", webSecret)
	code := f.code(c, authParams("web", webRedirect))
	sw.down.Store(true)

	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); r.status != 503 || r.err.Code != ErrTemporarilyUnavailable {
		t.Fatalf("refresh with the directory down: %d %v", r.status, r.raw)
	}
	if r := f.token(codeForm(code, webRedirect), "web", webSecret); r.status != 503 || r.err.Code != ErrTemporarilyUnavailable {
		t.Fatalf("code exchange with the directory down: %d %v", r.status, r.raw)
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.resp.AccessToken)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 503 {
		t.Fatalf("userinfo with the directory down: %d", resp.StatusCode)
	}
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	assertRedirectError(t, f.get(c, f.authorizeURL(p)), webRedirect, ErrTemporarilyUnavailable, "st-123")
	if f.auditHasReason(evRevoke, "user missing or disabled; token family revoked") {
		t.Fatal("a directory outage revoked a token family")
	}

	sw.down.Store(false)
	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("the refresh token after the outage: %d %v", r.status, r.raw)
	}
}

// TestDirectory_LoginWithUnreadableUsersIsNotAWrongPassword: a sign-in
// while users cannot be read is answered 503, not "Incorrect username or
// password", and is not counted against the account.
func TestDirectory_LoginWithUnreadableUsersIsNotAWrongPassword(t *testing.T) {
	f, sw, _, _ := newSwapFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(c, loc.String())))
	form.Set("login", "alice")
	form.Set("password", alicePassword)
	sw.down.Store(true)
	resp, err := c.PostForm(f.url+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 503 || strings.Contains(b, "Incorrect") {
		t.Fatalf("sign-in with the directory down: %d %s", resp.StatusCode, b)
	}
	if f.auditHas(evSignIn, outcomeFailed) && f.auditHasReason(evSignIn, identity.ErrWrongPassword.Error()) {
		t.Fatal("audited as a wrong password")
	}
	sw.down.Store(false)
	resp, _ = c.PostForm(f.url+"/login", form)
	if location(t, resp).Query().Get("code") == "" {
		t.Fatal("the sign-in after the outage failed")
	}
}

// TestDirectory_ReservedClaimsNeverReachTokens is the regression test for
// tokens with a member twice: marshalClaims appends custom claims to the
// standard ones byte-wise, so a stored user's claim (or a claims map's
// result) named scope, nonce or email would have put that member in the
// token twice — relying parties would read either value, and the gate's
// strict decoder would refuse the issuer's own access token. Such claims
// are now dropped at minting, logged and audited once per user and claim.
func TestDirectory_ReservedClaimsNeverReachTokens(t *testing.T) {
	f, sw, _, _ := newSwapFixture(t)
	sw.patch = func(u *identity.User) *identity.User {
		if u.Subject != "u-alice" {
			return u
		}
		v := *u
		v.Claims = append(slices.Clone(u.Claims),
			identity.CustomClaim{Name: "scope", Value: "admin everything", In: identity.ClaimAccess},
			identity.CustomClaim{Name: "nonce", Value: "forged", In: identity.ClaimIdentity},
			identity.CustomClaim{Name: "email", Value: "mallory@example.com", In: identity.ClaimIdentity})
		return &v
	}
	for range 2 {
		tr := f.codeTokens("web", webRedirect, webSecret)
		for _, tok := range []string{tr.resp.AccessToken, tr.resp.IDToken} {
			payload := rawPayload(t, tok)
			for _, m := range []string{`"scope":`, `"nonce":`, `"email":`} {
				if n := bytes.Count(payload, []byte(m)); n > 1 {
					t.Fatalf("%s appears %d times in %s", m, n, payload)
				}
			}
		}
		_, at := claims(t, tr.resp.AccessToken)
		_, id := claims(t, tr.resp.IDToken)
		if at["scope"] != "openid profile email" || id["nonce"] != "n-456" || id["email"] != "Alice@Example.com" {
			t.Fatalf("a custom claim overrode a standard one: scope %v nonce %v email %v", at["scope"], id["nonce"], id["email"])
		}
		if id["department"] != "research" || at["role"] == nil {
			t.Fatalf("the user's other claims were lost: %v %v", id, at)
		}
	}
	dropped := 0
	for _, e := range f.audit.All() {
		if r, _ := e.ContextMap()["reason"].(string); strings.HasPrefix(r, "custom claim ") && strings.HasSuffix(r, " dropped: the issuer sets that claim itself") {
			dropped++
		}
	}
	if dropped != 3 {
		t.Fatalf("%d drops audited over two sign-ins, want 3 (once per user and claim)", dropped)
	}
}

// TestDirectory_ClaimsMapAppliesAtMintingTime: the domain's claims map
// runs when tokens are minted, at userinfo and for policies — a changed
// map applies to the next token — and a reserved name it produces is
// dropped.
func TestDirectory_ClaimsMapAppliesAtMintingTime(t *testing.T) {
	f, sw, _, _ := newSwapFixture(t)
	m, err := claimsmap.Parse("map.yaml", []byte("mode: merge\ntransformations:\n  - source: department\n    target: team\n  - source: department\n    target: amr\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := f.codeTokens("web", webRedirect, webSecret)
	if _, id := claims(t, before.resp.IDToken); id["team"] != nil {
		t.Fatalf("a claim of a map that is not configured yet: %v", id)
	}
	settings := f.domain.DomainSettings
	settings.ClaimsMap = m
	// The configuration refuses a map that makes a claim the issuer sets.
	alice := *f.domain.Users[0]
	if _, err := directory.NewStatic(directory.StaticDomain{Domain: &identity.Domain{DomainSettings: settings, Users: []*identity.User{&alice}}}); err == nil || !strings.Contains(err.Error(), `custom claim "amr" is set by the issuer itself`) {
		t.Fatalf("the configuration's check of the map: %v", err)
	}
	// A directory that did not check it (the store's) is served anyway.
	sw.set(fixedDirectory{snap: directory.NewSnapshot(7, settings, f.domain.Clients, fixturePolicies), dom: f.domain})
	after := f.codeTokens("web", webRedirect, webSecret)
	_, id := claims(t, after.resp.IDToken)
	// amr is the issuer's (the sign-in's factors), not the map's.
	if amr, _ := id["amr"].([]any); id["team"] != "research" || id["department"] != "research" || len(amr) != 1 || amr[0] != "pwd" {
		t.Fatalf("ID token after the map: %v", id)
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+after.resp.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); !strings.Contains(b, `"team":"research"`) || strings.Contains(b, `"amr"`) {
		t.Fatalf("userinfo after the map: %s", b)
	}
}

func rawPayload(t testing.TB, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectory_StoredClientsAppearWhileTokensAreMinted runs the issuer on
// the configuration layered over the real store: a client written to the
// store is served after Refresh, and many goroutines mint tokens for a
// configured and a stored client while another keeps rewriting the stored
// one and refreshing the directory (run with -race).
func TestDirectory_StoredClientsAppearWhileTokensAreMinted(t *testing.T) {
	var stored *directory.Stored
	f := newFixture(t, withConfig(func(c *Config, d *identity.Domain) {
		// The store names every domain: the configuration's has a name.
		d.Name, c.Domain = "acme", "acme"
		static, err := directory.NewStatic(directory.StaticDomain{Domain: d, Policies: fixturePolicies})
		if err != nil {
			t.Fatal(err)
		}
		stored = directory.NewStored(c.Store.(store.Directory), func(err error) { t.Errorf("stored directory: %v", err) })
		if err := stored.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Directory = directory.NewLayered(static, stored)
	}))
	ctx := context.Background()
	put := func(scopes ...string) {
		c := &identity.Client{ID: "batch", Type: identity.Confidential, SecretHash: identity.HashSecret("batch-secret-0123456789"),
			GrantTypes: []string{identity.GrantClientCredentials}, Scopes: scopes, Audiences: []string{apiAudience}}
		raw, err := directory.EncodeClient(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.PutClient(ctx, store.Client{Domain: "acme", ID: "batch", Data: raw, SecretHash: c.SecretHash}, store.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(scope string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(urlValues("grant_type", "client_credentials", "scope", scope).Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("batch", "batch-secret-0123456789")
		return r
	}
	// The domain is the configuration's: the store adds clients to it.
	if _, err := f.st.PutDomain(ctx, store.Domain{Name: "acme", Issuer: f.url}, store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if w := serve(f, batch("jobs:run")); w.Code != 401 {
		t.Fatalf("a client not stored yet: %d", w.Code)
	}
	put("jobs:run")
	if w := serve(f, batch("jobs:run")); w.Code != 401 {
		t.Fatalf("a stored client before Refresh: %d", w.Code)
	}
	if err := stored.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if w := serve(f, batch("jobs:run")); w.Code != 200 {
		t.Fatalf("a stored client after Refresh: %d %s", w.Code, w.Body)
	}

	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				put("jobs:run", "jobs:read")
			} else {
				put("jobs:run")
			}
			if err := stored.Refresh(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 6 {
		wg.Go(func() {
			for range 20 {
				if w := serve(f, clientCredentialsRequest("orders:read")); w.Code != 200 {
					errs <- "configured client: " + w.Body.String()
				}
				if w := serve(f, batch("jobs:run")); w.Code != 200 {
					errs <- "stored client: " + w.Body.String()
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
