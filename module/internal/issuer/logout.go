package issuer

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// serveLogout implements OpenID Connect RP-Initiated Logout: it ends the
// SSO session and returns to a post_logout_redirect_uri registered for the
// client (named by id_token_hint or client_id), echoing state; otherwise it
// shows a signed-out page. An unregistered URI is never followed.
func (i *Issuer) serveLogout(w http.ResponseWriter, r *http.Request) {
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
	for _, k := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "client_id"} {
		if len(p[k]) > 1 {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request repeats "+k+".", ErrInvalidRequest)
			return
		}
	}
	ctx := r.Context()
	var client *identity.Client
	sub := ""
	if hint := p.Get("id_token_hint"); hint != "" {
		c, err := i.verifyOwn(ctx, hint, typIDToken, true)
		if err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The id_token_hint is not an ID token of this issuer.", ErrInvalidRequest)
			return
		}
		if aud := c.audiences(); len(aud) == 1 {
			client = i.domain.Client(aud[0])
		}
		sub = c.Sub
	}
	if id := p.Get("client_id"); id != "" {
		c := i.domain.Client(id)
		if c == nil || (client != nil && client != c) {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The client_id is unknown or does not match the id_token_hint.", ErrInvalidRequest)
			return
		}
		client = c
	}
	target := p.Get("post_logout_redirect_uri")
	if target != "" {
		if client == nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "A post_logout_redirect_uri needs id_token_hint or client_id.", ErrInvalidRequest)
			return
		}
		if !client.HasPostLogoutRedirectURI(target) {
			i.auditEntry(evLogout, outcomeDenied, "post_logout_redirect_uri not registered", client.ID, sub)
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The post_logout_redirect_uri is not registered for this application.", ErrInvalidRequest)
			return
		}
	}
	if c, err := r.Cookie(i.ssoCookie); err == nil && c.Value != "" && len(c.Value) <= 128 {
		id := store.HashID(c.Value)
		s, err := i.st.Session(ctx, id, i.now())
		if err == nil && sub == "" {
			sub = s.Subject
		}
		if err == nil || errors.Is(err, store.ErrNotFound) {
			err = i.st.DeleteSession(ctx, id)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			// The session could not be ended: keep the cookie, so that a
			// retry can, and do not say "signed out".
			i.storeError("delete_session", err)
			clientID := ""
			if client != nil {
				clientID = client.ID
			}
			i.auditEntry(evLogout, outcomeFailed, "store unavailable; session not ended", clientID, sub)
			writeErrorPage(w, http.StatusServiceUnavailable, "Sign-out failed",
				"You are still signed in: the sign-out could not be completed. Try again in a moment.", ErrTemporarilyUnavailable)
			return
		}
	}
	http.SetCookie(w, i.cookie(i.ssoCookie, "", -1))
	clientID := ""
	if client != nil {
		clientID = client.ID
	}
	i.auditEntry(evLogout, outcomeOK, "session ended", clientID, sub)
	if target != "" {
		v := url.Values{}
		if s := p.Get("state"); s != "" && len(s) <= maxStateLen {
			v.Set("state", s)
		}
		loc := target
		if len(v) > 0 {
			loc += "?" + v.Encode()
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
