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
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// PolicyChecker evaluates a client's policies against the aggregated claims
// of the ID token and the access token. A client with several policies is
// allowed when at least one holds.
type PolicyChecker interface {
	Check(claims map[string]any, policyIDs []string) (allowed bool, explanation string)
}

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
	// Domain is the compiled identity model (Compile is called if needed).
	Domain *identity.Domain
	// Store persists codes, refresh tokens, sessions and revocations.
	Store Store
	// Keys signs tokens; Load must have succeeded.
	Keys *keys.Manager
	// Policies evaluates client policies; nil means no client may name
	// policies (New refuses such a configuration rather than ignore them).
	Policies PolicyChecker
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
	// SessionLifetime of the SSO session at the issuer; default 12h.
	SessionLifetime time.Duration
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
	// family ID, in which case every jti of the form "<familyID>.<random>"
	// is revoked. The gate uses it to drop cached tokens.
	OnRevoke func(id string)
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
	domain   *identity.Domain
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

	sealer     *sealer // pending authorization requests
	discovery  []byte
	origins    map[string]bool        // CORS origins of all clients
	methods    []*methodHost          // sign-in methods, in page order
	byName     map[string]*methodHost // by name and alias
	dummyHash  string                 // spent for logins that name no account
	scopesList []string
	throttle   *loginThrottle
	// back-channel logout deliveries
	backchannel      *http.Client
	backchannelSlots chan struct{}
	// healthTimeout bounds the health check's store query (0:
	// healthTimeout); tests shorten it.
	healthTimeout time.Duration
}

// New builds an issuer. It checks the configuration and fails with a message
// that names the problem and the fix.
func New(cfg Config) (*Issuer, error) {
	if cfg.Domain == nil {
		return nil, errors.New("issuer: no domain")
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
	if !cfg.Domain.Compiled() {
		if err := cfg.Domain.Compile(); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(cfg.Domain.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %v", cfg.Domain.Issuer, err)
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
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 12 * time.Hour
	}
	if cfg.SessionLifetime < time.Minute {
		return nil, fmt.Errorf("session lifetime %s is too short; use at least 1m", cfg.SessionLifetime)
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
	origins := map[string]bool{}
	scopes := append([]string(nil), identity.StandardScopes...)
	for _, c := range cfg.Domain.Clients {
		if len(c.Policies) > 0 && cfg.Policies == nil {
			return nil, fmt.Errorf("client %q names policies but no policy checker is configured; define the policies or remove them from the client", c.ID)
		}
		for _, o := range c.AllowedOrigins {
			origins[strings.TrimSuffix(o, "/")] = true
		}
		for _, s := range c.Scopes {
			if !contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	i := &Issuer{
		cfg:        cfg,
		domain:     cfg.Domain,
		keys:       cfg.Keys,
		audit:      cfg.Audit,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
		now:        cfg.Now,
		issuer:     cfg.Domain.Issuer,
		basePath:   strings.TrimSuffix(u.EscapedPath(), "/"),
		secure:     u.Scheme == "https",
		origins:    origins,
		scopesList: scopes,
		throttle:   newLoginThrottle(cfg.Now, cfg.ClientIP),

		backchannel:      cfg.BackchannelClient,
		backchannelSlots: make(chan struct{}, maxBackchannelInFlight),
	}
	if i.backchannel == nil {
		i.backchannel = defaultBackchannelClient()
	}
	i.st = timedStore{Store: cfg.Store, m: cfg.Metrics, domain: cfg.Domain.Name}
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	key, err := cfg.Store.Secret(ctx, "issuer/request-key/"+cfg.Domain.Name, fresh)
	if err != nil {
		return nil, fmt.Errorf("issuer: reading the request key from the store: %w", err)
	}
	if i.sealer, err = newSealer(key, cfg.Now, cfg.LoginTimeout); err != nil {
		return nil, err
	}
	if err := i.setMethods(cfg.LoginMethods); err != nil {
		return nil, err
	}
	for _, u := range cfg.Domain.Users {
		if u.PasswordHash != "" && identity.ValidatePasswordHash(u.PasswordHash) == nil {
			i.dummyHash = u.PasswordHash
			break
		}
	}
	if i.discovery, err = i.buildDiscovery(); err != nil {
		return nil, err
	}
	return i, nil
}

// Issuer is the issuer identifier (the exact `iss` of every token).
func (i *Issuer) Issuer() string { return i.issuer }

// EndSessionURL is the RP-initiated logout endpoint.
func (i *Issuer) EndSessionURL() string { return i.issuer + "/logout" }

// AuthorizationURL is the authorization endpoint.
func (i *Issuer) AuthorizationURL() string { return i.issuer + "/authorize" }

// TokenURL is the token endpoint.
func (i *Issuer) TokenURL() string { return i.issuer + "/token" }

// Domain is the identity model the issuer serves.
func (i *Issuer) Domain() *identity.Domain { return i.domain }

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

// ServeHTTP serves the issuer's endpoints; other paths get 404.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := i.route(r.URL.Path)
	switch ep {
	case pathOIDCDiscovery, pathOAuthDiscovery:
		i.serveDiscovery(w, r)
	case pathJWKS:
		i.serveJWKS(w, r)
	case pathAuthorize:
		i.serveAuthorize(w, r)
	case pathLogin:
		i.serveLogin(w, r)
	case pathLoginMethod:
		i.serveLoginMethod(w, r)
	case pathToken:
		i.serveToken(w, r)
	case pathUserinfo:
		i.serveUserinfo(w, r)
	case pathRevoke:
		i.serveRevoke(w, r)
	case pathIntrospect:
		i.serveIntrospect(w, r)
	case pathLogout:
		i.serveLogout(w, r)
	case pathHealth:
		i.serveHealth(w, r)
	default:
		http.NotFound(w, r)
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
