package module

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// registryEnv is an app as Start leaves it — a SQLite store, its
// directory under a configured domain "corp" at https://auth.example.com
// (the host's root) — with its registry started.
type registryEnv struct {
	t   *testing.T
	app *App
	st  store.Store
}

func newRegistryEnv(t *testing.T) *registryEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gh.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dom := &identity.Domain{DomainSettings: identity.DomainSettings{Name: "corp", Issuer: "https://auth.example.com"}}
	static, err := directory.NewStatic(directory.StaticDomain{Domain: dom})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{
		Domains:        []*DomainConfig{{Name: "corp", Issuer: dom.Issuer}},
		RevocationPoll: caddy.Duration(time.Hour),
		logger:         zap.NewNop(),
		audit:          zap.NewNop(),
		compiled:       []*compiledDomain{{dom: dom, keys: keys.Config{Algorithm: keys.ES256}}},
		store:          st,
		storeKey:       "registry-test:" + path,
		static:         static,
		storedDir:      new(storedView),
		started:        new(atomic.Bool),
	}
	a.stored = directory.NewStored(st, func(err error) { t.Errorf("stored directory: %v", err) })
	if err := a.stored.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.storedDir.p.Store(a.stored)
	a.directory = directory.NewLayered(static, a.storedDir)
	a.registry = newRegistry(a)
	if err := a.registry.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.started.Store(true)
	t.Cleanup(a.registry.close)
	return &registryEnv{t: t, app: a, st: st}
}

// put writes a stored domain (as the management API does) and syncs.
func (e *registryEnv) put(name, issuer, alg string) {
	e.t.Helper()
	ctx := context.Background()
	settings, err := directory.EncodeDomainSettings(identity.DomainSettings{SigningAlgorithm: alg})
	if err != nil {
		e.t.Fatal(err)
	}
	expected := store.Absent
	if cur, err := e.st.Domain(ctx, name); err == nil {
		expected = cur.Version
	}
	if _, err := e.st.PutDomain(ctx, store.Domain{Name: name, Issuer: issuer, Settings: settings}, expected); err != nil {
		e.t.Fatal(err)
	}
	e.sync()
}

func (e *registryEnv) sync() {
	e.t.Helper()
	ctx := context.Background()
	if err := e.app.stored.Refresh(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.app.registry.sync(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// matched is the name of the domain the wildcard issuer finds for a GET of
// url ("" for none); tls makes it a TLS request.
func (e *registryEnv) matched(url string, tlsConn bool, vars map[string]any) string {
	r := httptest.NewRequest("GET", url, nil)
	if tlsConn {
		r.TLS = &tls.ConnectionState{}
	} else {
		r.TLS = nil
	}
	if vars != nil {
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	}
	if rt := e.app.registry.match(r); rt != nil {
		return rt.name
	}
	return ""
}

// TestRegistry_WildcardFindsTheDomainByIssuerURL: the wildcard issuer
// serves the domain whose issuer URL has the request's scheme and host and
// the longest path that is a whole-segment prefix of the request's path;
// a domain at the host's root owns only its endpoints.
func TestRegistry_WildcardFindsTheDomainByIssuerURL(t *testing.T) {
	e := newRegistryEnv(t)
	e.put("acme", "https://auth.example.com/acme", keys.ES256)
	e.put("acme-eu", "https://auth.example.com/acme/eu", keys.ES256)
	e.put("other", "https://login.example.org:8443/t/other", keys.ES256)
	for _, tc := range []struct {
		url  string
		tls  bool
		want string
	}{
		{"https://auth.example.com/.well-known/openid-configuration", true, "corp"},
		{"https://auth.example.com/token", true, "corp"},
		{"https://auth.example.com/app/page", true, ""}, // the root issuer owns only its endpoints
		{"https://auth.example.com/acme/.well-known/openid-configuration", true, "acme"},
		{"https://auth.example.com/acme/token", true, "acme"},
		{"https://auth.example.com/acme/anything/below", true, "acme"}, // a path issuer owns its whole path (404s)
		{"https://auth.example.com/acme", true, "acme"},
		{"https://auth.example.com/acme/eu/token", true, "acme-eu"}, // the longest prefix
		{"https://auth.example.com/acme/euro/token", true, "acme"},
		{"https://auth.example.com/acmecorp/token", true, ""}, // whole segments only
		{"https://auth.example.com/.well-known/oauth-authorization-server/acme/eu", true, "acme-eu"},
		{"https://auth.example.com/.well-known/oauth-authorization-server", true, "corp"},
		{"https://AUTH.example.com:443/acme/jwks", true, "acme"}, // host case and default port
		{"http://auth.example.com/acme/jwks", false, ""},         // another scheme
		{"https://login.example.org:8443/t/other/jwks", true, "other"},
		{"https://login.example.org/t/other/jwks", true, ""}, // another port
		{"https://elsewhere.example.com/acme/jwks", true, ""},
	} {
		if got := e.matched(tc.url, tc.tls, nil); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
		}
	}
	// Behind a proxy that terminates TLS: its X-Forwarded-Proto counts
	// only when Caddy trusts it (the server's trusted_proxies).
	fwd := func(trusted bool) string {
		r := httptest.NewRequest("GET", "http://auth.example.com/acme/jwks", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: trusted}))
		if rt := e.app.registry.match(r); rt != nil {
			return rt.name
		}
		return ""
	}
	if got := fwd(true); got != "acme" {
		t.Errorf("a trusted proxy's X-Forwarded-Proto https: %q, want acme", got)
	}
	if got := fwd(false); got != "" {
		t.Errorf("an untrusted client's X-Forwarded-Proto https was believed: %q", got)
	}
}

// TestRegistry_FollowsTheStoredDomains: a stored domain gets a runtime with
// keys of its own and its stored signing algorithm; a change of its key
// settings builds it again; deleting it drops the runtime and releases its
// keys; a stored row for a configured domain (the management API's) and a
// stored domain with another domain's issuer URL are not served.
func TestRegistry_FollowsTheStoredDomains(t *testing.T) {
	e := newRegistryEnv(t)
	corp := e.app.registry.lookup("corp")
	if corp == nil || corp.stored {
		t.Fatalf("the configured domain: %+v", corp)
	}
	if e.app.registry.lookup("acme") != nil {
		t.Fatal("acme served before it was stored")
	}
	e.put("acme", "https://auth.example.com/acme", keys.ES256)
	acme := e.app.registry.lookup("acme")
	if acme == nil || !acme.stored || acme.issuer.Issuer() != "https://auth.example.com/acme" || acme.keys.Algorithm() != keys.ES256 {
		t.Fatalf("acme after it was stored: %+v", acme)
	}
	if acme.keys.ActiveKID() == corp.keys.ActiveKID() {
		t.Fatal("acme signs with corp's key")
	}
	if n, ok := pool.References(acme.poolKey); !ok || n != 1 {
		t.Fatalf("acme's keys are held %d times (%v), want once", n, ok)
	}
	// A sync without a change keeps the runtime.
	e.sync()
	if e.app.registry.lookup("acme") != acme {
		t.Fatal("a sync without a change rebuilt acme")
	}
	// New key settings: built again, the old keys released.
	e.put("acme", "https://auth.example.com/acme", keys.EdDSA)
	again := e.app.registry.lookup("acme")
	if again == nil || again == acme || again.built.algorithm != keys.EdDSA {
		t.Fatalf("acme after its signing algorithm changed: %+v", again)
	}
	if _, ok := pool.References(acme.poolKey); ok {
		t.Fatal("the replaced runtime's keys are still held")
	}
	// A stored domain that claims corp's issuer URL; the management API's
	// row for a configured domain.
	e.put("copycat", "https://auth.example.com", "")
	if e.app.registry.lookup("copycat") != nil {
		t.Fatal("a stored domain with another domain's issuer URL is served")
	}
	if err := e.st.DeleteDomain(context.Background(), "copycat", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	e.put("corp", "https://auth.example.com", "")
	if e.app.registry.lookup("corp") != corp {
		t.Fatal("a stored row replaced the configured domain")
	}
	// Deleted: dropped, its keys released.
	if err := e.st.DeleteDomain(context.Background(), "acme", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if e.app.registry.lookup("acme") != nil {
		t.Fatal("acme served after it was deleted")
	}
	if _, ok := pool.References(again.poolKey); ok {
		t.Fatal("the deleted domain's keys are still held")
	}
	e.app.registry.close()
	if _, ok := pool.References(corp.poolKey); ok {
		t.Fatal("closing the registry did not release the configured domain's keys")
	}
	if e.app.registry.lookup("corp") != nil {
		t.Fatal("a closed registry still finds domains")
	}
}

// TestAwait: a request that comes before the app has started waits for
// it: it does not go on while the start is pending (its context ends
// first), goes on once the start succeeded, and is refused when it failed.
func TestAwait(t *testing.T) {
	a := &App{ready: make(chan struct{}), started: new(atomic.Bool)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.await(ctx); err != context.Canceled {
		t.Fatalf("before the start: %v, want to wait (context canceled)", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.await(context.Background()) }()
	a.started.Store(true)
	close(a.ready)
	if err := <-done; err != nil {
		t.Fatalf("after the start: %v", err)
	}
	failed := &App{ready: make(chan struct{}), started: new(atomic.Bool)}
	go func() { done <- failed.await(context.Background()) }()
	failed.startErr = context.DeadlineExceeded
	close(failed.ready)
	if err := <-done; err == nil {
		t.Fatal("a failed start let the request through")
	}
}
