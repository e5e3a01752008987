package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/bearer"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
)

func init() {
	caddy.RegisterModule(Gate{})
}

// Gate protects a site or an API: it authenticates the request (a bearer
// JWT, or a browser session obtained through authorization code + PKCE),
// evaluates policies, and forwards the user's claims to the next handler as
// request headers. Headers the gate owns are always deleted from the
// incoming request first, so a client can never spoof them.
//
// Requests without credentials get 401 with a WWW-Authenticate challenge;
// only browser navigations are redirected to sign in.
type Gate struct {
	// Domain names the gatehouse domain whose embedded issuer, clients and
	// policies the gate uses. Empty: the default domain.
	Domain string `json:"domain,omitempty"`

	// Login enables browser sessions. Omit it to protect an API only.
	Login *GateLogin `json:"login,omitempty"`

	// Bearer lists the trusted token issuers for API requests; the token's
	// `iss` selects the entry. A block without issuer, jwks_url and
	// public_key trusts the domain's embedded issuer.
	Bearer []*GateBearer `json:"bearer,omitempty"`

	// Policies are policy ids of the domain; at least one must hold.
	Policies []string `json:"policies,omitempty"`

	// Forward sets request headers from claims. Arrays are joined with
	// commas; objects are sent as JSON.
	Forward []ForwardHeader `json:"forward,omitempty"`

	// ForwardAccessToken, when "Authorization", forwards the access token of
	// a browser session as `Authorization: Bearer <token>` (bearer requests
	// keep the token they came with). No other header is accepted: Caddy's
	// logs (reverse_proxy's debug "upstream roundtrip" entry, access logs)
	// write every request header in full except Authorization, Cookie and
	// Proxy-Authorization. Default: empty, no token forwarded.
	ForwardAccessToken string `json:"forward_access_token,omitempty"`

	// ForwardIDToken, when "Authorization", forwards the ID token of a
	// browser session as `Authorization: Bearer <token>` (as oauth2-proxy's
	// pass_authorization_header does); like ForwardAccessToken it accepts no
	// other header, and the two cannot both be set (one Authorization
	// header). Default: empty, no token forwarded.
	ForwardIDToken string `json:"forward_id_token,omitempty"`

	// ForwardSubjectKind, if set, names a header that receives what kind of
	// subject was authenticated: "client" for a client's own token (the
	// client_credentials grant, whose sub is the client id) and "user" for
	// everything else, browser sessions included. The same value is the
	// placeholder {http.auth.subject_kind}. A token is a client's when its
	// gty claim is client_credentials (the embedded issuer's marker; Auth0
	// writes client-credentials) or, from an issuer other than the embedded
	// one, when its sub equals its client_id (RFC 9068 section 2.2).
	// Default: empty, not forwarded.
	ForwardSubjectKind string `json:"forward_subject_kind,omitempty"`

	// UserinfoPath is where the gate answers "who am I" for the caller,
	// after the same authentication and policies as any request: a GET or
	// HEAD with a valid session or bearer token gets 200 application/json,
	// Cache-Control no-store, {"sub": <subject>, "subject_kind": "user" or
	// "client", "claims": {<claim>: <value>, ...}} with the value of every
	// claim Forward names (keyed by claim name, as JSON values; claims the
	// caller lacks are left out) and never a token; without credentials 401
	// with WWW-Authenticate (never a login redirect); refused by the
	// policies 403. "off" turns it off. Default: /.gatehouse/userinfo.
	UserinfoPath string `json:"userinfo_path,omitempty"`

	app      *App
	policies *policyRef // nil without Policies
	// validators are the bearer blocks' validators, in order; the
	// embedded issuer's is nil here (see gateBinding).
	validators []*gateValidator
	// needsDomain is set when the gate uses its domain's runtime (its
	// embedded issuer's keys or its sign-in): it is looked up on every
	// request, and what the gate builds on it is built again when it
	// changes.
	needsDomain bool
	// run holds what the gate serves with (see gateBinding).
	run *gateRun
	// callbackPath and logoutPath are the login's paths (with defaults).
	callbackPath, logoutPath string
	owned                    []string
	// forwardKeys are the canonical header names of Forward, in order.
	forwardKeys []string
	// kindKey is the canonical name of ForwardSubjectKind.
	kindKey  string
	logger   *zap.Logger
	audit    *zap.Logger
	metrics  *gateMetrics
	releases []func()
	// userinfoPath is UserinfoPath with its default; "" when off.
	userinfoPath string
	// sites the gate serves, as the http app's routes say (see gateSites).
	sites []site
}

// ForwardHeader maps one claim to one request header.
type ForwardHeader struct {
	// Header is the request header to set, e.g. X-Auth-Email.
	Header string `json:"header"`
	// Claim is the claim name; dotted paths reach into objects.
	Claim string `json:"claim"`
}

// GateLogin configures browser sessions.
type GateLogin struct {
	// Client is the client id: a client of the domain's embedded issuer, or
	// (with Issuer) a client registered at an external OIDC provider.
	Client string `json:"client"`
	// Issuer of an external OpenID Connect provider. Empty: the domain's
	// embedded issuer, called in-process.
	Issuer string `json:"issuer,omitempty"`
	// ClientSecret for an external provider (omit for a public client).
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes to request. Default: openid profile email (embedded issuer:
	// the client's scopes).
	Scopes []string `json:"scopes,omitempty"`
	// CallbackPath on the protected site. Default: /.gatehouse/callback.
	CallbackPath string `json:"callback_path,omitempty"`
	// LogoutPath on the protected site. It logs out at once on a GET or
	// POST the browser marks Sec-Fetch-Site same-origin, same-site or none;
	// any other request gets a confirmation page whose form POSTs the logout
	// with a CSRF token. A POST with switch=1 (the "Sign in as someone else"
	// button of the gate's pages) ends the gate's session the same way and
	// starts a login with prompt=login instead of ending the provider's
	// seal. Default: /.gatehouse/logout.
	LogoutPath string `json:"logout_path,omitempty"`
	// PostLogoutRedirect is where the browser lands after logout: a path on
	// this site or a URL registered with the provider. Default: the gate's
	// signed-out page, /.gatehouse/signed-out ("You are signed out", with a
	// link to sign in again). With the embedded issuer a path on this site
	// needs no registration (the issuer's sealed logout hint names it); an
	// external provider must list the absolute URL among the client's
	// post-logout redirect URIs.
	PostLogoutRedirect string `json:"post_logout_redirect,omitempty"`
	// SessionLifetime caps a browser seal. Default: 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`
	// RefreshBefore: the session refreshes its access token (with the
	// refresh token) when less than this is left. Default: a quarter of the
	// token's lifetime, at most 30s.
	RefreshBefore caddy.Duration `json:"refresh_before,omitempty"`
}

// GateBearer is one trusted issuer of bearer tokens.
type GateBearer struct {
	// Issuer is the exact expected `iss`. With no JWKSURL or PublicKeyFile its
	// keys come from OIDC discovery of this URL. Empty: the embedded issuer.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURL skips discovery.
	JWKSURL string `json:"jwks_url,omitempty"`
	// PublicKeyFile is a PEM public key or a JWKS file.
	PublicKeyFile string `json:"public_key_file,omitempty"`
	// Audiences: the token's aud must contain one. Default for the embedded
	// issuer: none — an audience is required.
	Audiences []string `json:"audiences,omitempty"`
	// Scopes the token must carry: all of them, or any when ScopesAny.
	Scopes    []string `json:"scopes,omitempty"`
	ScopesAny bool     `json:"scopes_any,omitempty"`
	// Algorithms narrows the allow-list. Default: the asymmetric algorithms
	// of the issuer's keys (from discovery when available).
	Algorithms []string `json:"algorithms,omitempty"`
	// Leeway for exp/nbf/iat. Default 30s, at most 5m.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// Types are the accepted JWT `typ` headers. Default at+jwt (RFC 9068);
	// JWT accepts issuers that do not follow RFC 9068. The embedded issuer
	// always uses at+jwt.
	Types []string `json:"types,omitempty"`
}

type gateValidator struct {
	issuer string
	v      *bearer.Validator
	// embedded is set for the domain's embedded issuer.
	embedded bool
	// revoked is set for the embedded issuer: its revocations are known in
	// process.
	revoked *revocation.Hub
}

// CaddyModule returns the Caddy module information.
func (Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.gatehouse",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision builds the validators, the login flow and the header list. A
// problem is reported naming the gate's site.
func (g *Gate) Provision(ctx caddy.Context) error {
	err := g.provision(ctx)
	if g.app == nil {
		return err // the gatehouse app failed: its own report says why
	}
	return reportGate(g, err)
}

func (g *Gate) provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.run = new(gateRun)
	var err error
	if g.app, err = loadApp(ctx, "gatehouse"); err != nil {
		return err
	}
	g.audit = g.app.audit.With(zap.String("domain", g.Domain))
	g.sites = gateSites(ctx, g)
	g.app.noteGate(g)
	if g.metrics, err = newGateMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering the gate's metrics: %w", err)
	}
	embeddedLogin := g.Login != nil && g.Login.Issuer == ""
	g.needsDomain = embeddedLogin
	for _, b := range g.Bearer {
		g.needsDomain = g.needsDomain || b.embedded()
	}
	configured := true
	if g.needsDomain || len(g.Policies) > 0 {
		if configured, err = g.app.handlerDomain("gatehouse", g.Domain); err != nil {
			return err
		}
	}
	if len(g.Policies) > 0 {
		g.policies = g.app.policyRef("gatehouse", g.Domain, g.Policies, configured, g.logger)
	}
	embedded := 0
	for i, b := range g.Bearer {
		v, err := g.provisionBearer(ctx, b)
		if err != nil {
			return fmt.Errorf("gatehouse: bearer[%d]: %w", i, err)
		}
		if v == nil {
			if embedded++; embedded > 1 {
				return fmt.Errorf("gatehouse: two bearer blocks trust the embedded issuer; merge them (the token's iss selects the block)")
			}
		}
		for _, other := range g.validators {
			if other != nil && v != nil && other.issuer == v.issuer {
				return fmt.Errorf("gatehouse: two bearer blocks trust issuer %q; merge them (the token's iss selects the block)", v.issuer)
			}
		}
		if v != nil && embedded > 0 || v == nil && len(g.validators) > 0 {
			// The embedded issuer's URL, when the configuration says it
			// (a stored domain's is checked when the gate binds to it).
			if iss := g.embeddedIssuer(ctx, configured); iss != "" {
				for _, other := range append(slices.Clone(g.validators), v) {
					if other != nil && other.issuer == iss {
						return fmt.Errorf("gatehouse: two bearer blocks trust issuer %q; merge them (the token's iss selects the block)", iss)
					}
				}
			}
		}
		g.validators = append(g.validators, v)
	}
	if g.Login != nil {
		g.app.wantGateSessions = true
		if err := g.checkLogin(ctx, configured); err != nil {
			return fmt.Errorf("gatehouse: login: %w", err)
		}
	}
	if err := g.provisionUserinfo(); err != nil {
		return err
	}
	if err := g.provisionHeaders(); err != nil {
		return err
	}
	// What needs the store, or the domain's keys and issuer, is built when
	// the app starts — and again whenever a stored domain's runtime
	// changes.
	g.app.whenStarted(func() error { return reportGate(g, g.start(configured)) })
	return nil
}

// embeddedIssuer is the issuer URL of the gate's domain when the
// configuration defines the domain, else "".
func (g *Gate) embeddedIssuer(ctx context.Context, configured bool) string {
	if !configured {
		return ""
	}
	snap, err := g.app.static.Snapshot(ctx, g.Domain)
	if err != nil {
		return ""
	}
	return snap.Settings.Issuer
}

// checkLogin checks the login configuration without the store: the
// durations, an external provider's secret, and — for a configured domain —
// that the client is registered with the gate's callback on its site.
func (g *Gate) checkLogin(ctx context.Context, configured bool) error {
	l := g.Login
	g.callbackPath, g.logoutPath = l.paths()
	if l.RefreshBefore < 0 {
		return fmt.Errorf("refresh_before %s is negative; give a positive duration such as 30s, or omit it", time.Duration(l.RefreshBefore))
	}
	if l.Issuer != "" {
		if l.ClientSecret != "" && caddy.NewReplacer().ReplaceKnown(l.ClientSecret, "") == "" {
			return fmt.Errorf("client_secret %q expands to nothing; set the environment variable or file it names", l.ClientSecret)
		}
		return nil
	}
	if !configured {
		return nil // checked when the domain is served
	}
	snap, err := g.app.directory.Snapshot(ctx, g.Domain)
	if err != nil {
		return fmt.Errorf("%s: %w", domainLabel(g.Domain), err)
	}
	c := snap.Client(l.Client)
	if c == nil {
		return errLoginClient(l.Client, g.Domain, g.callbackPath)
	}
	return checkCallbackRegistered(c, g.callbackPath, g.sites)
}

// errLoginClient says that the gate's login client is not in its domain.
func errLoginClient(client, domain, callbackPath string) error {
	return fmt.Errorf("client %q is not registered in %s; add `client %s { redirect_uris https://<this site>%s }` to it", client, domainLabel(domain), client, callbackPath)
}

// paths are the login's callback and logout paths, defaults applied.
func (l *GateLogin) paths() (callback, logout string) {
	callback, logout = l.CallbackPath, l.LogoutPath
	if callback == "" {
		callback = "/.gatehouse/callback"
	}
	if logout == "" {
		logout = "/.gatehouse/logout"
	}
	return callback, logout
}

// gateRun holds what a gate serves with.
type gateRun struct {
	// bound is the current binding (nil until the app starts, or while
	// the gate's domain is not served).
	bound atomic.Pointer[gateBinding]
	mu    sync.Mutex   // one bind at a time
	fail  *bindFailure // the last failed bind; guarded by mu
}

// gateBinding is what a gate serves with: its validators (the embedded
// issuer's built on its domain's runtime) and its browser sessions.
type gateBinding struct {
	rt         *domainRuntime // nil when the gate needs no domain
	validators []*gateValidator
	web        *gateWeb // nil without Login
	// seen is the registry state in which rt was last found to be the
	// domain's runtime: while the registry is unchanged, a request needs
	// no lookup.
	seen     atomic.Pointer[registryState]
	releases []func() // revocation subscriptions of the embedded validator
}

// bindFailure is a failed attempt to bind a runtime, not repeated within
// bindRetry.
type bindFailure struct {
	rt  *domainRuntime
	at  time.Time
	err error
}

// bindRetry is how long a failure to build what a gate serves with (say,
// its login client does not exist yet in a stored domain) is answered
// before it is tried again.
const bindRetry = time.Second

// errDomainNotServed answers requests to a gate whose domain is not served:
// not created yet, deleted, or failed to build.
var errDomainNotServed = errors.New("gatehouse: the gate's domain is not served (not in the configuration or the store, or it could not be built); requests are refused until it is")

// start builds what the gate serves with when the app starts. A
// configured domain is always served: failing to build on it fails the
// start. A stored one may not exist yet; its gate answers 503 until it does.
func (g *Gate) start(configured bool) error {
	if !g.needsDomain {
		_, err := g.bind(nil, nil)
		return err
	}
	reg := g.app.registry.state.Load()
	rt := reg.lookup(g.Domain)
	if rt == nil {
		g.logger.Warn("the gate's domain is neither configured nor stored (yet); its requests get 503 until it is created through the management API",
			zap.String("domain", g.Domain))
		return nil
	}
	_, err := g.bind(rt, reg)
	if err != nil && !configured {
		g.logger.Error("the gate cannot serve its stored domain yet; its requests get 503", zap.String("domain", g.Domain), zap.Error(err))
		return nil
	}
	return err
}

// binding returns what the gate serves this request with: for a gate that
// uses its domain, the domain's runtime is looked up (an atomic load while
// the registry is unchanged) and what the gate builds on it is rebuilt
// when it changed.
func (g *Gate) binding() (*gateBinding, error) {
	b := g.run.bound.Load()
	if !g.needsDomain {
		if b == nil {
			return nil, errors.New("gatehouse: the gate has not started")
		}
		return b, nil
	}
	reg := g.app.registry.state.Load()
	if b != nil && b.seen.Load() == reg {
		return b, nil
	}
	rt := reg.lookup(g.Domain)
	if rt == nil {
		return nil, errDomainNotServed
	}
	if b != nil && b.rt == rt {
		b.seen.Store(reg)
		return b, nil
	}
	return g.bind(rt, reg)
}

// bind builds what the gate serves with on rt (nil for a gate that needs
// no domain) and makes it current.
func (g *Gate) bind(rt *domainRuntime, reg *registryState) (*gateBinding, error) {
	g.run.mu.Lock()
	defer g.run.mu.Unlock()
	if b := g.run.bound.Load(); b != nil && b.rt == rt {
		b.seen.Store(reg)
		return b, nil
	}
	if f := g.run.fail; f != nil && f.rt == rt && time.Since(f.at) < bindRetry {
		return nil, f.err
	}
	b, err := g.newBinding(rt)
	if err != nil {
		g.run.fail = &bindFailure{rt: rt, at: time.Now(), err: err}
		return nil, err
	}
	g.run.fail = nil
	b.seen.Store(reg)
	if old := g.run.bound.Swap(b); old != nil {
		for _, r := range old.releases {
			r()
		}
	}
	return b, nil
}

func (g *Gate) newBinding(rt *domainRuntime) (*gateBinding, error) {
	b := &gateBinding{rt: rt, validators: slices.Clone(g.validators)}
	for i, v := range b.validators {
		if v != nil {
			continue
		}
		gv, release, err := g.embeddedValidator(g.Bearer[i], rt)
		if err != nil {
			b.release()
			return nil, fmt.Errorf("gatehouse: bearer[%d]: %w", i, err)
		}
		b.releases = append(b.releases, release)
		for j, other := range b.validators {
			if j != i && other != nil && other.issuer == gv.issuer {
				b.release()
				return nil, fmt.Errorf("gatehouse: two bearer blocks trust issuer %q; merge them (the token's iss selects the block)", gv.issuer)
			}
		}
		b.validators[i] = gv
	}
	if g.Login != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		web, err := g.provisionLogin(ctx, rt)
		if err != nil {
			b.release()
			return nil, fmt.Errorf("gatehouse: login: %w", err)
		}
		b.web = web
	}
	return b, nil
}

func (b *gateBinding) release() {
	for _, r := range b.releases {
		r()
	}
	b.releases = nil
}

// defaultUserinfoPath is where a gate answers "who am I" unless told.
const defaultUserinfoPath = "/.gatehouse/userinfo"

func (g *Gate) provisionUserinfo() error {
	switch p := g.UserinfoPath; {
	case p == "off":
		return nil
	case p == "":
		g.userinfoPath = defaultUserinfoPath
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("gatehouse: userinfo_path %q must be a path starting with /, like %s, or off", p, defaultUserinfoPath)
	default:
		g.userinfoPath = p
	}
	if g.Login != nil {
		for name, p := range map[string]string{"callback": g.callbackPath, "logout": g.logoutPath, "signed-out page": signedOutPath} {
			if p == g.userinfoPath {
				return fmt.Errorf("gatehouse: userinfo_path %s is also the gate's %s path; give it another path", p, name)
			}
		}
	}
	return nil
}

// provisionHeaders records the headers the gate owns (deleted from every
// request before anything else) and the canonical names of Forward.
func (g *Gate) provisionHeaders() error {
	seen := map[string]bool{}
	add := func(h string) error {
		c := http.CanonicalHeaderKey(h)
		if c == "" || strings.ContainsAny(c, " :\r\n") {
			return fmt.Errorf("gatehouse: %q is not a valid header name", h)
		}
		switch c {
		case "Authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return fmt.Errorf("gatehouse: the gate cannot own header %q; pick a header such as X-Auth-...", h)
		}
		if !seen[c] {
			seen[c] = true
			g.owned = append(g.owned, c)
		}
		return nil
	}
	for _, f := range g.Forward {
		if f.Claim == "" {
			return fmt.Errorf("gatehouse: forward %s has no claim", f.Header)
		}
		if err := add(f.Header); err != nil {
			return err
		}
		g.forwardKeys = append(g.forwardKeys, http.CanonicalHeaderKey(f.Header))
	}
	if g.ForwardSubjectKind != "" {
		if err := add(g.ForwardSubjectKind); err != nil {
			return err
		}
		g.kindKey = http.CanonicalHeaderKey(g.ForwardSubjectKind)
	}
	for _, f := range []struct{ option, header string }{{"forward_access_token", g.ForwardAccessToken}, {"forward_id_token", g.ForwardIDToken}} {
		if err := checkTokenHeader(f.option, f.header); err != nil {
			return fmt.Errorf("gatehouse: %w", err)
		}
	}
	if g.ForwardAccessToken != "" && g.ForwardIDToken != "" {
		return fmt.Errorf("gatehouse: forward_access_token and forward_id_token both forward a token in the one Authorization header; keep one")
	}
	return nil
}

// checkTokenHeader accepts only Authorization (or nothing) as the header a
// token is forwarded in: Caddy's logs write every other request header in
// full, and there is no way to add a header to its redaction.
func checkTokenHeader(option, header string) error {
	if header == "" || http.CanonicalHeaderKey(header) == "Authorization" {
		return nil
	}
	return fmt.Errorf("%s %s: tokens are forwarded only as Authorization: Bearer, because Caddy's logs (reverse_proxy's debug entries, access logs) write every request header except Authorization, Cookie and Proxy-Authorization in full, and a token in %s would end up in them; write `%s` without a header name", option, header, header, option)
}

func (b *GateBearer) embedded() bool {
	return b.Issuer == "" && b.JWKSURL == "" && b.PublicKeyFile == ""
}

// provisionBearer builds a bearer block's validator. The embedded
// issuer's block is only checked here (nil, nil): its validator is built on
// the domain's runtime (embeddedValidator).
func (g *Gate) provisionBearer(ctx caddy.Context, b *GateBearer) (*gateValidator, error) {
	cfg := bearer.Config{
		Issuer:     b.Issuer,
		Audiences:  b.Audiences,
		Algorithms: b.Algorithms,
		Types:      b.Types,
		Leeway:     time.Duration(b.Leeway),
		Scopes:     b.Scopes,
		ScopesAny:  b.ScopesAny,
	}
	if len(cfg.Audiences) == 0 {
		return nil, fmt.Errorf("no audience; add `audience <the API's identifier>` (tokens are accepted only when their aud contains it)")
	}
	var ks bearer.KeySet
	switch {
	case b.embedded():
		if len(b.Types) > 0 {
			return nil, fmt.Errorf("the embedded issuer always marks access tokens typ at+jwt; remove `typ`")
		}
		return nil, nil
	case b.PublicKeyFile != "":
		sk, err := bearer.LoadPublicKeyFile(b.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		if len(cfg.Algorithms) == 0 {
			cfg.Algorithms = bearer.AsymmetricAlgorithms()
		}
		ks = sk
	default:
		rks, release, err := bearer.Shared(bearer.Source{Issuer: b.Issuer, JWKSURL: b.JWKSURL}, bearer.RemoteOptions{})
		if err != nil {
			return nil, err
		}
		g.releases = append(g.releases, release)
		if len(cfg.Algorithms) == 0 {
			cfg.Algorithms = bearer.AsymmetricAlgorithms()
		}
		ks = rks
	}
	v, err := bearer.NewValidator(cfg, ks)
	if err != nil {
		return nil, err
	}
	return &gateValidator{issuer: cfg.Issuer, v: v}, nil
}

// embeddedValidator builds the embedded issuer's validator on a runtime of
// the gate's domain: its issuer URL and keys, and its revocations, which
// every request checks (cache hits included). release ends the
// subscription that drops revoked jtis from the validator's cache.
func (g *Gate) embeddedValidator(b *GateBearer, rt *domainRuntime) (gv *gateValidator, release func(), err error) {
	cfg := bearer.Config{
		Issuer:     rt.issuer.Issuer(),
		Audiences:  b.Audiences,
		Algorithms: b.Algorithms,
		Types:      []string{"at+jwt"},
		Leeway:     time.Duration(b.Leeway),
		Scopes:     b.Scopes,
		ScopesAny:  b.ScopesAny,
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = keys.Algorithms
	}
	v, err := bearer.NewValidator(cfg, rt.keys)
	if err != nil {
		return nil, nil, err
	}
	gv = &gateValidator{issuer: cfg.Issuer, v: v, embedded: true, revoked: rt.revoke}
	// A revoked jti is dropped from the cache. A revoked family is not
	// flushed: logouts revoke families, and flushing every cached token on
	// each one would make a busy site re-verify everything.
	release = rt.revoke.Subscribe(func(id revocation.ID) {
		if id.IsJTI() {
			v.Revoke(string(id))
		}
	})
	return gv, release, nil
}

// Cleanup releases shared key caches and revocation subscriptions.
func (g *Gate) Cleanup() error {
	for _, r := range g.releases {
		r()
	}
	g.releases = nil
	if g.run == nil {
		return nil
	}
	g.run.mu.Lock()
	defer g.run.mu.Unlock()
	if b := g.run.bound.Swap(nil); b != nil {
		b.release()
	}
	return nil
}

// ServeHTTP authenticates, authorizes and forwards the request.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Headers the gate owns never come from the client.
	for _, h := range g.owned {
		r.Header.Del(h)
	}
	if err := g.app.await(r.Context()); err != nil {
		return g.unavailable(w, err)
	}
	b, err := g.binding()
	if err != nil {
		return g.unavailable(w, err)
	}
	web := b.web

	if web != nil {
		switch r.URL.Path {
		case web.callbackPath:
			return web.callback(w, r)
		case web.logoutPath:
			return web.logout(w, r)
		case signedOutPath:
			return web.signedOut(w, r)
		}
	}
	// Who am I: authenticated and authorized like any request, answered by
	// the gate instead of next; never a login redirect.
	userinfo := g.userinfoPath != "" && r.URL.Path == g.userinfoPath
	if userinfo {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("gatehouse: the userinfo path answers GET"))
		}
		next = userinfoNext{}
	}

	// One credential at most: with several, the gate would validate one
	// and the upstream might read another (a FastCGI app sees repeated
	// headers joined by commas).
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return g.challenge(w, &bearer.Error{Code: "invalid_request", Description: "the request carries more than one Authorization header; send one", Reason: "several authorization headers"})
	}
	if len(auth) == 1 && strings.Contains(auth[0], ",") {
		return g.challenge(w, &bearer.Error{Code: "invalid_request", Description: "the Authorization header carries more than one credential; send one", Reason: "several credentials"})
	}
	if len(auth) == 1 {
		if raw, ok := bearer.BearerToken(auth[0]); ok {
			// The upstream gets exactly the token that is validated.
			if len(auth[0]) != len("Bearer ")+len(raw) || !strings.HasPrefix(auth[0], "Bearer ") || auth[0][len("Bearer "):] != raw {
				r.Header["Authorization"] = []string{"Bearer " + raw}
			}
			return g.serveBearer(w, r, next, b.validators, raw)
		}
		if strings.TrimSpace(auth[0]) != "" && web == nil {
			return g.challenge(w, &bearer.Error{Code: "invalid_request", Description: "the Authorization header must use the Bearer scheme", Reason: "non-bearer authorization"})
		}
	}

	if web != nil {
		return web.serveSession(w, r, next, !userinfo)
	}
	return g.challenge(w, nil)
}

// unavailable answers 503 when the gate cannot decide: the gatehouse app
// has not started, or the gate's domain is not served. Nothing passes.
func (g *Gate) unavailable(w http.ResponseWriter, err error) error {
	g.metrics.request(outcomeUnavailable)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "5")
	return caddyhttp.Error(http.StatusServiceUnavailable, err)
}

func (g *Gate) serveBearer(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, validators []*gateValidator, raw string) error {
	if len(validators) == 0 {
		return g.challenge(w, &bearer.Error{Code: "invalid_token", Description: "bearer tokens are not accepted here", Reason: "no bearer block configured"})
	}
	gv := validators[0]
	if len(validators) > 1 {
		iss, _ := bearer.PeekIssuer(raw)
		gv = nil
		for _, c := range validators {
			if c.issuer == iss {
				gv = c
				break
			}
		}
		if gv == nil {
			return g.challenge(w, &bearer.Error{Code: "invalid_token", Description: "the token's issuer is not trusted", Reason: "untrusted issuer"})
		}
	}
	tok, err := gv.v.Validate(r.Context(), raw)
	if err == nil && gv.revoked != nil && gv.revoked.Revoked(revocation.ID(tok.JTI)) {
		err = &bearer.Error{Code: "invalid_token", Description: "the token has been revoked", Reason: "revoked"}
	}
	if err != nil {
		var be *bearer.Error
		if !errors.As(err, &be) {
			be = &bearer.Error{Code: "invalid_token", Description: "the token could not be validated", Reason: err.Error()}
		}
		if ce := g.audit.Check(zap.InfoLevel, "bearer token refused"); ce != nil {
			ce.Write(zap.String("event", "gate.bearer"), zap.String("outcome", "refused"), zap.String("reason", be.Reason), zap.String("code", be.Code), zap.String("issuer", gv.issuer), zap.String("path", r.URL.Path))
		}
		return g.challenge(w, be)
	}
	return g.authorize(w, r, next, tok.Claims, tok.Subject, subjectKind(tok.Claims, tok.Subject, gv.embedded), false, nil, nil)
}

// Subject kinds: a person, or a client acting on its own behalf.
const (
	kindUser   = "user"
	kindClient = "client"
)

// subjectKind tells a client's own token (client_credentials: its sub is
// the client id) from a user's: by the gty marker, and for other issuers
// than the embedded one (whose client ids cannot equal a user's sub and
// which always marks) by RFC 9068's sub == client_id.
func subjectKind(claims map[string]any, sub string, embedded bool) string {
	switch claims["gty"] {
	case "client_credentials", "client-credentials":
		return kindClient
	}
	if !embedded {
		if cid, _ := claims["client_id"].(string); cid != "" && cid == sub {
			return kindClient
		}
	}
	return kindUser
}

// authorize runs the policies, sets headers and placeholders, and calls
// next. web and sess are those of a browser session (nil for a bearer
// token).
func (g *Gate) authorize(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, claims map[string]any, sub, kind string, browser bool, web *gateWeb, sess *rp.Session) error {
	if g.policies != nil {
		d, err := g.policies.evaluate(r.Context(), claims)
		if err != nil || !d.Allow {
			if ce := g.audit.Check(zap.InfoLevel, "gate denied access"); ce != nil {
				reason := "the policies cannot be applied: "
				if err == nil {
					reason = d.Explanation()
				} else {
					reason += err.Error()
				}
				ce.Write(zap.String("event", "gate.policy"), zap.String("outcome", "denied"), zap.String("sub", sub), zap.Strings("policies", g.Policies), zap.String("reason", reason), zap.String("path", r.URL.Path))
			}
			g.metrics.request(outcomePolicyDenied)
			return g.denied(w, r, browser, claims, sub, web, sess)
		}
	}
	g.metrics.request(outcomeAllowed)
	if _, ok := next.(userinfoNext); ok {
		return g.writeUserinfo(w, r, claims, sub, kind)
	}
	// Gatehouse's cookies (the session, and the issuer's SSO cookie when the
	// issuer shares this host) are not the upstream's business.
	stripGatehouseCookies(r)
	caddyhttp.SetVar(r.Context(), claimsVar, claims)
	if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); repl != nil {
		// Resolved on demand: most requests never read a user placeholder.
		repl.Map(userPlaceholders(sub, kind, claims))
	}
	for i, f := range g.Forward {
		if v, ok := lookupClaim(claims, f.Claim); ok {
			if s := headerValue(v); len(s) > maxForwardedValue {
				// Never a truncated value: a cut list or name could mean
				// something else upstream. The header is left out.
				if ce := g.logger.Check(zap.WarnLevel, "claim too long to forward; header left out"); ce != nil {
					ce.Write(zap.String("header", g.forwardKeys[i]), zap.String("claim", f.Claim), zap.Int("length", len(s)), zap.Int("max", maxForwardedValue))
				}
			} else if s != "" {
				r.Header[g.forwardKeys[i]] = []string{s}
			}
		}
	}
	if g.kindKey != "" {
		r.Header[g.kindKey] = []string{kind}
	}
	if sess != nil {
		// A browser session: the gate validated no Authorization the
		// client sent, so none reaches the upstream.
		r.Header.Del("Authorization")
		if g.ForwardAccessToken != "" && sess.AccessToken != "" {
			r.Header["Authorization"] = []string{"Bearer " + sess.AccessToken}
		}
		if g.ForwardIDToken != "" && sess.IDToken != "" {
			r.Header["Authorization"] = []string{"Bearer " + sess.IDToken}
		}
	}
	return next.ServeHTTP(w, r)
}

// userinfoNext stands in for the next handler on the userinfo path: the
// gate answers itself once the request is authorized (authorize).
type userinfoNext struct{}

func (userinfoNext) ServeHTTP(http.ResponseWriter, *http.Request) error {
	return errors.New("gatehouse: userinfoNext is answered by the gate")
}

// userinfoResponse is the body of the userinfo path.
type userinfoResponse struct {
	Sub         string         `json:"sub"`
	SubjectKind string         `json:"subject_kind"`
	Claims      map[string]any `json:"claims"`
}

// writeUserinfo answers the userinfo path: the subject, its kind and the
// claims the gate forwards, keyed by claim name; never a token.
func (g *Gate) writeUserinfo(w http.ResponseWriter, r *http.Request, claims map[string]any, sub, kind string) error {
	out := userinfoResponse{Sub: sub, SubjectKind: kind, Claims: map[string]any{}}
	for _, f := range g.Forward {
		if v, ok := lookupClaim(claims, f.Claim); ok && v != nil {
			out.Claims[f.Claim] = v
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return json.NewEncoder(w).Encode(out)
}

const realm = "gatehouse"

// challenge answers 401 (or 403 for insufficient_scope) with an RFC 6750
// WWW-Authenticate header. Never a redirect.
func (g *Gate) challenge(w http.ResponseWriter, be *bearer.Error) error {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case be == nil:
		g.metrics.request(outcomeNoCredentials)
	case be.Code == "insufficient_scope":
		g.metrics.request(outcomeInsufficientScope)
	case be.Code == "invalid_request":
		g.metrics.request(outcomeInvalidRequest)
	default:
		g.metrics.request(outcomeInvalidToken)
	}
	if be == nil {
		w.Header().Set("WWW-Authenticate", bearer.Challenge(realm))
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("gatehouse: no credentials"))
	}
	w.Header().Set("WWW-Authenticate", be.WWWAuthenticate(realm))
	return caddyhttp.Error(be.Status(), fmt.Errorf("gatehouse: %s: %s", be.Code, be.Reason))
}

// denied answers 403: an HTML page naming the signed-in account and the
// policy ids (never claim values) for browsers, with a "Sign in as someone
// else" button for a browser session; a JSON error for API clients.
func (g *Gate) denied(w http.ResponseWriter, r *http.Request, browser bool, claims map[string]any, sub string, web *gateWeb, sess *rp.Session) error {
	w.Header().Set("Cache-Control", "no-store")
	if browser {
		view := deniedView{Account: accountName(claims, sub), Policies: g.Policies}
		csp := ""
		if web != nil && sess != nil {
			token, err := web.logoutCSRF(sess)
			if err != nil {
				return caddyhttp.Error(http.StatusInternalServerError, err)
			}
			view.Switch = &switchForm{Action: web.logoutPath, CSRF: token, Return: rp.SafeReturnPath(r.URL.RequestURI())}
			csp = web.pageCSP(r.Context(), true)
		}
		return writePage(w, http.StatusForbidden, deniedPage, view, csp)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	return json.NewEncoder(w).Encode(map[string]any{"error": "access_denied", "error_description": "no policy of this resource allows the request", "policies": g.Policies})
}

// accountName is how a page names the signed-in user: preferred_username,
// else email, else the subject (html/template escapes it).
func accountName(claims map[string]any, sub string) string {
	for _, c := range []string{"preferred_username", "email"} {
		if v, _ := claims[c].(string); strings.TrimSpace(v) != "" {
			return v
		}
	}
	return sub
}

// userPlaceholders resolves {http.auth.user.id} (the subject),
// {http.auth.user.<claim>} for string claims, and {http.auth.subject_kind}
// (user or client; outside the claims' namespace, so no claim can shadow
// it).
func userPlaceholders(sub, kind string, claims map[string]any) caddy.ReplacerFunc {
	return func(key string) (any, bool) {
		if key == "http.auth.subject_kind" {
			return kind, true
		}
		name, ok := strings.CutPrefix(key, "http.auth.user.")
		if !ok {
			return nil, false
		}
		if name == "id" {
			return sub, true
		}
		if s, ok := claims[name].(string); ok {
			return s, true
		}
		return nil, false
	}
}

// lookupClaim finds a claim by name, then by dotted path into objects.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	cur := any(claims)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// maxForwardedValue bounds a forwarded claim header's value (common proxies
// and servers refuse header lines of about 8 KiB).
const maxForwardedValue = 4096

// headerValue renders a claim for a header: strings as they are, numbers
// and booleans as JSON text, arrays comma-joined, objects as JSON. Control
// characters are dropped so a claim can never inject a header.
func headerValue(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		s = x.String()
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if p := headerValue(e); p != "" {
				parts = append(parts, p)
			}
		}
		s = strings.Join(parts, ",")
	case []string:
		s = strings.Join(x, ",")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return ""
		}
		s = string(b)
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddy.CleanerUpper          = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
	_ rp.Provider                 = (*localProvider)(nil)
	_ rp.Revoker                  = (*localProvider)(nil)
)
