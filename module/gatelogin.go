package module

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// Signing a browser in: starting the login, the callback and the pages
// that say why a sign-in did not complete.

// startLogin sends a navigation without a session to the provider.
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
