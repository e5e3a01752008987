package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
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
// State that must outlive a config reload (the open store, the store's
// directory and its watcher, key managers and their rotation goroutines)
// lives in a process-wide usage pool, so `caddy reload` logs nobody out.
type App struct {
	// StoreRaw selects the store backend (module namespace gatehouse.stores).
	// Default: {"backend": "sqlite"} — a SQLite file in Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=gatehouse.stores inline_key=backend"`

	// Domains are the tenants. Each is its own OpenID Connect issuer. A domain
	// with an empty name is the default domain.
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
	store      store.Store
	storeKey   string
	// directory holds the identities of every domain: the configuration's
	// over the store's.
	directory directory.Directory
	domains   map[string]*domainState
	metrics   *issuer.Metrics
	poolKeys  []string // usage-pool keys this config holds
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

// domainState is a provisioned domain: its name in the directory (where
// its clients, policies and users are), its keys, issuer and revocations.
type domainState struct {
	name   string
	keys   *keys.Manager
	issuer *issuer.Issuer
	revoke *revocation.Hub
	// rotationAudit is where the shared key manager audits rotations.
	rotationAudit *atomic.Pointer[zap.Logger]
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

// Provision checks the whole configuration first, reporting every problem
// at once, then opens the store and builds every domain.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.audit = a.logger.Named("audit")
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
		cd, err := dc.compile()
		probs.add(domainWhere(dc.Name), err)
		if cd != nil {
			cd.methods, err = loginMethods(ctx, dc)
			probs.add(domainWhere(dc.Name), err)
		}
		compiled[i] = cd
	}
	if err := probs.err(); err != nil {
		return report("", err)
	}
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
	a.directory = dir

	// Store.
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
	a.storeKey = opener.StoreKey()
	a.storeDesc = describeStore(opener)
	val, _, err := pool.LoadOrNew(a.storeKey, func() (caddy.Destructor, error) {
		st, err := opener.OpenStore(context.Background())
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

	// The store's directory under the configuration's: what the
	// configuration defines wins per id and is read-only; what is stored
	// joins it.
	stored, err := a.storedDirectory()
	if err != nil {
		return err
	}
	a.directory = directory.NewLayered(dir, stored)

	a.metrics, err = issuer.NewMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	// Domains.
	a.domains = make(map[string]*domainState, len(a.Domains))
	for i, dc := range a.Domains {
		ds, err := a.provisionDomain(ctx, dc, compiled[i])
		if err != nil {
			return fmt.Errorf("%s: %w", domainWhere(dc.Name), err)
		}
		a.domains[dc.Name] = ds
	}
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

// provisionDomain builds a checked domain's run-time state: its signing keys
// (shared across reloads) and its issuer.
func (a *App) provisionDomain(ctx context.Context, dc *DomainConfig, cd *compiledDomain) (*domainState, error) {
	kcfg := cd.keys
	kcfg.Encryption = a.encryption

	// Key managers (and their rotation goroutines) are shared across
	// reloads per store, domain and key settings.
	// Key rotation is a security event: it goes to the audit log. The
	// manager outlives this config, so it logs to the audit logger of the
	// config that runs (see pooledKeys.audit).
	domainName := dc.Name
	audit := new(atomic.Pointer[zap.Logger])
	audit.Store(a.audit)
	kcfg.OnRotate = func(oldKID, newKID string) {
		msg := "signing key rotated"
		if oldKID == "" {
			msg = "signing key created" // the domain's first key
		}
		audit.Load().Info(msg,
			zap.String("event", "key_rotation"), zap.String("outcome", "success"), zap.String("domain", domainName),
			zap.String("old_kid", oldKID), zap.String("kid", newKID))
	}
	poolKey := fmt.Sprintf("keys|%s|%s|%s|%s|%s|%s|%s", a.storeKey, dc.Name, kcfg.Algorithm, kcfg.RotateEvery, kcfg.MaxTokenLifetime, time.Duration(a.RevocationPoll), a.encryption.Fingerprint())
	logger := a.logger.With(zap.String("domain", dc.Name))
	val, _, err := pool.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		mgr, err := keys.New(a.store, dc.Name, kcfg)
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
		plog := pooledLogger().With(zap.String("domain", dc.Name))
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
	a.poolKeys = append(a.poolKeys, poolKey)
	pk := val.(*pooledKeys)

	ds := &domainState{name: dc.Name, keys: pk.mgr, revoke: pk.revoke, rotationAudit: pk.audit}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ds.issuer, err = issuer.New(ictx, issuer.Config{
		Directory:    a.directory,
		Domain:       dc.Name,
		Store:        a.store,
		Keys:         pk.mgr,
		Audit:        a.audit,
		Logger:       logger,
		Metrics:      a.metrics,
		OnRevoke:     pk.revoke.Publish,
		ClientIP:     clientIP,
		LoginMethods: cd.methods,
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
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

// Start implements caddy.App. It logs the version of Gatehouse that runs and
// where things are: the store, each domain's issuer and the sites the gates
// protect (as far as the http app's routes name them).
func (a *App) Start() error {
	a.logger.Info("started", zap.Stringer("version", version.Get()), zap.String("store", a.storeDesc),
		zap.Strings("protected_sites", a.sites))
	for _, dc := range a.Domains {
		ds := a.domains[dc.Name]
		if ds == nil {
			continue
		}
		// This config runs now: key rotations go to its audit log.
		ds.rotationAudit.Store(a.audit)
		iss := ds.issuer.Issuer()
		a.logger.Info("issuer", zap.String("domain", dc.Name), zap.String("issuer", iss),
			zap.String("discovery", iss+"/.well-known/openid-configuration"), zap.String("health", iss+"/healthz"))
	}
	return nil
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

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared store and key managers;
// they close when the last config that uses them is gone.
func (a *App) Cleanup() error {
	var errs []error
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

// loadDomain returns a provisioned domain of this config's gatehouse app,
// for a module named who.
func loadDomain(ctx caddy.Context, who, name string) (*domainState, error) {
	app, err := loadApp(ctx, who)
	if err != nil {
		return nil, err
	}
	ds, err := app.domain(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	return ds, nil
}

// domain returns a provisioned domain by name ("" is the default domain).
func (a *App) domain(name string) (*domainState, error) {
	ds, ok := a.domains[name]
	if !ok {
		if len(a.domains) == 0 {
			return nil, fmt.Errorf("no gatehouse domain is configured; add a `gatehouse { domain { issuer https://... } }` global option")
		}
		return nil, fmt.Errorf("%s is not configured; add it to the gatehouse global option or name one of the configured domains", domainLabel(name))
	}
	return ds, nil
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
