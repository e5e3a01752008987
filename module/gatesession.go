package module

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// Serving a browser session: opening and judging its cookie, refreshing its
// tokens (once per refresh token, shared by parallel requests).

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
	if web.ended != nil && web.ended.Revoked(revocation.GateSession(s.ID)) {
		// Logged out (on any instance): every copy of this cookie is dead,
		// whether or not the provider could revoke its tokens.
		return errSessionLoggedOut
	}
	if web.revoked != nil && s.TokenID != "" && web.revoked.Revoked(revocation.ID(s.TokenID)) {
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
// reuse): see rp.RefreshGroup.
func (web *gateWeb) refresh(ctx context.Context, s *rp.Session) (*rp.Session, error) {
	return web.refreshes.Do(ctx, s.RefreshToken, func() (*rp.Session, error) {
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
