package issuer

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// logoutHintLifetime bounds a logout hint sealed by EndSessionURLFor: the
// browser follows it at once.
const logoutHintLifetime = 5 * time.Minute

// logoutHint is what EndSessionURLFor seals: a client of this issuer (the
// embedded gate) vouches that subject asked to sign out.
type logoutHint struct {
	ClientID string `json:"c"`
	Subject  string `json:"s"`
	Expires  int64  `json:"e"`
	// Target is the post_logout_redirect_uri the gate asked for; it is
	// accepted unregistered when it is on the client's own site.
	Target string `json:"t,omitempty"`
}

// EndSessionURLFor is the RP-initiated logout URL for a client that runs
// in-process with the issuer (the embedded gate, which keeps no ID token to
// send as id_token_hint): it carries, as logout_hint, a value sealed by the
// issuer for this purpose only, bound to clientID and subject and valid for
// logoutHintLifetime. Like an id_token_hint of subject, it ends subject's
// session without asking for confirmation; for anyone else the user is
// asked. postLogoutRedirectURI must be registered for the client, or be on
// the origin of one of its redirect URIs (the gate's own site, such as its
// signed-out page): the sealed hint names it, so only the in-process gate
// can send the browser there unregistered. It and state may be empty.
func (i *Issuer) EndSessionURLFor(clientID, subject, postLogoutRedirectURI, state string) string {
	v := url.Values{"client_id": {clientID}}
	hint, err := i.sealer.sealHint(logoutHint{ClientID: clientID, Subject: subject, Expires: i.now().Add(logoutHintLifetime).Unix(), Target: postLogoutRedirectURI})
	if err == nil {
		// Without it the user is asked to confirm: still a working logout.
		v.Set("logout_hint", hint)
	}
	if postLogoutRedirectURI != "" {
		v.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		v.Set("state", state)
	}
	return i.EndSessionURL() + "?" + v.Encode()
}

// vouch is who a logout request's hint says is signing out: a subject, and
// the session when the hint names one (an ID token's sid); and, for the
// issuer's own logout_hint, the post-logout target the gate sealed in it
// with the raw hint, which the confirmation form carries on.
type vouch struct{ sub, sid, target, raw string }

// covers reports whether the hint is for sess: its user, and its session
// when the hint names one.
func (i *Issuer) covers(h *vouch, sess store.Session) bool {
	return h != nil && h.sub == sess.Subject && (h.sid == "" || h.sid == i.sid(sess.ID))
}

// serveLogout implements OpenID Connect RP-Initiated Logout. A request with
// a valid hint for the browser's session — an ID token of this issuer
// (id_token_hint) or a logout_hint from EndSessionURLFor, naming the
// session's user — ends the session at once. Without one, a page on any
// site could end the session by sending the browser here, so the user is
// asked: a confirmation page whose form POSTs back with a CSRF token bound
// to the browser and the session. Then it returns to a post_logout_redirect_uri
// registered for the client (named by the hint or client_id), echoing state,
// or shows a signed-out page. An unregistered URI is never followed.
func (i *Issuer) serveLogout(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	var p url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(r.URL.RawQuery) > maxQueryBytes {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request is too large.", ErrInvalidRequest)
			return
		}
		var err error
		if p, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request is malformed.", ErrInvalidRequest)
			return
		}
	case http.MethodPost:
		var err error
		if p, err = readForm(w, r); err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request is malformed: "+err.Error(), ErrInvalidRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.", "")
		return
	}
	for _, k := range []string{"id_token_hint", "logout_hint", "post_logout_redirect_uri", "state", "client_id", "csrf"} {
		if len(p[k]) > 1 {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request repeats "+k+".", ErrInvalidRequest)
			return
		}
	}
	ctx := r.Context()
	var client *identity.Client
	var hint *vouch
	if raw := p.Get("id_token_hint"); raw != "" {
		c, err := i.verifyOwn(ctx, raw, typIDToken, true)
		if errors.Is(err, errKeysUnavailable) {
			writeErrorPage(w, http.StatusServiceUnavailable, "Sign-out failed",
				"You are still signed in: the sign-out could not be completed. Try again in a moment.", ErrTemporarilyUnavailable)
			return
		}
		if err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The id_token_hint is not an ID token of this issuer.", ErrInvalidRequest)
			return
		}
		if aud := c.Audience; len(aud) == 1 {
			client = snap.Client(aud[0])
		}
		hint = &vouch{sub: c.Subject, sid: sessionIDOf(c)}
	}
	if raw := p.Get("logout_hint"); raw != "" && hint == nil {
		// Only the issuer's own, unexpired hints vouch for anyone; any other
		// logout_hint is left aside, and the user is asked.
		var h logoutHint
		if err := i.sealer.openHint(raw, &h); err == nil && i.now().Unix() <= h.Expires {
			if client = snap.Client(h.ClientID); client != nil {
				hint = &vouch{sub: h.Subject, target: h.Target, raw: raw}
			}
		}
	}
	if id := p.Get("client_id"); id != "" {
		c := snap.Client(id)
		if c == nil || (client != nil && client != c) {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The client_id is unknown or does not match the hint.", ErrInvalidRequest)
			return
		}
		client = c
	}
	clientID := ""
	if client != nil {
		clientID = client.ID
	}
	target := p.Get("post_logout_redirect_uri")
	if target != "" {
		if client == nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "A post_logout_redirect_uri needs id_token_hint or client_id.", ErrInvalidRequest)
			return
		}
		sealed := hint != nil && hint.target != "" && hint.target == target && onClientSite(client, target)
		if !client.HasPostLogoutRedirectURI(target) && !sealed {
			i.auditEntry(evLogout, outcomeDenied, "post_logout_redirect_uri not registered", client.ID, "")
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The post_logout_redirect_uri is not registered for this application.", ErrInvalidRequest)
			return
		}
	}
	state := p.Get("state")
	if len(state) > maxStateLen {
		state = ""
	}
	unavailablePage := func(sub string) {
		// The session could not be ended: keep the cookie, so that a retry
		// can, and do not say "signed out".
		i.auditEntry(evLogout, outcomeFailed, "store unavailable; session not ended", clientID, sub)
		writeErrorPage(w, http.StatusServiceUnavailable, "Sign-out failed",
			"You are still signed in: the sign-out could not be completed. Try again in a moment.", ErrTemporarilyUnavailable)
	}
	sess, found, err := i.logoutSession(ctx, r)
	if err != nil {
		unavailablePage("")
		return
	}
	if found && !i.covers(hint, sess) {
		if r.Method != http.MethodPost || !p.Has("csrf") {
			i.renderLogoutConfirmation(w, r, http.StatusOK, sess, clientID, target, state, hint)
			return
		}
		c, _ := r.Cookie(i.csrfCookie)
		if c == nil || !i.sealer.checkCSRF(c.Value, logoutCSRFPurpose(sess), p.Get("csrf")) {
			i.auditEntry(evLogout, outcomeDenied, "sign-out form CSRF check failed", clientID, sess.Subject)
			i.renderLogoutConfirmation(w, r, http.StatusForbidden, sess, clientID, target, state, hint)
			return
		}
	}
	sub := ""
	var grants []store.SessionGrant
	if found {
		sub = sess.Subject
		if grants, err = i.endSession(ctx, snap, sess); err != nil {
			unavailablePage(sub)
			return
		}
	}
	http.SetCookie(w, i.cookie(i.ssoCookie, "", -1))
	i.auditEntry(evLogout, outcomeOK, "session ended", clientID, sub, zap.Int("grants_revoked", len(grants)))
	if found {
		i.backchannelLogout(snap, sess, grants)
	}
	if target != "" {
		loc := target
		if state != "" {
			loc += "?" + url.Values{"state": {state}}.Encode()
		}
		noStore(w.Header())
		w.Header().Set("Location", loc)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusSeeOther)
		} else {
			w.WriteHeader(http.StatusFound)
		}
		return
	}
	writeErrorPage(w, http.StatusOK, "Signed out", "You are signed out.", "")
}

// logoutSession returns the browser's live SSO session of this domain, if
// any. An error means the store could not tell.
func (i *Issuer) logoutSession(ctx context.Context, r *http.Request) (store.Session, bool, error) {
	c, err := r.Cookie(i.ssoCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return store.Session{}, false, nil
	}
	sess, err := i.st.Session(ctx, store.HashID(c.Value), i.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Session{}, false, nil
	case err != nil:
		i.storeError("session", err)
		return store.Session{}, false, err
	case sess.Domain != i.name:
		return store.Session{}, false, nil
	}
	return sess, true, nil
}

// endSession ends an SSO session and what it started: the token family of
// every grant made under it is revoked (refresh tokens stop working, access
// tokens are revoked, OnRevoke tells the gates), then the session is
// deleted. On an error the session is left in place, so a retry finds the
// grants again; revoking a family twice is harmless.
func (i *Issuer) endSession(ctx context.Context, snap *directory.Snapshot, sess store.Session) ([]store.SessionGrant, error) {
	now := i.now()
	grants, err := i.st.SessionGrants(ctx, sess.ID, now)
	if err != nil {
		i.storeError("session_grants", err)
		return nil, err
	}
	for _, g := range grants {
		until := now.Add(identity.MaxRefreshTokenLifetime) // a client no longer configured
		if c := snap.Client(g.ClientID); c != nil {
			until = now.Add(familyLifetime(c))
		}
		if err := i.revoke(ctx, revocation.ID(g.FamilyID), until); err != nil {
			return nil, err
		}
	}
	if err := i.st.DeleteSession(ctx, sess.ID); err != nil {
		i.storeError("delete_session", err)
		return nil, err
	}
	return grants, nil
}

// logoutCSRFPurpose binds the confirmation form's CSRF token to the session
// it ends.
func logoutCSRFPurpose(sess store.Session) string { return "logout\x00" + sess.ID }

var logoutPage = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out?</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
button{margin-top:1rem;padding:.5rem 1rem}.err{color:#a00}</style>
</head><body>
<h1>Sign out?</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<p>Do you want to sign out{{if .Client}} of <strong>{{.Client}}</strong> and every application you signed in to here{{end}}?
If you did not ask to sign out, close this page.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .Client}}<input type="hidden" name="client_id" value="{{.Client}}">
{{end}}{{if .Target}}<input type="hidden" name="post_logout_redirect_uri" value="{{.Target}}">
{{end}}{{if .State}}<input type="hidden" name="state" value="{{.State}}">
{{end}}{{if .Hint}}<input type="hidden" name="logout_hint" value="{{.Hint}}">
{{end}}<button type="submit">Sign out</button>
</form>
</body></html>
`))

// renderLogoutConfirmation shows the sign-out confirmation page: a form
// that POSTs the request back with a CSRF token (and the issuer's own
// logout_hint when it came with one: it vouches for a post-logout target on
// the client's site).
func (i *Issuer) renderLogoutConfirmation(w http.ResponseWriter, r *http.Request, status int, sess store.Session, clientID, target, state string, hint *vouch) {
	csrf := i.csrfCookieValue(w, r)
	msg := ""
	if status == http.StatusForbidden {
		msg = "The sign-out form could not be verified. Confirm again to sign out (cookies must be enabled)."
	}
	htmlHeaders(w.Header())
	// The POST may end at the registered post_logout_redirect_uri: the
	// form-action must allow its origin (see loginCSP).
	w.Header().Set("Content-Security-Policy", loginCSP(target))
	w.WriteHeader(status)
	rawHint := ""
	if hint != nil {
		rawHint = hint.raw
	}
	_ = logoutPage.Execute(w, struct{ Error, Action, CSRF, Client, Target, State, Hint string }{
		Error:  msg,
		Action: i.issuer + pathLogout,
		CSRF:   i.sealer.csrfToken(csrf, logoutCSRFPurpose(sess)),
		Client: clientID,
		Target: target,
		State:  state,
		Hint:   rawHint,
	})
}

// onClientSite reports whether uri is an http(s) URL, without userinfo or
// fragment, on the origin (scheme and host:port) of one of the client's
// registered redirect URIs: the site the client's codes already go to.
func onClientSite(c *identity.Client, uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(uri, "#") || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	for _, ru := range c.RedirectURIs {
		if r, err := url.Parse(ru); err == nil && r.Scheme == u.Scheme && r.Host == u.Host {
			return true
		}
	}
	return false
}
