package module

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// gateWeb is the browser side of the gate: login round trip, session
// cookie, refresh and logout.
type gateWeb struct {
	g             *Gate
	cfg           *GateLogin
	callbackPath  string
	logoutPath    string
	lifetime      time.Duration
	audience      rp.Audience     // the gates this one shares sessions with
	keys          *seal.Keys      // bound to audience
	sealers       [2]*seal.Sealer // [0] insecure (loopback dev), [1] Secure + __Host-
	providerMu    sync.Mutex
	provider      rp.Provider // nil until the external provider answered discovery
	newProvider   func(ctx context.Context) (rp.Provider, error)
	flowMu        sync.Mutex
	flows         map[string]*rp.Flow // by origin
	refreshBefore time.Duration       // the most a session refreshes ahead of expiry
	fixedRefresh  bool                // refreshBefore was configured: use it as is
	refreshes     refreshGroup
	sessions      *seal.Cache[rp.Session] // opened sessions by cookie value
	revoked       *revocationHub          // the embedded issuer's revocations; nil for external providers
	ended         *revocationHub          // gate sessions ended by a logout, on any instance
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

// Cookie names: a gate's are these followed by its audience's tag
// (rp.Audience.Tag); stripGatehouseCookies removes every one of them.
const (
	sessionCookiePrefix = "gatehouse-"
	loginCookiePrefix   = "gatehouse-login-"
)

// cookieSecretName is the store entry holding the gate's cookie keys, shared
// by every instance and every reload.
const cookieSecretName = "gate/cookie-keys/v1"

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
	secret, err := seal.GenerateSecret()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stored, err := g.app.store.Secret(sctx, cookieSecretName, secret)
	if err != nil {
		return nil, fmt.Errorf("reading the cookie keys from the store: %w", err)
	}
	keys, err := seal.NewKeys([][]byte{stored})
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
		web.newProvider = func(ctx context.Context) (rp.Provider, error) {
			return rp.NewOIDCProvider(ctx, oc)
		}
		// Try now so a working provider costs nothing later; a provider
		// that is down must not stop Caddy from starting.
		if p, err := web.newProvider(sctx); err == nil {
			web.provider = p
		} else {
			g.logger.Warn("OIDC provider not reachable yet; will retry on the first login", zap.String("issuer", l.Issuer), zap.Error(err))
		}
	}
	return web, nil
}

func (web *gateWeb) getProvider(ctx context.Context) (rp.Provider, error) {
	web.providerMu.Lock()
	defer web.providerMu.Unlock()
	if web.provider != nil {
		return web.provider, nil
	}
	p, err := web.newProvider(ctx)
	if err != nil {
		return nil, err
	}
	web.provider = p
	return p, nil
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
	defer web.flowMu.Unlock()
	if f, ok := web.flows[key]; ok {
		return f, nil
	}
	p, err := web.getProvider(ctx)
	if err != nil {
		return nil, err
	}
	if len(web.flows) >= maxOrigins {
		clear(web.flows)
	}
	f, err := rp.NewFlow(rp.FlowConfig{
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

// serveSession authenticates a request by its session cookie; without one,
// navigations start a login (when mayLogin) and everything else gets 401.
func (web *gateWeb) serveSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, mayLogin bool) error {
	g := web.g
	sl := web.sealer(r)
	var s rp.Session
	err := seal.OpenCached(sl, r, &s, web.sessions)
	now := time.Now()
	if err == nil {
		err = web.check(&s, now)
	}
	skew := web.refreshBefore
	if !web.fixedRefresh {
		skew = s.RefreshSkew(web.refreshBefore)
	}
	if err == nil && (s.NeedsRefresh(now, skew) || web.lacksForwardedTokens(&s)) {
		fresh, rerr := web.refresh(r.Context(), &s)
		switch {
		case rerr == nil:
			g.metrics.session(sessionRefreshed)
			s = *fresh
			web.compact(&s)
			if serr := sl.Seal(w, &s, s.SessionExpiry); serr != nil {
				g.logger.Error("cannot seal the refreshed session", zap.Error(serr))
			}
		case now.Before(s.Expiry):
			// The access token is still good: serve this request and try
			// again on the next. Another instance may have rotated the
			// refresh token a moment ago, and clearing the cookie here
			// would log the user out under parallel requests.
			g.metrics.session(sessionRefreshFailed)
			g.auditEvent("gate.session", "refresh_failed", s.Subject, rerr.Error())
		default:
			g.metrics.session(sessionRefreshFailed)
			g.auditEvent("gate.session", "refresh_failed", s.Subject, rerr.Error())
			err = rerr
		}
	} else if err == nil && !s.Expiry.IsZero() && !now.Before(s.Expiry) {
		// The access token expired and cannot be refreshed: sign in again.
		err = seal.ErrExpired
	}
	if err != nil {
		if !errors.Is(err, seal.ErrNoSession) {
			sl.Clear(w, r)
			g.metrics.session(sessionRejected)
			g.auditEvent("gate.session", "rejected", "", sessionReason(err))
		}
		if mayLogin && rp.IsNavigation(r) {
			return web.startLogin(w, r)
		}
		return g.challenge(w, nil)
	}
	// A browser session is always a user's: a client's own grant has no
	// browser and no ID token.
	return g.authorize(w, r, next, s.Claims, s.Subject, kindUser, mayLogin && rp.IsNavigation(r), web, &s)
}

// check judges an opened session: made for this gate's audience (its keys
// already are; this is defence in depth), not ended, not revoked.
func (web *gateWeb) check(s *rp.Session, now time.Time) error {
	if s.Audience != web.audience {
		return errSessionOtherAudience
	}
	if s.Ended(now) {
		return seal.ErrExpired
	}
	if s.ID == "" {
		return errSessionWithoutID
	}
	if web.ended != nil && web.ended.isRevoked(s.ID) {
		// Logged out (on any instance): every copy of this cookie is dead,
		// whether or not the provider could revoke its tokens.
		return errSessionLoggedOut
	}
	if web.revoked != nil && s.TokenID != "" && web.revoked.isRevoked(s.TokenID) {
		// Logged out elsewhere, or the issuer revoked the family (refresh
		// token reuse): every copy of this cookie is dead.
		return errSessionRevoked
	}
	return nil
}

// compact drops what the session need not carry: the access token unless it
// is forwarded, and the ID token unless it is forwarded or an external
// provider needs it as id_token_hint at logout (the embedded issuer's logout
// takes the client_id). Smaller cookies open faster and stay under the
// request-header limit.
func (web *gateWeb) compact(s *rp.Session) {
	if web.g.ForwardAccessToken == "" {
		s.AccessToken = ""
	}
	if web.g.ForwardIDToken == "" && web.cfg.Issuer == "" {
		s.IDToken = ""
	}
}

// lacksForwardedTokens reports whether s was sealed without a token this
// gate forwards (by another gate on the same host, which shares the cookie
// but not the forward_* options) and a refresh would bring it. An ID token
// is asked for this way only where refreshing returns one (the embedded
// issuer with the openid scope): elsewhere it would refresh on every request.
func (web *gateWeb) lacksForwardedTokens(s *rp.Session) bool {
	if s.RefreshToken == "" {
		return false
	}
	return web.g.ForwardAccessToken != "" && s.AccessToken == "" ||
		web.g.ForwardIDToken != "" && s.IDToken == "" && web.idOnRefresh
}

var (
	errSessionRevoked       = errors.New("gatehouse: the session's tokens were revoked")
	errSessionOtherAudience = errors.New("gatehouse: the session was made for another domain, issuer or client")
	errSessionWithoutID     = errors.New("gatehouse: the session has no id (sealed by an older version)")
	errSessionLoggedOut     = errors.New("gatehouse: the session was logged out")
)

// refresh renews s's tokens once per refresh token: parallel requests of one
// browser (a page and its assets) share one call to the provider, and
// requests still carrying the old cookie a moment later get the same result
// instead of presenting a rotated refresh token (which the issuer treats as
// reuse).
func (web *gateWeb) refresh(ctx context.Context, s *rp.Session) (*rp.Session, error) {
	return web.refreshes.do(ctx, s.RefreshToken, func() (*rp.Session, error) {
		// Not the request's context: a client that goes away must not fail
		// the refresh the other waiters share.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		p, err := web.getProvider(ctx)
		if err != nil {
			return nil, err
		}
		return rp.Refresh(ctx, p, s)
	})
}

func sessionReason(err error) string {
	switch {
	case errors.Is(err, seal.ErrExpired):
		return "session expired"
	case errors.Is(err, seal.ErrInvalid):
		return "session cookie invalid or tampered"
	case errors.Is(err, errSessionRevoked):
		return "session revoked"
	case errors.Is(err, errSessionOtherAudience):
		return "session made for another domain, issuer or client"
	case errors.Is(err, errSessionLoggedOut):
		return "session logged out"
	case errors.Is(err, errSessionWithoutID):
		return "session without id"
	default:
		return err.Error()
	}
}

func (web *gateWeb) startLogin(w http.ResponseWriter, r *http.Request) error {
	web.g.metrics.request(outcomeLoginRedirect)
	f, err := web.flow(r.Context(), r)
	if err != nil {
		return web.unavailable(w, r, r.URL.RequestURI(), err)
	}
	if err := f.Start(w, r, r.URL.RequestURI()); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

func (web *gateWeb) callback(w http.ResponseWriter, r *http.Request) error {
	g := web.g
	w.Header().Set("Cache-Control", "no-store")
	f, err := web.flow(r.Context(), r)
	if err != nil {
		return web.unavailable(w, r, "/", err)
	}
	tokens, returnTo, err := f.Callback(w, r)
	if err != nil {
		return web.callbackFailed(w, r, f, returnTo, err)
	}
	s := rp.NewSession(tokens, time.Now().Add(web.lifetime))
	s.ID = rand.Text()
	s.Audience = web.audience
	web.compact(s)
	if err := web.sealer(r).Seal(w, s, s.SessionExpiry); err != nil {
		if errors.Is(err, seal.ErrTooLarge) {
			g.metrics.session(sessionLoginFailed)
			g.auditEvent("gate.login", "failed", s.Subject, "session too large for a cookie")
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("gatehouse: the session is too large for a cookie (at most %d bytes, below Caddy's 16 KiB request-header limit); forward fewer tokens (forward_access_token, forward_id_token) or ask the provider for fewer claims: %w", maxSessionChunks*seal.ChunkSize, err))
		}
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("gatehouse: sealing the session: %w", err))
	}
	g.metrics.session(sessionLogin)
	g.auditEvent("gate.login", "success", s.Subject, "")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, rp.SafeReturnPath(returnTo), http.StatusFound)
	return nil
}

// callbackFailed answers a callback that signed no one in. One that
// matched no login of this browser (its login cookie expired while the
// provider's form was open, or a bookmarked callback) starts the login
// again, once: the provider's session usually completes it at once. The code
// it carried is never redeemed. Everything else gets a page that says what
// happened and how to go on, never the browser's own error page.
func (web *gateWeb) callbackFailed(w http.ResponseWriter, r *http.Request, f *rp.Flow, returnTo string, err error) error {
	g := web.g
	g.metrics.session(sessionLoginFailed)
	if rp.Restartable(r, err) && rp.IsNavigation(r) {
		g.auditEvent("gate.login", "restarted", "", err.Error())
		if err := f.StartWith(w, r, "/", rp.StartOptions{Restart: true}); err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		return nil
	}
	retry := rp.SafeReturnPath(returnTo)
	view := loginFailedView{Retry: retry, RetryText: "Try signing in again"}
	status := http.StatusBadRequest
	unmatched := errors.Is(err, rp.ErrNoPendingLogin) || errors.Is(err, rp.ErrStateMismatch)
	var pe *rp.ProviderError
	if unmatched && r.URL.Query().Has("error") {
		// A provider error for a login this browser cannot match: say
		// what kind of error it was, but show none of its text, which
		// anyone could have put in a link.
		q := r.URL.Query()
		pe = &rp.ProviderError{Code: q.Get("error"), Description: q.Get("error_description")}
	} else if errors.As(err, &pe) {
		view.Detail = pe.Description
	}
	reason := err.Error()
	switch {
	case pe != nil && pe.AccessDenied():
		status = http.StatusForbidden
		reason = "provider error access_denied"
		if strings.Contains(strings.ToLower(pe.Description), "cancel") {
			view.Heading = "Sign-in cancelled"
			view.Message = "The sign-in was cancelled, so you are not signed in to this site."
			view.Detail = ""
		} else {
			view.Heading = "Sign-in refused"
			view.Message = "The sign-in service did not let you in to this site with that account."
			view.Switch = &switchForm{Action: web.logoutPath, Return: retry}
		}
	case pe != nil:
		reason = "provider error " + pe.Code
		view.Heading = "Sign-in failed"
		view.Message = "The sign-in service could not sign you in."
	case rp.RestartFailed(r, err):
		view.Heading = "Sign-in could not be completed"
		view.Message = "This site could not match the sign-in to one started in this browser, even after starting it again. Your browser may be blocking cookies for this site: allow them, then try again."
	case unmatched:
		view.Heading = "Sign-in expired"
		view.Message = "This site could not match the sign-in to one started in this browser: it took too long, or the link was used before."
	case errors.Is(err, rp.ErrExchange):
		status = http.StatusBadGateway
		view.Heading = "Sign-in failed"
		view.Message = "This site could not complete the sign-in with the sign-in service. Try again in a moment."
	default:
		view.Heading = "Sign-in failed"
		view.Message = "The answer from the sign-in service could not be verified, so you are not signed in."
	}
	g.auditEvent("gate.login", "failed", "", reason)
	return writePage(w, status, loginFailedPage, view, web.pageCSP(r.Context(), view.Switch != nil))
}

// unavailable answers a browser when the login provider cannot be reached
// (an external provider's discovery failed): 502 with a page and a link to
// try again, instead of the browser's error page. The error goes to the log.
func (web *gateWeb) unavailable(w http.ResponseWriter, r *http.Request, retry string, err error) error {
	web.g.logger.Error("the login provider is unavailable", zap.Error(err))
	return writePage(w, http.StatusBadGateway, loginFailedPage, loginFailedView{
		Heading:   "Sign-in unavailable",
		Message:   "The sign-in service cannot be reached at the moment. Try again in a moment.",
		Retry:     rp.SafeReturnPath(retry),
		RetryText: "Try signing in again",
	}, "")
}

// signedOutPath is where the gate's logout lands by default: a page that
// says so, with a link to sign in again (not the site itself, which would
// start a login at once).
const signedOutPath = "/.gatehouse/signed-out"

// signedOut serves the signed-out page. A browser that is signed in after
// all (it came here by a link) goes to the site.
func (web *gateWeb) signedOut(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("gatehouse: the signed-out page answers GET"))
	}
	var s rp.Session
	if seal.OpenCached(web.sealer(r), r, &s, web.sessions) == nil && web.check(&s, time.Now()) == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	return writePage(w, http.StatusOK, signedOutPage, struct{ SignIn string }{"/"}, "")
}

// logout clears the session and, when the provider supports it, ends the
// session at the provider too (RP-initiated logout), then lands on
// post_logout_redirect (default: the signed-out page). A request that may
// come from another site gets a confirmation page instead (logout CSRF).
//
// A POST with switch=1 (the "Sign in as someone else" button) ends the
// gate's session the same way but not the provider's: it starts a login
// for its return path that asks the provider for credentials (prompt=login).
func (web *gateWeb) logout(w http.ResponseWriter, r *http.Request) error {
	g := web.g
	sl := web.sealer(r)
	var s rp.Session
	hadSession := sl.Open(r, &s) == nil
	switching, returnTo := false, "/"
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if r.ParseForm() == nil {
			switching = r.PostForm.Get("switch") == "1"
			returnTo = rp.SafeReturnPath(r.PostForm.Get("return"))
		}
	}
	if hadSession && !web.logoutIntended(w, r, &s) {
		return web.confirmLogout(w, r, &s, switching, returnTo)
	}
	sl.Clear(w, r)
	w.Header().Set("Cache-Control", "no-store")
	if hadSession {
		g.metrics.session(sessionLogout)
		g.auditEvent("gate.logout", "success", s.Subject, "")
		web.end(r.Context(), &s)
		web.revoke(r.Context(), &s)
	}
	if switching {
		f, err := web.flow(r.Context(), r)
		if err != nil {
			return web.unavailable(w, r, returnTo, err)
		}
		g.metrics.request(outcomeLoginRedirect)
		if err := f.StartWith(w, r, returnTo, rp.StartOptions{Prompt: "login"}); err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		return nil
	}
	target := web.cfg.PostLogoutRedirect
	if target == "" {
		target = signedOutPath
	}
	scheme, host := origin(r)
	absTarget := target
	if strings.HasPrefix(target, "/") {
		absTarget = scheme + "://" + host + rp.SafeReturnPath(target)
	}
	if hadSession {
		if p, err := web.getProvider(r.Context()); err == nil {
			end := p.EndSessionURL(s.IDToken, absTarget, "")
			if lp, ok := p.(*localProvider); ok {
				end = lp.rp.EndSessionURL(s.Subject, absTarget, "")
			}
			if end != "" {
				http.Redirect(w, r, end, http.StatusFound)
				return nil
			}
		}
	}
	if strings.HasPrefix(target, "/") {
		http.Redirect(w, r, rp.SafeReturnPath(target), http.StatusFound)
	} else {
		http.Redirect(w, r, target, http.StatusFound)
	}
	return nil
}

// logoutPurpose derives the key of the logout page's CSRF token.
const logoutPurpose = "logout"

// logoutIntended reports whether a logout request comes from the user: a
// GET or POST the browser marks as same-origin, same-site or user-initiated
// (Sec-Fetch-Site: none, a typed URL or bookmark), or a POST carrying the
// confirmation page's CSRF token (a MAC of the session id that only the
// gate can make). A cross-site request, or one from a client that sends no
// Sec-Fetch-Site, is not.
func (web *gateWeb) logoutIntended(w http.ResponseWriter, r *http.Request, s *rp.Session) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Sec-Fetch-Site"))) {
	case "same-origin", "same-site", "none":
		return true
	}
	if r.Method != http.MethodPost {
		return false
	}
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err != nil {
			return false
		}
	}
	tok, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("csrf"))
	return err == nil && web.keys.VerifyMAC(logoutPurpose, []byte(s.ID), tok)
}

// logoutCSRF is the CSRF token of s's logout forms (the confirmation page,
// "Sign in as someone else").
func (web *gateWeb) logoutCSRF(s *rp.Session) (string, error) {
	mac, err := web.keys.MAC(logoutPurpose, []byte(s.ID))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(mac), nil
}

// confirmLogout answers a logout request that may not come from the user
// with a page whose form posts the logout with a CSRF token: 200 to a GET,
// 403 to a POST without a valid token.
func (web *gateWeb) confirmLogout(w http.ResponseWriter, r *http.Request, s *rp.Session, switching bool, returnTo string) error {
	token, err := web.logoutCSRF(s)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	web.g.auditEvent("gate.logout", "confirm", s.Subject, "not marked same-site: confirmation asked")
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusForbidden
	}
	return writePage(w, status, logoutPage, logoutView{Action: web.logoutPath, Token: token, Switch: switching, Return: returnTo}, web.pageCSP(r.Context(), true))
}

// pageCSP is the Content-Security-Policy of a page whose form posts to the
// logout path ("" for htmlpage's default when it has none): browsers hold
// the redirects after a form submission to form-action too, so it allows
// the provider's logout and authorization endpoints and an absolute
// post-logout target.
func (web *gateWeb) pageCSP(ctx context.Context, logoutForm bool) string {
	if !logoutForm {
		return ""
	}
	var targets []string
	add := func(o string) {
		if o != "" && !slices.Contains(targets, o) {
			targets = append(targets, o)
		}
	}
	if p, err := web.getProvider(ctx); err == nil {
		add(urlOrigin(p.EndSessionURL("", "", "")))
		add(urlOrigin(p.AuthCodeURL("", "", "", "", "")))
	}
	add(urlOrigin(web.cfg.PostLogoutRedirect))
	return htmlpage.CSP(targets...)
}

// urlOrigin is scheme://host of an absolute http(s) URL, or "".
func urlOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// end revokes the session's id on every instance, so copies of the cookie
// stop working whatever the provider: without a refresh token there is
// nothing to revoke at the provider, and its access token would live on.
// A store failure is logged and audited; this instance refuses the session
// anyway.
func (web *gateWeb) end(ctx context.Context, s *rp.Session) {
	if s.ID == "" {
		return
	}
	until := s.SessionExpiry
	if until.IsZero() {
		until = time.Now().Add(web.lifetime)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := web.g.app.revokeGateSession(ctx, s.ID, until); err != nil {
		web.g.logger.Error("cannot record the logout in the store; other instances accept the session until it expires", zap.Error(err))
		web.g.auditEvent("gate.logout", "revoke_failed", s.Subject, "recording the logout: "+err.Error())
	}
}

// revoke revokes the session's refresh token at the provider (RFC 7009;
// in-process for the embedded issuer, which also revokes the access tokens
// of the family, so copies of the cookie stop working at once). A provider
// without a revocation endpoint is left alone; failures are audited, and the
// logout goes on.
func (web *gateWeb) revoke(ctx context.Context, s *rp.Session) {
	if s.RefreshToken == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := web.getProvider(ctx)
	if err != nil {
		web.g.auditEvent("gate.logout", "revoke_failed", s.Subject, err.Error())
		return
	}
	rv, ok := p.(rp.Revoker)
	if !ok {
		return
	}
	if err := rv.Revoke(ctx, s.RefreshToken); err != nil && !errors.Is(err, rp.ErrNoRevocation) {
		web.g.auditEvent("gate.logout", "revoke_failed", s.Subject, err.Error())
	}
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

// localProvider logs in through the domain's embedded issuer: the browser
// goes to its authorize endpoint, and the code is redeemed, tokens
// refreshed and revoked in-process by the issuer's trusted relying party
// (no client secret: the issuer keeps only its hash), which hands back the
// claims it minted.
type localProvider struct {
	rp *issuer.LocalRP
	// scopes are the gate's configured scopes; none: the client's, as the
	// domain has them now (fallback when they cannot be read).
	scopes, fallback []string
}

func (p *localProvider) Issuer() string { return p.rp.Issuer() }

func (p *localProvider) AuthCodeURL(state, nonce, challenge, redirectURI, prompt string) string {
	scopes := p.scopes
	if len(scopes) == 0 {
		var err error
		if scopes, err = p.rp.Scopes(context.Background()); err != nil {
			scopes = p.fallback
		}
	}
	return p.rp.AuthCodeURL(scopes, state, nonce, challenge, redirectURI, prompt)
}

func (p *localProvider) Exchange(ctx context.Context, code, verifier, redirectURI string) (*rp.Tokens, error) {
	return loginTokens(p.rp.Exchange(ctx, code, verifier, redirectURI))
}

func (p *localProvider) Refresh(ctx context.Context, refreshToken string) (*rp.Tokens, error) {
	return loginTokens(p.rp.Refresh(ctx, refreshToken))
}

func (p *localProvider) Revoke(ctx context.Context, refreshToken string) error {
	return p.rp.Revoke(ctx, refreshToken)
}

// EndSessionURL is what rp.Provider asks for; the gate's logout uses
// the relying party's EndSessionURL instead, whose hint needs no ID token.
func (p *localProvider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) string {
	v := url.Values{"client_id": {p.rp.ClientID()}}
	if idTokenHint != "" {
		v.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		v.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		v.Set("state", state)
	}
	return p.rp.Issuer() + "/logout?" + v.Encode()
}

// loginTokens converts what the relying party minted.
func loginTokens(t *issuer.LocalTokens, err error) (*rp.Tokens, error) {
	if err != nil {
		return nil, err
	}
	return &rp.Tokens{
		AccessToken:   t.AccessToken,
		RefreshToken:  t.RefreshToken,
		IDToken:       t.IDToken,
		Expiry:        t.Expiry,
		AccessTokenID: t.AccessTokenID,
		Claims:        t.Claims,
		Subject:       t.Subject,
		Issuer:        t.Issuer,
		Nonce:         t.Nonce,
	}, nil
}

// stripGatehouseCookies removes every Gatehouse cookie from the request
// that goes upstream, keeping the app's own cookies byte for byte.
func stripGatehouseCookies(r *http.Request) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		parts := strings.Split(line, ";")
		out := parts[:0]
		for _, p := range parts {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.HasPrefix(name, "gatehouse") || strings.HasPrefix(name, "__Host-gatehouse") {
				continue
			}
			out = append(out, p)
		}
		if len(out) > 0 {
			kept = append(kept, strings.TrimLeft(strings.Join(out, ";"), " "))
		}
	}
	r.Header.Del("Cookie")
	for _, k := range kept {
		r.Header.Add("Cookie", k)
	}
}

// refreshGroup runs one refresh per refresh token at a time and remembers a
// successful result for refreshReuse, keyed by a hash of the refresh token
// (the token itself is not kept as a map key).
type refreshGroup struct {
	mu    sync.Mutex
	calls map[[32]byte]*refreshCall
}

type refreshCall struct {
	done     chan struct{}
	sess     *rp.Session
	err      error
	finished time.Time // zero while running
}

const (
	// refreshReuse is how long a refreshed session is handed to requests
	// that still carry the cookie it replaced (in flight when it was set).
	refreshReuse = 30 * time.Second
	// maxRefreshCalls bounds the remembered results; past it, finished
	// entries are dropped first and then refreshes run unshared.
	maxRefreshCalls = 4096
)

func (rg *refreshGroup) do(ctx context.Context, refreshToken string, fn func() (*rp.Session, error)) (*rp.Session, error) {
	key := sha256.Sum256([]byte(refreshToken))
	now := time.Now()
	rg.mu.Lock()
	if rg.calls == nil {
		rg.calls = map[[32]byte]*refreshCall{}
	}
	if c, ok := rg.calls[key]; ok {
		if c.finished.IsZero() || (c.err == nil && now.Sub(c.finished) < refreshReuse) {
			rg.mu.Unlock()
			select {
			case <-c.done:
				return c.sess, c.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		delete(rg.calls, key)
	}
	if len(rg.calls) >= maxRefreshCalls {
		for k, c := range rg.calls {
			if !c.finished.IsZero() && (c.err != nil || now.Sub(c.finished) >= refreshReuse) {
				delete(rg.calls, k)
			}
		}
	}
	c := &refreshCall{done: make(chan struct{})}
	shared := len(rg.calls) < maxRefreshCalls
	if shared {
		rg.calls[key] = c
	}
	rg.mu.Unlock()

	sess, err := fn()
	rg.mu.Lock()
	c.sess, c.err, c.finished = sess, err, time.Now()
	if shared && err != nil {
		delete(rg.calls, key) // failures are shared with the waiters only
	}
	rg.mu.Unlock()
	close(c.done)
	return sess, err
}
