package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// Store is what the issuer keeps in the store: codes, refresh-token
// families and session grants, SSO sessions, revocations, sign-in failure
// counts and its request key.
type Store interface {
	store.Grants
	store.Sessions
	store.Revocations
	store.Throttle
	store.Secrets
}

// Config configures an Issuer for one domain.
type Config struct {
	// Directory is where the issuer finds the domain's settings, clients,
	// policies and users.
	Directory directory.Directory
	// Domain is the name of the domain the issuer serves in Directory.
	Domain string
	// Store persists codes, refresh tokens, sessions and revocations.
	Store Store
	// Keys signs tokens; Load must have succeeded.
	Keys *keys.Manager
	// Audit receives one entry per security decision (fields event, outcome,
	// reason, domain, client_id, sub); never secrets. Nil: discarded.
	Audit *zap.Logger
	// Logger receives operational errors (store failures). Nil: discarded.
	Logger *zap.Logger
	// Metrics, from NewMetrics; nil disables metrics.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CodeLifetime of authorization codes; default and maximum 60s.
	CodeLifetime time.Duration
	// RefreshReuseGrace: a rotated refresh token presented again within
	// this window is refused without revoking its family (a concurrent or
	// retried request); later reuse revokes the family. Default 2s.
	RefreshReuseGrace time.Duration
	// LoginTimeout bounds how long a pending authorization request (the
	// login page) stays valid; default 15m.
	LoginTimeout time.Duration
	// LoginMethods are the ways users sign in, in the order the login page
	// shows them (those offered to the client). Nil: the password method
	// alone (authn.Password).
	LoginMethods []authn.Method
	// OnRevoke is called with every revoked ID: an access-token jti, or a
	// family ID, in which case every jti of the family (revocation.JTI) is
	// revoked. The gate uses it to drop cached tokens.
	OnRevoke func(id revocation.ID)
	// ClientIP names the address sign-in throttling counts per. Default
	// RemoteIP (the connection's peer). Behind a proxy or load balancer the
	// peer is the proxy, so the Caddy handler passes Caddy's client IP,
	// which honours the server's trusted_proxies.
	ClientIP func(*http.Request) string
	// BackchannelClient delivers back-channel logout tokens to the clients
	// that registered a URI. Nil: a client that waits at most 5s per
	// delivery and follows no redirects.
	BackchannelClient *http.Client
}

// Issuer serves one domain's OpenID Connect provider.
type Issuer struct {
	cfg      Config
	dir      directory.Directory
	name     string // the domain's name
	st       Store
	keys     *keys.Manager
	audit    *zap.Logger
	log      *zap.Logger
	metrics  *Metrics
	now      func() time.Time
	issuer   string
	basePath string // path of the issuer URL, "" or "/auth"
	secure   bool   // https issuer: Secure, __Host- cookies
	// cookie names
	ssoCookie  string
	csrfCookie string

	sealer    *sealer // pending authorization requests
	own       *ownVerifier
	discovery atomic.Pointer[discoveryCache]
	methods   []*methodHost          // sign-in methods, in page order
	byName    map[string]*methodHost // by name and alias
	throttle  *loginThrottle
	// policyCheck evaluates a client's policies (Evaluate on the
	// snapshot's set; tests may watch it).
	policyCheck func(set *policy.Set, claims map[string]any, ids []string) (allowed bool, explanation string)
	// reserved remembers the custom claims already reported as dropped for
	// a reserved name (see dropReserved).
	reservedMu sync.Mutex
	reserved   map[string]bool
	// back-channel logout deliveries
	backchannel      *http.Client
	backchannelSlots chan struct{}
	// healthTimeout bounds the health check's store query (0:
	// healthTimeout); tests shorten it.
	healthTimeout time.Duration
}

// New builds an issuer. It checks the configuration and fails with a message
// that names the problem and the fix. ctx bounds what New reads (the
// domain's snapshot and the request key in the store); give it a deadline.
func New(ctx context.Context, cfg Config) (*Issuer, error) {
	if cfg.Directory == nil {
		return nil, errors.New("issuer: no directory")
	}
	if cfg.Store == nil {
		return nil, errors.New("issuer: no store")
	}
	if cfg.Keys == nil {
		return nil, errors.New("issuer: no signing keys")
	}
	if cfg.Keys.ActiveKID() == "" {
		return nil, errors.New("issuer: signing keys are not loaded; call keys.Manager.Load before issuer.New")
	}
	snap, err := cfg.Directory.Snapshot(ctx, cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("issuer: domain %q: %w", cfg.Domain, err)
	}
	if err := identity.ValidateIssuerURL(snap.Settings.Issuer); err != nil {
		return nil, fmt.Errorf("domain %q: %w", cfg.Domain, err)
	}
	u, err := url.Parse(snap.Settings.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %v", snap.Settings.Issuer, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CodeLifetime == 0 {
		cfg.CodeLifetime = 60 * time.Second
	}
	if cfg.CodeLifetime < 0 || cfg.CodeLifetime > 60*time.Second {
		return nil, fmt.Errorf("code lifetime %s is out of range; use at most 60s", cfg.CodeLifetime)
	}
	if err := checkSessionLifetime(snap.Settings.SessionLifetime); err != nil {
		return nil, err
	}
	if cfg.RefreshReuseGrace == 0 {
		cfg.RefreshReuseGrace = 2 * time.Second
	}
	if cfg.RefreshReuseGrace < 0 || cfg.RefreshReuseGrace > time.Minute {
		return nil, fmt.Errorf("refresh reuse grace %s is out of range; use 0s..1m", cfg.RefreshReuseGrace)
	}
	if cfg.LoginTimeout == 0 {
		cfg.LoginTimeout = 15 * time.Minute
	}
	if cfg.Audit == nil {
		cfg.Audit = zap.NewNop()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	// A client naming a policy the domain does not define is refused by the
	// configuration; one from the store (whose policy may have been deleted
	// since) must not stop the issuer from starting: its users are denied
	// (an undefined policy never holds) until the policy is defined again.
	for _, c := range snap.Clients() {
		if err := snap.CheckPolicies(c.Policies); err != nil {
			cfg.Logger.Warn("a client names policies the domain does not define; its sign-ins are denied until they are defined",
				zap.String("domain", cfg.Domain), zap.String("client_id", c.ID), zap.Error(err))
		}
	}
	i := &Issuer{
		cfg:         cfg,
		dir:         cfg.Directory,
		name:        cfg.Domain,
		keys:        cfg.Keys,
		audit:       cfg.Audit,
		log:         cfg.Logger,
		metrics:     cfg.Metrics,
		now:         cfg.Now,
		issuer:      snap.Settings.Issuer,
		basePath:    strings.TrimSuffix(u.EscapedPath(), "/"),
		secure:      u.Scheme == "https",
		throttle:    newLoginThrottle(cfg.Now, cfg.ClientIP),
		policyCheck: evaluatePolicies,
		reserved:    map[string]bool{},

		backchannel:      cfg.BackchannelClient,
		backchannelSlots: make(chan struct{}, maxBackchannelInFlight),
	}
	if i.backchannel == nil {
		i.backchannel = defaultBackchannelClient()
	}
	i.st = timedStore{Store: cfg.Store, m: cfg.Metrics, domain: cfg.Domain}
	i.throttle.shared, i.throttle.onError = i.st, i.storeError
	i.ssoCookie, i.csrfCookie = "gatehouse-sso", "gatehouse-csrf"
	if i.secure {
		i.ssoCookie, i.csrfCookie = "__Host-gatehouse-sso", "__Host-gatehouse-csrf"
	}
	// Cookies are host-wide: they ignore the port, and __Host- requires
	// Path=/. Issuers sharing a host (under different paths, or on other
	// ports) need distinct names, or signing in at one would replace the
	// other's SSO session.
	sfx := "-" + store.HashID(i.issuer)[:8]
	i.ssoCookie += sfx
	i.csrfCookie += sfx
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	key, err := cfg.Store.Secret(ctx, "issuer/request-key/"+cfg.Domain, fresh)
	if err != nil {
		return nil, fmt.Errorf("issuer: reading the request key from the store: %w", err)
	}
	if i.sealer, err = newSealer(key, cfg.Now, cfg.LoginTimeout); err != nil {
		return nil, err
	}
	if i.own, err = newOwnVerifier(i.issuer, cfg.Keys, cfg.Now); err != nil {
		return nil, err
	}
	if err := i.setMethods(cfg.LoginMethods); err != nil {
		return nil, err
	}
	if _, err = i.discoveryFor(snap); err != nil {
		return nil, err
	}
	return i, nil
}

// minSessionLifetime bounds the SSO session's lifetime from below.
const minSessionLifetime = time.Minute

func checkSessionLifetime(sl time.Duration) error {
	if sl != 0 && sl < minSessionLifetime {
		return fmt.Errorf("session lifetime %s is too short; use at least 1m", sl)
	}
	return nil
}

// CheckSettings reports what New would refuse in a domain's settings and
// sign-in methods, without a store, keys or a directory: a configuration
// is checked with it before anything is opened (`caddy validate` creates
// nothing). nil methods: the password method alone.
func CheckSettings(settings identity.DomainSettings, methods []authn.Method) error {
	if err := identity.ValidateIssuerURL(settings.Issuer); err != nil {
		return err
	}
	if err := checkSessionLifetime(settings.SessionLifetime); err != nil {
		return err
	}
	return new(Issuer).setMethods(methods)
}

// sessionLifetime is the domain's SSO session lifetime (default 12h).
func sessionLifetime(snap *directory.Snapshot) time.Duration {
	if sl := snap.Settings.SessionLifetime; sl >= minSessionLifetime {
		return sl
	}
	return 12 * time.Hour
}

// evaluatePolicies is the policy check: at least one of ids holds. An id
// the set does not define never holds (fail closed).
func evaluatePolicies(set *policy.Set, claims map[string]any, ids []string) (bool, string) {
	d := set.Evaluate(claims, ids)
	return d.Allow, d.Explanation()
}

// snapshot returns the domain's current snapshot; an error means the
// directory could not answer (or the domain is gone).
func (i *Issuer) snapshot(ctx context.Context) (*directory.Snapshot, error) {
	snap, err := i.dir.Snapshot(ctx, i.name)
	if err != nil {
		i.directoryError("snapshot", err)
	}
	return snap, err
}

// Issuer is the issuer identifier (the exact `iss` of every token).
func (i *Issuer) Issuer() string { return i.issuer }

// EndSessionURL is the RP-initiated logout endpoint.
func (i *Issuer) EndSessionURL() string { return i.issuer + "/logout" }

// AuthorizationURL is the authorization endpoint.
func (i *Issuer) AuthorizationURL() string { return i.issuer + "/authorize" }

// TokenURL is the token endpoint.
func (i *Issuer) TokenURL() string { return i.issuer + "/token" }

// Directory is where the issuer finds its domain's identities; Name is
// the domain's name in it.
func (i *Issuer) Directory() directory.Directory { return i.dir }

// Name is the name of the domain the issuer serves.
func (i *Issuer) Name() string { return i.name }

// endpoint paths relative to the issuer path.
const (
	pathOIDCDiscovery  = "/.well-known/openid-configuration"
	pathOAuthDiscovery = "/.well-known/oauth-authorization-server"
	pathJWKS           = "/jwks"
	pathAuthorize      = "/authorize"
	pathToken          = "/token"
	pathUserinfo       = "/userinfo"
	pathRevoke         = "/revoke"
	pathIntrospect     = "/introspect"
	pathLogout         = "/logout"
	pathLogin          = "/login"
	pathHealth         = "/healthz"
	// pathLoginMethod stands for <issuer>/login/<method>/...: the routes of
	// the sign-in methods.
	pathLoginMethod = "/login/*"
)

// route maps a request path to the endpoint it names ("" when none).
func (i *Issuer) route(p string) string {
	if i.basePath != "" && p == pathOAuthDiscovery+i.basePath {
		return pathOAuthDiscovery // RFC 8414 section 3 form at the host root
	}
	rest, ok := strings.CutPrefix(p, i.basePath)
	if !ok {
		return ""
	}
	if m, _ := i.methodRoute(rest); m != nil {
		return pathLoginMethod
	}
	switch rest {
	case pathOIDCDiscovery, pathOAuthDiscovery, pathJWKS, pathAuthorize, pathToken,
		pathUserinfo, pathRevoke, pathIntrospect, pathLogout, pathLogin, pathHealth:
		return rest
	}
	return ""
}

// Handles reports whether the request's path is one of the issuer's
// endpoints; the Caddy handler passes other requests to the next handler.
func (i *Issuer) Handles(r *http.Request) bool { return i.route(r.URL.Path) != "" }

// Owns reports whether the issuer answers the request: one of its
// endpoints, or — for an issuer with a path (https://example.com/auth) —
// any path under it, which gets 404 when it is not an endpoint. An issuer at
// the root of its host owns only its endpoints: it often shares the site
// with an application, whose paths must reach the next handler.
func (i *Issuer) Owns(r *http.Request) bool {
	if i.Handles(r) {
		return true
	}
	p := r.URL.Path
	return i.basePath != "" && (p == i.basePath || strings.HasPrefix(p, i.basePath+"/"))
}

// ServeHTTP serves the issuer's endpoints; other paths get 404. Each
// request reads the domain's snapshot once and uses it throughout.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := i.route(r.URL.Path)
	switch ep {
	case "":
		http.NotFound(w, r)
		return
	case pathJWKS:
		i.serveJWKS(w, r)
		return
	case pathLogin:
		i.serveLogin(w, r)
		return
	case pathLoginMethod:
		i.serveLoginMethod(w, r)
		return
	case pathHealth:
		i.serveHealth(w, r)
		return
	}
	snap, err := i.snapshot(r.Context())
	if err != nil {
		i.directoryUnavailable(w, ep)
		return
	}
	switch ep {
	case pathOIDCDiscovery, pathOAuthDiscovery:
		i.serveDiscovery(w, r, snap)
	case pathAuthorize:
		i.serveAuthorize(w, r, snap)
	case pathToken:
		i.serveToken(w, r, snap)
	case pathUserinfo:
		i.serveUserinfo(w, r, snap)
	case pathRevoke:
		i.serveRevoke(w, r, snap)
	case pathIntrospect:
		i.serveIntrospect(w, r, snap)
	case pathLogout:
		i.serveLogout(w, r, snap)
	}
}

// directoryUnavailable answers a request that found no snapshot of the
// domain, in the form its endpoint answers errors in: try again later.
func (i *Issuer) directoryUnavailable(w http.ResponseWriter, ep string) {
	const desc = "the issuer's directory could not be read; try again"
	switch ep {
	case pathToken, pathRevoke, pathIntrospect:
		i.writeOAuthError(w, unavailable(desc))
	case pathUserinfo:
		writeBearerError(w, http.StatusServiceUnavailable, ErrTemporarilyUnavailable, desc)
	default:
		writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The sign-in service cannot be reached for a moment. Try again shortly.", ErrTemporarilyUnavailable)
	}
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("issuer: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
