package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/version"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `gatehouse` app: the identity state shared by every Gatehouse
// handler — domains (issuers) with their users, clients and policies, the
// store that holds run-time state, and the signing keys. Handlers find
// identities in its directory: the configuration's over the store's (what
// the configuration defines wins and is read-only).
//
// Provision checks the configuration and creates nothing; Start opens the
// store and builds the domains it serves — the configured ones and those
// stored through the management API, which its registry follows while it
// runs (see registry.go).
//
// State that must outlive a config reload (the open store, the store's
// directory and its watcher, key managers and their rotation goroutines)
// lives in a process-wide usage pool, so `caddy reload` logs nobody out.
type App struct {
	// StoreRaw selects the store backend (module namespace gatehouse.stores).
	// Default: {"backend": "sqlite"} — a SQLite file in Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=gatehouse.stores inline_key=backend"`

	// Domains are the tenants. Each is its own OpenID Connect issuer. A domain
	// with an empty name is the default domain; no domain may be named "*".
	// Domains created through the management API join these at run time
	// (a stored domain of a configured domain's name is the configured
	// one). Default: none.
	Domains []*DomainConfig `json:"domains,omitempty"`

	// CleanupInterval is how often expired codes, tokens and sessions are
	// deleted from the store. Default: 10m.
	CleanupInterval caddy.Duration `json:"cleanup_interval,omitempty"`

	// RevocationPoll is how often this instance reads the revocations that
	// other instances sharing the store recorded (logouts, revoked tokens,
	// refresh-token reuse), so their gates refuse those tokens too.
	// Revocations made in this process reach its gates at once. Default: 5s.
	RevocationPoll caddy.Duration `json:"revocation_poll,omitempty"`

	// KeyEncryptionKeys seal the signing keys' private halves in the store
	// (AES-256-GCM under a key derived from the first; every one opens keys
	// sealed with it). Each is at least 32 bytes of secret, usually given
	// as {env.NAME} or {file./path}. To change it, put the new secret first
	// and keep the old one until the keys sealed with it have expired.
	// Default: none — keys are stored as they are (protect the database).
	KeyEncryptionKeys []string `json:"key_encryption_keys,omitempty"`

	encryption *keys.Encryption
	logger     *zap.Logger
	audit      *zap.Logger
	// compiled are the configured domains, checked at provision and built
	// when the app starts.
	compiled []*compiledDomain
	// opener opens the store when the app starts.
	opener   StoreOpener
	store    store.Store // nil until the app starts
	storeKey string
	// directory holds the identities of every domain: the configuration's
	// over the store's (stored reads the store's once the app has started).
	directory directory.Directory
	static    *directory.Static
	storedDir *storedView
	stored    *directory.Stored // nil until the app starts
	// registry holds the domains being served (built when the app starts).
	registry *registry
	metrics  *issuer.Metrics
	poolKeys []string // usage-pool keys this config holds
	// ready is closed when Start has run (startErr says how); started is
	// set when it succeeded. Handlers wait for it (await).
	ready    chan struct{}
	started  *atomic.Bool
	startErr error
	// onStart are what handlers finish when the store is open and the
	// domains are built (their cookie keys, embedded validators, ...).
	onStart []func() error
	// wantGateSessions is set when a gate keeps browser sessions: the
	// hub of ended gate sessions is started with the app.
	wantGateSessions bool
	// gateSessions holds the gate sessions ended by a logout, of every
	// instance sharing the store (see gateSessionRevocations).
	gateSessions *revocation.Hub
	storeDesc    string   // the store, for the start-up log (never a password)
	sites        []string // sites the gates protect, for the start-up log
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "gatehouse",
		New: func() caddy.Module { return new(App) },
	}
}

// pool holds what survives reloads: open stores and per-domain runtimes.
var pool = caddy.NewUsagePool()

type pooledStore struct {
	st     store.Store
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *pooledStore) Destruct() error {
	p.cancel()
	<-p.done
	return p.st.Close()
}

type pooledKeys struct {
	mgr    *keys.Manager
	cancel context.CancelFunc
	done   chan struct{}
	revoke *revocation.Hub
	// audit receives the key rotations: the audit logger of the running
	// config (each config sets its own when it starts; before, the one that
	// created the manager). A config's logger, unlike Caddy's default
	// logger, reaches the logs the operator routed gatehouse.audit to.
	audit *atomic.Pointer[zap.Logger]
}

func (p *pooledKeys) Destruct() error {
	p.cancel()
	<-p.done
	return nil
}

// Provision checks the whole configuration, reporting every problem at
// once, and loads the store module (a PostgreSQL store is reached, never
// written). It opens, creates and writes nothing: the store is opened and
// migrated, and the domains' keys and issuers built, when the app starts,
// so `caddy validate` is a dry run.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.audit = a.logger.Named("audit")
	a.ready, a.started, a.storedDir = make(chan struct{}), new(atomic.Bool), new(storedView)
	a.registry = newRegistry(a)
	if a.CleanupInterval == 0 {
		a.CleanupInterval = caddy.Duration(10 * time.Minute)
	}
	if a.RevocationPoll == 0 {
		a.RevocationPoll = caddy.Duration(5 * time.Second)
	}
	var probs problems
	if a.CleanupInterval < 0 || a.RevocationPoll < 0 {
		probs.add("", fmt.Errorf("cleanup_interval and revocation_poll must be positive durations"))
	}
	if len(a.KeyEncryptionKeys) > 0 {
		repl := caddy.NewReplacer()
		secrets := make([]string, len(a.KeyEncryptionKeys))
		complete := true
		for i, k := range a.KeyEncryptionKeys {
			if secrets[i] = repl.ReplaceKnown(k, ""); secrets[i] == "" {
				probs.add("", fmt.Errorf("key_encryption_key %q expands to nothing; set the environment variable or file it names", k))
				complete = false
			}
		}
		if complete {
			enc, err := keys.NewEncryption(secrets)
			if err != nil {
				probs.add("", fmt.Errorf("key_encryption_key: %w", err))
			}
			a.encryption = enc
		}
	}
	// Every domain is checked before anything opens the store.
	compiled := make([]*compiledDomain, len(a.Domains))
	seen := map[string]bool{}
	for i, dc := range a.Domains {
		if seen[dc.Name] {
			probs.add("", fmt.Errorf("%s is defined twice; give each domain a unique name", domainLabel(dc.Name)))
			continue
		}
		seen[dc.Name] = true
		if dc.Name == wildcardDomain {
			probs.add("", fmt.Errorf("a domain cannot be named %q: `gatehouse_issuer *` means every domain; rename it", wildcardDomain))
			continue
		}
		cd, err := dc.compile()
		probs.add(domainWhere(dc.Name), err)
		if cd != nil {
			cd.methods, err = loginMethods(ctx, dc)
			probs.add(domainWhere(dc.Name), err)
			if err == nil {
				// What building the issuer and the keys would refuse.
				probs.add(domainWhere(dc.Name), issuer.CheckSettings(cd.dom.DomainSettings, cd.methods))
				if _, err := keys.New(nil, dc.Name, cd.keys); err != nil {
					probs.add(domainWhere(dc.Name), err)
				}
			}
		}
		compiled[i] = cd
	}
	if err := probs.err(); err != nil {
		return report("", err)
	}
	a.compiled = compiled
	// The identities of every domain: the directory the issuers and gates
	// read them from.
	static := make([]directory.StaticDomain, len(compiled))
	for i, cd := range compiled {
		static[i] = directory.StaticDomain{Domain: cd.dom, Policies: cd.set}
	}
	dir, derr := directory.NewStatic(static...)
	if derr != nil {
		return report("", derr)
	}
	a.static = dir
	// The store's directory under the configuration's: what the
	// configuration defines wins per id and is read-only; what is stored
	// joins it once the app has started.
	a.directory = directory.NewLayered(dir, a.storedDir)

	// Store: loaded here, opened when the app starts.
	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"backend":"sqlite"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading the store: %w", err)
	}
	opener, ok := mod.(StoreOpener)
	if !ok {
		return fmt.Errorf("module %T is not a Gatehouse store", mod)
	}
	a.opener = opener
	a.storeKey = opener.StoreKey()
	a.storeDesc = describeStore(opener)
	// A store on a server that cannot be reached fails the configuration
	// now (`caddy validate` too), unless a running configuration already
	// has it open.
	if c, ok := opener.(StoreChecker); ok {
		if _, open := pool.References(a.storeKey); !open {
			if err := c.CheckStore(ctx); err != nil {
				return err
			}
		}
	}

	a.metrics, err = issuer.NewMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}

// openStore opens the store (shared across reloads: a running
// configuration's is reused) and its directory.
func (a *App) openStore() error {
	val, _, err := pool.LoadOrNew(a.storeKey, func() (caddy.Destructor, error) {
		st, err := a.opener.OpenStore(context.Background())
		if err != nil {
			return nil, err
		}
		bg, cancel := context.WithCancel(context.Background())
		p := &pooledStore{st: st, cancel: cancel, done: make(chan struct{})}
		go sweep(bg, st, time.Duration(a.CleanupInterval), pooledLogger(), p.done)
		return p, nil
	})
	if err != nil {
		return err
	}
	a.poolKeys = append(a.poolKeys, a.storeKey)
	a.store = val.(*pooledStore).st
	stored, err := a.storedDirectory()
	if err != nil {
		return err
	}
	a.stored = stored
	a.storedDir.p.Store(stored)
	return nil
}

type pooledDirectory struct {
	dir    *directory.Stored
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *pooledDirectory) Destruct() error {
	p.cancel()
	<-p.done
	return nil
}

// storedDirectory returns the directory of the store's domains, clients,
// policies and users: one per store, shared across reloads, read once
// before it is returned and then every directory.DefaultPoll, so a change
// another instance makes applies here within about a second.
func (a *App) storedDirectory() (*directory.Stored, error) {
	key := "directory|" + a.storeKey
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		// Outlives this config: Caddy's default logger.
		plog := pooledLogger()
		d := directory.NewStored(a.store, func(err error) {
			plog.Error("the store's directory", zap.Error(err))
		})
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Refresh(lctx); err != nil {
			// The configuration is served meanwhile; the watcher retries.
			plog.Warn("reading the store's directory; serving the configuration's until it answers", zap.Error(err))
		}
		bg, stop := context.WithCancel(context.Background())
		p := &pooledDirectory{dir: d, cancel: stop, done: make(chan struct{})}
		go func() {
			defer close(p.done)
			d.Watch(bg, directory.DefaultPoll)
		}()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	a.poolKeys = append(a.poolKeys, key)
	return val.(*pooledDirectory).dir, nil
}

func domainLabel(name string) string {
	if name == "" {
		return "the default domain"
	}
	return fmt.Sprintf("domain %q", name)
}

// clientIP is Caddy's idea of the client's address: the peer, or the
// X-Forwarded-For client when the peer is one of the server's
// trusted_proxies. Login throttling counts per this address.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return issuer.RemoteIP(r)
}

// Start implements caddy.App. It opens (and migrates) the store, builds
// every domain — its signing keys, made now for a new domain, and its
// issuer — lets the handlers finish what needs the store, and starts
// following the store's domains. A failure fails the configuration's load
// (`caddy run`, a reload). Requests that arrive before (the http app may
// start first) wait for it (await).
//
// It then logs the version of Gatehouse that runs and where things are:
// the store, each domain's issuer and the sites the gates protect (as far
// as the http app's routes name them).
func (a *App) Start() error {
	err := a.start()
	if err == nil {
		a.started.Store(true)
	} else {
		a.startErr = err
	}
	close(a.ready)
	if err != nil {
		return err
	}
	a.logger.Info("started", zap.Stringer("version", version.Get()), zap.String("store", a.storeDesc),
		zap.Strings("protected_sites", a.sites))
	for _, rt := range a.registry.runtimes() {
		// This config runs now: key rotations go to its audit log.
		rt.rotationAudit.Store(a.audit)
		iss := rt.issuer.Issuer()
		a.logger.Info("issuer", zap.String("domain", rt.name), zap.String("issuer", iss),
			zap.String("discovery", iss+"/.well-known/openid-configuration"), zap.String("health", iss+"/healthz"))
	}
	return nil
}

func (a *App) start() error {
	if err := a.openStore(); err != nil {
		return err
	}
	if a.wantGateSessions {
		if _, err := a.gateSessionRevocations(); err != nil {
			return err
		}
	}
	if err := a.registry.start(context.Background()); err != nil {
		return err
	}
	for _, fn := range a.onStart {
		if err := fn(); err != nil {
			return err
		}
	}
	a.registry.watch(a.stored)
	return nil
}

// whenStarted has fn run when the app starts, after the store is open and
// the domains are built (in the order handlers were provisioned); an error
// fails the start.
func (a *App) whenStarted(fn func() error) { a.onStart = append(a.onStart, fn) }

// startWait bounds how long a request that arrives before the app has
// started waits for it.
const startWait = 30 * time.Second

// await returns when the app has started — at once, after that — or an
// error when it failed to, or did not within startWait (the caller answers
// 503).
func (a *App) await(ctx context.Context) error {
	if a.started.Load() {
		return nil
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-a.ready:
		if a.startErr != nil {
			return fmt.Errorf("gatehouse: the gatehouse app failed to start: %w", a.startErr)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("gatehouse: the gatehouse app has not started within %s", startWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noteGate records a provisioned gate's sites for the start-up log.
func (a *App) noteGate(g *Gate) {
	for _, s := range g.sites {
		for _, u := range s.urls() {
			if !slices.Contains(a.sites, u) {
				a.sites = append(a.sites, u)
			}
		}
	}
}

// Stop implements caddy.App: the registry stops following the store.
func (a *App) Stop() error {
	if a.registry != nil {
		a.registry.stop()
	}
	return nil
}

// Cleanup releases this config's hold on the shared store and key managers;
// they close when the last config that uses them is gone.
func (a *App) Cleanup() error {
	var errs []error
	// Key managers before the store they use.
	if a.registry != nil {
		a.registry.close()
	}
	// Release in reverse order: key managers before the store they use.
	for i := len(a.poolKeys) - 1; i >= 0; i-- {
		if _, err := pool.Delete(a.poolKeys[i]); err != nil {
			errs = append(errs, err)
		}
	}
	a.poolKeys = nil
	return errors.Join(errs...)
}

// loadApp returns the gatehouse app of this config, for a module named who.
func loadApp(ctx caddy.Context, who string) (*App, error) {
	appIface, err := ctx.App("gatehouse")
	if err != nil {
		return nil, fmt.Errorf("%s: loading the gatehouse app: %w", who, err)
	}
	return appIface.(*App), nil
}

// wildcardDomain, as a handler's domain, is every domain (gatehouse_issuer
// *); no domain may have this name.
const wildcardDomain = "*"

// configuredDomain checks that the configuration defines the domain ("" is
// the default domain), for a module named who.
func (a *App) configuredDomain(who, name string) error {
	if !a.isConfigured(name) {
		if len(a.Domains) == 0 {
			return fmt.Errorf("%s: no gatehouse domain is configured; add a `gatehouse { domain { issuer https://... } }` global option", who)
		}
		return fmt.Errorf("%s: %s is not configured; add it to the gatehouse global option or name one of the configured domains", who, domainLabel(name))
	}
	return nil
}

// handlerDomain checks the domain a gate or matcher names: the default
// domain and a wildcard must be configured; a named domain the
// configuration does not define is taken to be one stored through the
// management API (checked when the app starts, and served once it exists).
func (a *App) handlerDomain(who, name string) (configured bool, err error) {
	if a.isConfigured(name) {
		return true, nil
	}
	switch name {
	case "":
		return false, a.configuredDomain(who, name)
	case wildcardDomain:
		return false, fmt.Errorf("%s: name one domain; %q means every domain only to gatehouse_issuer", who, wildcardDomain)
	}
	return false, nil
}

func (a *App) isConfigured(name string) bool {
	return slices.ContainsFunc(a.Domains, func(dc *DomainConfig) bool { return dc.Name == name })
}

// expirer is what sweep needs of the store.
type expirer interface {
	DeleteExpired(ctx context.Context, now time.Time) error
}

// sweep deletes expired records until ctx is done.
func sweep(ctx context.Context, st expirer, every time.Duration, logger *zap.Logger, done chan struct{}) {
	defer close(done)
	tick(ctx, every, func() {
		if err := st.DeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			logger.Error("deleting expired records", zap.Error(err))
		}
	})
}

// pooledLogger is the logger of what a pool constructor starts (the sweeper,
// key maintenance, the revocation watcher): those goroutines outlive the
// config that created them, so they log through Caddy's default logger, not
// through the config's, whose log writers Caddy closes when it unloads the
// config.
func pooledLogger() *zap.Logger { return caddy.Log().Named("gatehouse") }

// tick calls fn every `every` until ctx is done.
func tick(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
