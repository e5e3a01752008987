package module

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

// The domain registry: the domains a configuration serves, each with its
// signing keys, issuer and revocations (a domain runtime). The configured
// domains are built when the app starts and stay for the configuration's
// life. Domains stored through the management API — those with an issuer
// URL that the configuration does not define — join and leave while it
// runs: the registry follows the store's directory, so a stored domain is
// served at once on the instance that took the write (the API refreshes the
// directory and syncs the registry before it answers) and within the
// directory's poll (directory.DefaultPoll) on every other instance.
//
// Handlers look their domain up on every request in an immutable map that
// a sync replaces whole (an atomic load; no lock on the request path). A
// request that holds a runtime keeps using it to its end, even if the
// domain is removed meanwhile.

// domainRuntime is one domain being served.
type domainRuntime struct {
	name string
	// stored is set for a domain from the store (it may change or go);
	// configured domains stay as long as the configuration.
	stored bool
	// built is what the runtime was built from: a stored domain whose
	// issuer URL or key settings change is built again.
	built  runtimeSettings
	keys   *keys.Manager
	issuer *issuer.Issuer
	revoke *revocation.Hub
	// rotationAudit is where the shared key manager audits rotations.
	rotationAudit *atomic.Pointer[zap.Logger]
	// poolKey holds the key manager (and revocation watcher) in the usage
	// pool; released when the runtime is dropped.
	poolKey string
	// site and path are where the wildcard issuer finds the domain: its
	// issuer URL's scheme and host, and its path ("" at the host's root).
	site issuerSite
	path string
}

// runtimeSettings are the settings a runtime is built from.
type runtimeSettings struct {
	issuer    string
	algorithm string
	rotation  time.Duration
}

// issuerSite is an issuer URL's scheme and host (lower case, without the
// scheme's default port).
type issuerSite struct {
	scheme, host string
}

// siteKey normalises a host (from a URL or a Host header) for scheme.
func siteKey(scheme, host string) issuerSite {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
	}
	return issuerSite{scheme: scheme, host: host}
}

// registryState is one immutable view of the served domains.
type registryState struct {
	byName map[string]*domainRuntime
	// sites indexes the runtimes by issuer site, then by issuer path.
	sites map[issuerSite]map[string]*domainRuntime
}

func (s *registryState) lookup(name string) *domainRuntime {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// registry holds the domain runtimes of one configuration.
type registry struct {
	app   *App
	state atomic.Pointer[registryState]

	mu         sync.Mutex // one sync at a time; guards the fields below
	configured map[string]*domainRuntime
	stored     map[string]*domainRuntime
	// failed remembers the stored domains that could not be built, with
	// the settings that failed, so the failure is logged once; they are
	// tried again every registryRetry.
	failed map[string]failedBuild
	// skipped remembers the stored domains left out because another
	// domain has their issuer URL (logged once).
	skipped map[string]string
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

type failedBuild struct {
	settings runtimeSettings
	err      string
}

// registryRetry is how often a stored domain that could not be built (its
// keys could not be read, say) is tried again.
const registryRetry = 10 * time.Second

func newRegistry(a *App) *registry {
	return &registry{app: a, configured: map[string]*domainRuntime{}, stored: map[string]*domainRuntime{},
		failed: map[string]failedBuild{}, skipped: map[string]string{}}
}

// lookup returns the runtime of a served domain, or nil.
func (r *registry) lookup(name string) *domainRuntime {
	return r.state.Load().lookup(name)
}

// match returns the runtime of the domain whose issuer owns the request:
// the issuer URL's scheme and host are the request's, and its path is the
// longest that is a prefix of the request's path (or an endpoint of a
// domain at the host's root, or the RFC 8414 form
// /.well-known/oauth-authorization-server/<issuer path>). nil when none
// does.
func (r *registry) match(req *http.Request) *domainRuntime {
	st := r.state.Load()
	if st == nil {
		return nil
	}
	scheme := requestScheme(req)
	paths := st.sites[siteKey(scheme, req.Host)]
	if paths == nil {
		return nil
	}
	p := req.URL.Path
	if rest, ok := strings.CutPrefix(p, "/.well-known/oauth-authorization-server/"); ok {
		if rt := paths["/"+rest]; rt != nil {
			return rt
		}
	}
	for q := p; len(q) > 1; {
		if rt := paths[q]; rt != nil && rt.issuer.Owns(req) {
			return rt
		}
		i := strings.LastIndexByte(q, '/')
		if i <= 0 {
			break
		}
		q = q[:i]
	}
	if rt := paths[""]; rt != nil && rt.issuer.Owns(req) {
		return rt
	}
	return nil
}

// requestScheme is the scheme the client used: https on a TLS connection.
// Behind a proxy that terminates TLS, the proxy's X-Forwarded-Proto is
// believed only when Caddy marks the peer as one of the server's
// trusted_proxies (its trusted_proxy variable), as Caddy's reverse_proxy
// does.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if vals := r.Header.Values("X-Forwarded-Proto"); len(vals) > 0 {
			last := vals[len(vals)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			switch strings.ToLower(strings.TrimSpace(last)) {
			case "https":
				return "https"
			}
		}
	}
	return "http"
}

// start builds the configured domains (a failure fails the start) and the
// stored ones (a failure is logged; the domain is tried again), and
// publishes them.
func (r *registry) start(ctx context.Context) error {
	a := r.app
	r.mu.Lock()
	for i, dc := range a.Domains {
		cd := a.compiled[i]
		rt, err := a.buildDomain(ctx, dc.Name, cd.keys, cd.methods, false)
		if err != nil {
			r.mu.Unlock()
			return fmt.Errorf("%s: %w", domainWhere(dc.Name), err)
		}
		r.configured[dc.Name] = rt
	}
	r.publish()
	r.mu.Unlock()
	if err := r.sync(ctx); err != nil {
		// Served meanwhile: the configuration's domains; the stored ones
		// join when the store's directory answers.
		a.logger.Warn("the store's domains could not be read; serving the configuration's until they can", zap.Error(err))
	}
	return nil
}

// watch follows the store's directory until stop: every time its snapshots
// are swapped, the registry syncs.
func (r *registry) watch(stored *directory.Stored) {
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancel()
		return
	}
	r.cancel, r.done = cancel, make(chan struct{})
	done := r.done
	r.mu.Unlock()
	go func() {
		defer close(done)
		for {
			changed := stored.Changed()
			if err := r.sync(ctx); err != nil && ctx.Err() == nil {
				r.app.logger.Warn("the store's domains could not be read; serving those known until they can", zap.Error(err))
			}
			var retry <-chan time.Time
			var t *time.Timer
			if r.hasFailures() {
				t = time.NewTimer(registryRetry)
				retry = t.C
			}
			select {
			case <-ctx.Done():
			case <-changed:
			case <-retry:
			}
			if t != nil {
				t.Stop()
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
}

func (r *registry) hasFailures() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failed) > 0
}

// stop ends watch.
func (r *registry) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// close stops watch and releases every runtime; lookups find nothing
// afterwards.
func (r *registry) close() {
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, rt := range r.stored {
		r.release(rt)
	}
	for _, rt := range r.configured {
		r.release(rt)
	}
	clear(r.stored)
	clear(r.configured)
	r.state.Store(nil)
}

func (r *registry) release(rt *domainRuntime) {
	if _, err := pool.Delete(rt.poolKey); err != nil {
		r.app.logger.Error("releasing the signing keys of a domain", zap.String("domain", rt.name), zap.Error(err))
	}
}

// sync brings the stored domains in line with the store's directory:
// domains that appeared are built, domains that went are dropped, domains
// whose issuer URL or key settings changed are built again. A stored
// domain the configuration defines is the configuration's (the management
// API keeps a row for a configured domain it adds objects to). An error
// means the directory could not be read; what is served stays as it was.
func (r *registry) sync(ctx context.Context) error {
	stored := r.app.stored
	if stored == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	names, err := stored.Domains(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]runtimeSettings, len(names))
	for _, name := range names {
		if r.configured[name] != nil || name == "" || name == wildcardDomain {
			continue
		}
		snap, err := stored.Snapshot(ctx, name)
		if err != nil {
			continue // gone since Domains
		}
		s := snap.Settings
		want[name] = runtimeSettings{issuer: s.Issuer, algorithm: s.SigningAlgorithm, rotation: s.KeyRotation}
	}
	changed := false
	for name, rt := range r.stored {
		if s, ok := want[name]; ok && s == rt.built {
			continue
		}
		delete(r.stored, name)
		r.release(rt)
		changed = true
		if _, ok := want[name]; !ok {
			r.app.logger.Info("domain removed", zap.String("domain", name), zap.String("issuer", rt.built.issuer))
		}
	}
	for name := range r.failed {
		if _, ok := want[name]; !ok {
			delete(r.failed, name)
		}
	}
	for name := range r.skipped {
		if _, ok := want[name]; !ok {
			delete(r.skipped, name)
		}
	}
	// Issuer URLs already served: a stored domain may not take one (the
	// configuration's domains come first, then stored ones by name).
	taken := map[string]string{}
	for _, rt := range r.configured {
		taken[rt.built.issuer] = rt.name
	}
	for _, rt := range r.stored {
		taken[rt.built.issuer] = rt.name
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if r.stored[name] != nil {
			continue
		}
		s := want[name]
		if other, ok := taken[s.issuer]; ok {
			if r.skipped[name] != s.issuer {
				r.skipped[name] = s.issuer
				r.app.logger.Error("a stored domain has the issuer URL of another domain; it is not served until one of them changes it",
					zap.String("domain", name), zap.String("issuer", s.issuer), zap.String("other_domain", other))
			}
			continue
		}
		delete(r.skipped, name)
		kcfg := keys.Config{Algorithm: s.algorithm, RotateEvery: s.rotation}
		rt, err := r.app.buildDomain(ctx, name, kcfg, nil, true)
		if err != nil {
			if f, ok := r.failed[name]; !ok || f.settings != s || f.err != err.Error() {
				r.app.logger.Error("a stored domain could not be built; it is not served, and tried again", zap.String("domain", name), zap.Error(err))
			}
			r.failed[name] = failedBuild{settings: s, err: err.Error()}
			continue
		}
		delete(r.failed, name)
		rt.built = s
		r.stored[name] = rt
		taken[s.issuer] = name
		changed = true
		if r.app.started.Load() {
			rt.rotationAudit.Store(r.app.audit)
		}
		r.app.logger.Info("domain added", zap.String("domain", name), zap.String("issuer", s.issuer),
			zap.String("discovery", s.issuer+"/.well-known/openid-configuration"))
	}
	if changed {
		r.publish()
	}
	return nil
}

// publish swaps in a new view of the runtimes. Called with mu held.
func (r *registry) publish() {
	st := &registryState{
		byName: make(map[string]*domainRuntime, len(r.configured)+len(r.stored)),
		sites:  map[issuerSite]map[string]*domainRuntime{},
	}
	add := func(rt *domainRuntime) {
		st.byName[rt.name] = rt
		paths := st.sites[rt.site]
		if paths == nil {
			paths = map[string]*domainRuntime{}
			st.sites[rt.site] = paths
		}
		if paths[rt.path] == nil {
			paths[rt.path] = rt
		}
	}
	// Configured domains first: one of them keeps an issuer URL two
	// configured domains share.
	for _, name := range slices.Sorted(maps.Keys(r.configured)) {
		add(r.configured[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.stored)) {
		add(r.stored[name])
	}
	r.state.Store(st)
}

// runtimes returns the served domains, configured ones first, each group
// sorted by name.
func (r *registry) runtimes() []*domainRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*domainRuntime
	for _, name := range slices.Sorted(maps.Keys(r.configured)) {
		out = append(out, r.configured[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.stored)) {
		out = append(out, r.stored[name])
	}
	return out
}

// buildDomain builds a domain's runtime: its signing keys (shared across
// reloads per store, domain and key settings, with the revocations the
// store recorded), and its issuer. The keys are loaded — and made, for a
// new domain — here.
func (a *App) buildDomain(ctx context.Context, name string, kcfg keys.Config, methods []authn.Method, stored bool) (*domainRuntime, error) {
	kcfg.Encryption = a.encryption
	if kcfg.Algorithm == "" {
		kcfg.Algorithm = keys.RS256
	}
	if kcfg.MaxTokenLifetime == 0 {
		// Tokens live at most this long, whatever the client says.
		kcfg.MaxTokenLifetime = identity.MaxTokenLifetime
	}

	// Key managers (and their rotation goroutines) are shared across
	// reloads per store, domain and key settings.
	// Key rotation is a security event: it goes to the audit log. The
	// manager outlives this config, so it logs to the audit logger of the
	// config that runs (see pooledKeys.audit).
	audit := new(atomic.Pointer[zap.Logger])
	audit.Store(a.audit)
	kcfg.OnRotate = func(oldKID, newKID string) {
		msg := "signing key rotated"
		if oldKID == "" {
			msg = "signing key created" // the domain's first key
		}
		audit.Load().Info(msg,
			zap.String("event", "key_rotation"), zap.String("outcome", "success"), zap.String("domain", name),
			zap.String("old_kid", oldKID), zap.String("kid", newKID))
	}
	poolKey := fmt.Sprintf("keys|%s|%s|%s|%s|%s|%s|%s", a.storeKey, name, kcfg.Algorithm, kcfg.RotateEvery, kcfg.MaxTokenLifetime, time.Duration(a.RevocationPoll), a.encryption.Fingerprint())
	val, _, err := pool.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		mgr, err := keys.New(a.store, name, kcfg)
		if err != nil {
			return nil, err
		}
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := mgr.Load(lctx); err != nil {
			return nil, err
		}
		bg, stop := context.WithCancel(context.Background())
		p := &pooledKeys{mgr: mgr, cancel: stop, done: make(chan struct{}), revoke: revocation.NewHub(), audit: audit}
		plog := pooledLogger().With(zap.String("domain", name))
		var wg sync.WaitGroup
		wg.Go(func() {
			mgr.Maintain(bg, time.Minute, func(err error) {
				plog.Error("key maintenance failed", zap.Error(err))
			})
		})
		// The revocations already recorded are loaded before the domain
		// serves anything: a new instance never accepts a token another
		// revoked.
		w := revocation.NewWatcher(a.store, p.revoke, plog)
		w.Poll(lctx)
		every := time.Duration(a.RevocationPoll)
		wg.Go(func() { w.Run(bg, every) })
		go func() {
			wg.Wait()
			close(p.done)
		}()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	pk := val.(*pooledKeys)
	rt := &domainRuntime{name: name, stored: stored, keys: pk.mgr, revoke: pk.revoke, rotationAudit: pk.audit, poolKey: poolKey}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rt.issuer, err = issuer.New(ictx, issuer.Config{
		Directory:    a.directory,
		Domain:       name,
		Store:        a.store,
		Keys:         pk.mgr,
		Audit:        a.audit,
		Logger:       a.logger.With(zap.String("domain", name)),
		Metrics:      a.metrics,
		OnRevoke:     pk.revoke.Publish,
		ClientIP:     clientIP,
		LoginMethods: methods,
	})
	if err == nil {
		var u *url.URL
		if u, err = url.Parse(rt.issuer.Issuer()); err == nil {
			rt.site = siteKey(u.Scheme, u.Host)
			rt.path = strings.TrimSuffix(u.Path, "/")
			rt.built = runtimeSettings{issuer: rt.issuer.Issuer(), algorithm: kcfg.Algorithm, rotation: kcfg.RotateEvery}
		}
	}
	if err != nil {
		if _, derr := pool.Delete(poolKey); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return rt, nil
}

// storedView is the stored layer of the app's directory: the store's
// directory once the app has started, ErrUnavailable before. Handlers
// capture the app's directory when they are provisioned, before the store
// is opened; until the app starts they read the configuration's alone.
type storedView struct {
	p atomic.Pointer[directory.Stored]
}

var errStoreNotOpen = fmt.Errorf("%w: the store is opened when the gatehouse app starts", directory.ErrUnavailable)

func (v *storedView) Snapshot(ctx context.Context, domain string) (*directory.Snapshot, error) {
	if d := v.p.Load(); d != nil {
		return d.Snapshot(ctx, domain)
	}
	return nil, errStoreNotOpen
}

func (v *storedView) UserBySubject(ctx context.Context, domain, sub string) (*identity.User, error) {
	if d := v.p.Load(); d != nil {
		return d.UserBySubject(ctx, domain, sub)
	}
	return nil, errStoreNotOpen
}

func (v *storedView) UserByLogin(ctx context.Context, domain, login string) (*identity.User, error) {
	if d := v.p.Load(); d != nil {
		return d.UserByLogin(ctx, domain, login)
	}
	return nil, errStoreNotOpen
}

func (v *storedView) UserByExternal(ctx context.Context, domain, provider, externalSub string) (*identity.User, error) {
	if d := v.p.Load(); d != nil {
		return d.UserByExternal(ctx, domain, provider, externalSub)
	}
	return nil, errStoreNotOpen
}

func (v *storedView) Domains(ctx context.Context) ([]string, error) {
	if d := v.p.Load(); d != nil {
		return d.Domains(ctx)
	}
	return nil, errStoreNotOpen
}

var _ directory.Directory = (*storedView)(nil)
