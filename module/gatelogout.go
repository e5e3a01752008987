package module

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// Signing a browser out: the logout (confirmed when it may come from
// another site), ending the session on every instance and at the provider,
// and the signed-out page.

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
