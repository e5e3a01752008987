package module

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// gateWeb is the browser side of the gate: login round trip, session
// cookie, refresh and logout. This file provisions it; its jobs are in
// gatesession.go (serving and refreshing a session), gatelogin.go (the login
// and its callback), gatelogout.go (logout and the signed-out page),
// gateprovider.go (the provider it signs in with) and cookies.go.
type gateWeb struct {
	g             *Gate
	cfg           *GateLogin
	callbackPath  string
	logoutPath    string
	lifetime      time.Duration
	audience      rp.Audience     // the gates this one shares sessions with
	keys          *seal.Keys      // bound to audience
	sealers       [2]*seal.Sealer // [0] insecure (loopback dev), [1] Secure + __Host-
	provider      rp.Provider     // the embedded issuer's; nil for an external provider
	discovery     *discovery      // finds the external provider; nil for the embedded issuer
	flowMu        sync.Mutex
	flows         map[string]*rp.Flow // by origin
	refreshBefore time.Duration       // the most a session refreshes ahead of expiry
	fixedRefresh  bool                // refreshBefore was configured: use it as is
	refreshes     rp.RefreshGroup
	sessions      *seal.Cache[rp.Session] // opened sessions by cookie value
	revoked       *revocation.Hub         // the embedded issuer's revocations; nil for external providers
	ended         *revocation.Hub         // gate sessions ended by a logout, on any instance
	idOnRefresh   bool                    // refreshing returns an ID token (embedded issuer, openid scope)
}

// maxOrigins bounds the per-origin login flows a gate keeps (the Host
// header is client-controlled; an unregistered origin fails at the
// provider's exact redirect-URI match anyway).
const maxOrigins = 32

// maxSessionChunks bounds a session cookie to 3 × 3800 bytes: Caddy refuses
// request headers over 16 KiB (max_header_size) with 431, which would make
// an oversized session unusable; refusing it at sign-in says why instead.
const maxSessionChunks = 3

// cookieSecretName is the store entry holding the gate's cookie keys, shared
// by every instance and every reload.
const cookieSecretName = "gate/cookie-keys/v1"

// cookieKeys returns the keys of every gate's cookies: derived from the
// secret stored under cookieSecretName, made by the first instance that
// asks and shared by every instance and reload. Only the store's Secrets
// role is needed.
func cookieKeys(ctx context.Context, secrets store.Secrets) (*seal.Keys, error) {
	secret, err := seal.GenerateSecret()
	if err != nil {
		return nil, err
	}
	stored, err := secrets.Secret(ctx, cookieSecretName, secret)
	if err != nil {
		return nil, fmt.Errorf("reading the cookie keys from the store: %w", err)
	}
	return seal.NewKeys([][]byte{stored})
}

// provisionLogin builds the browser side of the gate: on rt, the runtime of
// the gate's domain, for the embedded issuer (nil for an external one).
// It reads the cookie keys from the store, so it runs when the gatehouse
// app has started (and again when the domain's runtime changes).
func (g *Gate) provisionLogin(ctx context.Context, rt *domainRuntime) (*gateWeb, error) {
	l := g.Login
	web := &gateWeb{
		g:             g,
		cfg:           l,
		lifetime:      time.Duration(l.SessionLifetime),
		flows:         map[string]*rp.Flow{},
		refreshBefore: 30 * time.Second,
		sessions:      seal.NewCache[rp.Session](0),
	}
	if l.RefreshBefore < 0 {
		return nil, fmt.Errorf("login: refresh_before %s is negative; give a positive duration such as 30s, or omit it", time.Duration(l.RefreshBefore))
	}
	if l.RefreshBefore > 0 {
		web.refreshBefore, web.fixedRefresh = time.Duration(l.RefreshBefore), true
	}
	web.callbackPath, web.logoutPath = l.paths()
	if web.lifetime == 0 {
		web.lifetime = 12 * time.Hour
	}

	// A session is valid only at the gates that sign in the same way: the
	// same domain, issuer and client. The cookie keys are derived for that
	// audience, the sealed session names it, and the cookie names carry a
	// tag of it, so gates that cannot share a session never overwrite each
	// other's cookies (browsers share cookies across the ports of a host).
	web.audience = rp.Audience{Domain: g.Domain, Issuer: l.Issuer, Client: l.Client}
	if l.Issuer == "" {
		web.audience.Issuer = rt.issuer.Issuer()
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	keys, err := cookieKeys(sctx, g.app.store)
	if err != nil {
		return nil, err
	}
	if web.ended, err = g.app.gateSessionRevocations(); err != nil {
		return nil, err
	}
	web.keys = keys.Bind(web.audience.String())
	for i, secure := range []bool{false, true} {
		web.sealers[i], err = seal.NewSealer(web.keys, seal.Config{Name: sessionCookiePrefix + web.audience.Tag(), Secure: secure, MaxAge: web.lifetime, MaxChunks: maxSessionChunks})
		if err != nil {
			return nil, err
		}
	}

	if l.Issuer == "" {
		rp, err := rt.issuer.RelyingParty(l.Client)
		if err != nil {
			return nil, errLoginClient(l.Client, g.Domain, web.callbackPath)
		}
		// The callback must be registered for the client on this site (the
		// client as the domain has it now).
		snap, err := g.app.directory.Snapshot(sctx, g.Domain)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", domainLabel(g.Domain), err)
		}
		if err := checkCallbackRegistered(snap.Client(l.Client), web.callbackPath, g.sites); err != nil {
			return nil, err
		}
		p := &localProvider{rp: rp, scopes: l.Scopes}
		scopes := l.Scopes
		if len(scopes) == 0 {
			if scopes, err = rp.Scopes(sctx); err != nil {
				return nil, err
			}
			p.fallback = scopes
		}
		web.provider = p
		web.revoked = rt.revoke
		web.idOnRefresh = slices.Contains(scopes, "openid")
	} else {
		repl := caddy.NewReplacer()
		oc := rp.OIDCConfig{
			Issuer:       l.Issuer,
			ClientID:     l.Client,
			ClientSecret: repl.ReplaceKnown(l.ClientSecret, ""),
			Scopes:       l.Scopes,
			// Many providers release profile and e-mail claims only at
			// userinfo in the code flow; the ID token wins on conflicts.
			UserInfo: true,
		}
		if l.ClientSecret != "" && oc.ClientSecret == "" {
			return nil, fmt.Errorf("client_secret %q expands to nothing; set the environment variable or file it names", l.ClientSecret)
		}
		web.discovery = newDiscovery(func(ctx context.Context) (rp.Provider, error) {
			return rp.NewOIDCProvider(ctx, oc)
		})
		// Try now so a working provider costs nothing later; a provider
		// that is down must not stop Caddy from starting.
		if err := web.discovery.tryNow(sctx); err != nil {
			g.logger.Warn("OIDC provider not reachable yet; will retry on the first login", zap.String("issuer", l.Issuer), zap.Error(err))
		}
	}
	return web, nil
}

// origin is the scheme://host the browser used for this site.
func origin(r *http.Request) (scheme, host string) {
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme, r.Host
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

func (web *gateWeb) sealer(r *http.Request) *seal.Sealer {
	if r.TLS == nil && !seal.SecureFor(hostOnly(r.Host)) {
		return web.sealers[0]
	}
	return web.sealers[1]
}

func (web *gateWeb) flow(ctx context.Context, r *http.Request) (*rp.Flow, error) {
	scheme, host := origin(r)
	key := scheme + "://" + host
	web.flowMu.Lock()
	f, ok := web.flows[key]
	web.flowMu.Unlock()
	if ok {
		return f, nil
	}
	// Outside the lock: an external provider's discovery may take seconds;
	// the logins that need it share one attempt (see discovery) instead of
	// waiting in line for one each.
	p, err := web.getProvider(ctx)
	if err != nil {
		return nil, err
	}
	web.flowMu.Lock()
	defer web.flowMu.Unlock()
	if f, ok := web.flows[key]; ok {
		return f, nil
	}
	if len(web.flows) >= maxOrigins {
		clear(web.flows)
	}
	f, err = rp.NewFlow(rp.FlowConfig{
		Provider:    p,
		Keys:        web.keys,
		CookieName:  loginCookiePrefix + web.audience.Tag(),
		RedirectURI: key + web.callbackPath,
		Secure:      r.TLS != nil || seal.SecureFor(hostOnly(host)),
	})
	if err != nil {
		return nil, err
	}
	web.flows[key] = f
	return f, nil
}

func (g *Gate) auditEvent(event, outcome, sub, reason string) {
	if ce := g.audit.Check(zap.InfoLevel, event); ce != nil {
		fields := []zap.Field{zap.String("event", event), zap.String("outcome", outcome)}
		if sub != "" {
			fields = append(fields, zap.String("sub", sub))
		}
		if reason != "" {
			fields = append(fields, zap.String("reason", reason))
		}
		ce.Write(fields...)
	}
}
