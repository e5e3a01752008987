package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// The issuer's side of the sign-in seam (package authn). The issuer begins
// a sign-in for a pending authorization request (beginSignIn: a sealed
// transaction, and the login page), shows the login page with the section
// of every method the client is offered, routes <issuer>/login/<method>/...
// to the methods, and ends a sign-in a method completes (completeLogin).

// methodName is what a method's name (its path segment) may be.
var methodName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// setMethods checks and installs the sign-in methods.
func (i *Issuer) setMethods(methods []authn.Method) error {
	if len(methods) == 0 {
		methods = []authn.Method{authn.Password{}}
	}
	i.byName = map[string]*methodHost{}
	for _, m := range methods {
		name := m.Name()
		if !methodName.MatchString(name) {
			return fmt.Errorf("login method name %q is not a path segment; use lower-case letters, digits, '-' and '_'", name)
		}
		h := &methodHost{i: i, m: m}
		names := []string{name}
		if a, ok := m.(authn.Aliased); ok {
			names = append(names, a.Aliases()...)
		}
		for _, n := range names {
			if _, dup := i.byName[n]; dup {
				return fmt.Errorf("login method %q is configured twice; list each method once", n)
			}
			i.byName[n] = h
		}
		i.methods = append(i.methods, h)
	}
	return nil
}

// methodRoute finds the method whose routes rest (a path below the issuer
// URL) is in: <issuer>/login/<name> or below. It returns the rest of the
// path after the name ("" or "/...").
func (i *Issuer) methodRoute(rest string) (*methodHost, string) {
	after, ok := strings.CutPrefix(rest, pathLogin+"/")
	if !ok {
		return nil, ""
	}
	name, sub, _ := strings.Cut(after, "/")
	h := i.byName[name]
	if h == nil || h.m.Name() != name {
		return nil, "" // aliases are form values, not routes
	}
	if sub != "" || strings.HasSuffix(after, "/") {
		sub = "/" + sub
	}
	return h, sub
}

func (i *Issuer) serveLoginMethod(w http.ResponseWriter, r *http.Request) {
	h, sub := i.methodRoute(strings.TrimPrefix(r.URL.Path, i.basePath))
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.m.Serve(h, w, r, sub)
}

// beginSignIn starts signing the user in for a pending authorization
// request: its transaction, sealed, goes to the login page.
func (i *Issuer) beginSignIn(w http.ResponseWriter, r *http.Request, req *pendingRequest) {
	raw, err := json.Marshal(req)
	if err != nil {
		i.authorizeError(w, r, &authzError{code: ErrServerError, desc: "could not start sign-in", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	tx := &authn.Transaction{ID: req.ID, Request: raw, ClientID: req.ClientID, LoginHint: req.LoginHint, Expires: time.Unix(req.Expires, 0)}
	sealed, err := i.sealer.sealTx(tx, i.now(), i.cfg.LoginTimeout)
	if err != nil {
		i.authorizeError(w, r, &authzError{code: ErrInvalidRequest, desc: "the authorization request is too large to sign in with", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	http.Redirect(w, r, i.issuer+pathLogin+"?req="+url.QueryEscape(sealed), http.StatusSeeOther)
}

func (i *Issuer) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(r.URL.RawQuery) > maxQueryBytes {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in request is too large.", ErrInvalidRequest)
			return
		}
		sealed := r.URL.Query().Get("req")
		tx, client := i.openSignIn(w, sealed)
		if tx == nil {
			return
		}
		i.renderLogin(w, r, http.StatusOK, tx, client, "", sealed)
	case http.MethodPost:
		i.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.", "")
	}
}

// openSignIn opens a sealed transaction; on failure it has answered.
func (i *Issuer) openSignIn(w http.ResponseWriter, sealed string) (*authn.Transaction, *identity.Client) {
	tx, err := i.sealer.openTx(sealed)
	if err != nil {
		writeErrorPage(w, http.StatusBadRequest, "Sign-in expired",
			"This sign-in page is no longer valid. Go back to the application and start again.", "")
		return nil, nil
	}
	snap, err := i.snapshot(context.Background())
	if err != nil {
		i.directoryUnavailable(w, pathLogin)
		return nil, nil
	}
	client := snap.Client(tx.ClientID)
	if client == nil {
		writeErrorPage(w, http.StatusBadRequest, "Unknown application", "The application is no longer registered.", "")
		return nil, nil
	}
	return tx, client
}

// shown are the methods the login page shows for tx: the running one, or
// every method offered to the client.
func (i *Issuer) shown(tx *authn.Transaction, client *identity.Client) []*methodHost {
	var out []*methodHost
	for _, h := range i.methods {
		if h.m.Offered(client) && (tx.Method == "" || tx.Method == h.m.Name()) {
			out = append(out, h)
		}
	}
	return out
}

// renderLogin shows the login page for tx: sealed is tx as it came, or ""
// to seal it as it is now.
func (i *Issuer) renderLogin(w http.ResponseWriter, r *http.Request, status int, tx *authn.Transaction, client *identity.Client, msg, sealed string) {
	methods := i.shown(tx, client)
	if len(methods) == 0 {
		writeErrorPage(w, http.StatusForbidden, "Sign-in unavailable",
			"No sign-in method is enabled for this application.", "")
		return
	}
	if sealed == "" {
		var err error
		if sealed, err = i.sealer.sealTx(tx, i.now(), i.cfg.LoginTimeout); err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Sign-in failed", "The sign-in cannot go on; go back to the application and start again.", "")
			return
		}
	}
	hidden := authn.HiddenFields(sealed, i.sealer.csrfToken(i.csrfCookieValue(w, r), tx.ID))
	page := &authn.Page{Client: client.ID, Message: msg, CancelAction: i.issuer + pathLogin, Hidden: hidden}
	for n, h := range methods {
		section, err := h.m.Render(&authn.View{Tx: tx, Action: h.URL(""), Hidden: hidden, Focus: n == 0})
		if err != nil {
			i.log.Error("rendering a login method failed", zap.String("method", h.m.Name()), zap.String("domain", i.name), zap.Error(err))
			writeErrorPage(w, http.StatusInternalServerError, "Sign-in failed", "The sign-in page could not be shown; try again later.", "")
			return
		}
		page.Sections = append(page.Sections, section)
	}
	htmlHeaders(w.Header())
	// Browsers apply form-action to every redirect that follows a form
	// submission, so the login form must also be allowed to end at the
	// client's registered redirect URI (its origin only).
	var req pendingRequest
	_ = json.Unmarshal(tx.Request, &req)
	w.Header().Set("Content-Security-Policy", loginCSP(req.RedirectURI))
	w.WriteHeader(status)
	_ = page.Write(w)
}

// readSignInForm reads a form the login page posted: the transaction and
// its client, with the CSRF token checked; for a method (h not nil) also
// that the client is offered it and no other method runs. On failure it
// has answered.
func (i *Issuer) readSignInForm(w http.ResponseWriter, r *http.Request, h *methodHost) (*authn.Transaction, *identity.Client, url.Values) {
	form, err := readForm(w, r)
	if err != nil {
		writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in form is malformed: "+err.Error(), ErrInvalidRequest)
		return nil, nil, nil
	}
	for k, v := range form {
		if len(v) > 1 {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in form repeats "+k+".", ErrInvalidRequest)
			return nil, nil, nil
		}
	}
	tx, client := i.openSignIn(w, form.Get("req"))
	if tx == nil {
		return nil, nil, nil
	}
	c, _ := r.Cookie(i.csrfCookie)
	if c == nil || !i.sealer.checkCSRF(c.Value, tx.ID, form.Get("csrf")) {
		i.auditEntry(evSignIn, outcomeDenied, "login form CSRF check failed", client.ID, "")
		writeErrorPage(w, http.StatusForbidden, "Sign-in refused",
			"The sign-in form could not be verified. Go back to the application and start again (cookies must be enabled).", "")
		return nil, nil, nil
	}
	if h != nil && (!h.m.Offered(client) || (tx.Method != "" && tx.Method != h.m.Name())) {
		writeErrorPage(w, http.StatusBadRequest, "Invalid request", "This sign-in method is not available.", ErrInvalidRequest)
		return nil, nil, nil
	}
	return tx, client, form
}

// postLogin serves POST <issuer>/login: the cancel button, and forms that
// name their method in a "method" field.
func (i *Issuer) postLogin(w http.ResponseWriter, r *http.Request) {
	tx, _, form := i.readSignInForm(w, r, nil)
	if tx == nil {
		return
	}
	if form.Get("cancel") != "" {
		i.cancelSignIn(w, r, tx)
		return
	}
	h := i.byName[form.Get("method")]
	if h == nil {
		writeErrorPage(w, http.StatusBadRequest, "Invalid request", "This sign-in method is not available.", ErrInvalidRequest)
		return
	}
	h.m.Serve(h, w, r, "")
}

func (i *Issuer) cancelSignIn(w http.ResponseWriter, r *http.Request, tx *authn.Transaction) {
	var req pendingRequest
	if err := json.Unmarshal(tx.Request, &req); err != nil {
		writeErrorPage(w, http.StatusBadRequest, "Sign-in expired",
			"This sign-in page is no longer valid. Go back to the application and start again.", "")
		return
	}
	i.auditEntry(evSignIn, outcomeDenied, "user cancelled", tx.ClientID, "")
	i.metrics.signIn(i.name, "cancelled")
	i.authorizeError(w, r, &authzError{code: ErrAccessDenied, desc: "the user cancelled the sign-in", redirectURI: req.RedirectURI, state: req.State})
}

// completeSignIn ends a sign-in a method completed (authn.Host.Complete).
func (i *Issuer) completeSignIn(w http.ResponseWriter, r *http.Request, h *methodHost, tx *authn.Transaction, a authn.Authentication) {
	var req pendingRequest
	if err := json.Unmarshal(tx.Request, &req); err != nil || req.ID != tx.ID {
		writeErrorPage(w, http.StatusBadRequest, "Sign-in expired",
			"This sign-in page is no longer valid. Go back to the application and start again.", "")
		return
	}
	fail := func(reason string) {
		i.auditEntry(evSignIn, outcomeFailed, reason, tx.ClientID, a.Subject, zap.String("method", h.m.Name()))
		i.metrics.signIn(i.name, outcomeFailed)
		writeErrorPage(w, http.StatusBadRequest, "Sign-in failed", "The account or application is not available.", "")
	}
	snap, err := i.snapshot(r.Context())
	if err != nil {
		i.directoryUnavailable(w, pathLogin)
		return
	}
	client := snap.Client(tx.ClientID)
	switch {
	case client == nil || !h.m.Offered(client):
		fail("the method is not offered to the client")
		return
	case a.Subject == "" && a.External != nil:
		fail(fmt.Sprintf("no account is linked to the %s identity", a.External.Provider))
		return
	case a.Subject == "":
		fail("the method named no user")
		return
	case tx.Subject != "" && a.Subject != tx.Subject:
		fail("the method completed as another user than it identified")
		return
	}
	amr := append([]string(nil), tx.AMR...)
	for _, v := range a.AMR {
		if !contains(amr, v) {
			amr = append(amr, v)
		}
	}
	var extra []zap.Field
	if a.ACR != "" {
		extra = append(extra, zap.String("acr", a.ACR))
	}
	if a.External != nil {
		extra = append(extra, zap.String("idp", a.External.Provider))
	}
	user, err := i.dir.UserBySubject(r.Context(), i.name, a.Subject)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		i.directoryError("user_by_subject", err)
		i.directoryUnavailable(w, pathLogin)
		return
	}
	i.completeLogin(w, r, snap, &req, client, user, amr, extra...)
}

// completeLogin starts an SSO session (a new cookie; the previous session,
// if any, ends) and finishes the pending authorization request.
func (i *Issuer) completeLogin(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot, req *pendingRequest, client *identity.Client, user *identity.User, amr []string, extra ...zap.Field) {
	if client == nil || user == nil || !user.Active {
		writeErrorPage(w, http.StatusBadRequest, "Sign-in failed", "The account or application is not available.", "")
		return
	}
	ctx := r.Context()
	if old, err := r.Cookie(i.ssoCookie); err == nil && old.Value != "" && len(old.Value) <= 128 {
		if err := i.st.DeleteSession(ctx, store.HashID(old.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			i.storeError("delete_session", err)
		}
	}
	now := i.now()
	value := randomString(32)
	sess := store.Session{
		ID:        store.HashID(value),
		Domain:    i.name,
		Subject:   user.Subject,
		AuthTime:  now,
		AMR:       amr,
		CreatedAt: now,
		ExpiresAt: now.Add(sessionLifetime(snap)),
	}
	if err := i.st.CreateSession(ctx, sess); err != nil {
		i.storeError("create_session", err)
		writeErrorPage(w, http.StatusServiceUnavailable, "Sign-in failed", "The session could not be stored; try again in a moment.", ErrTemporarilyUnavailable)
		return
	}
	http.SetCookie(w, i.cookie(i.ssoCookie, value, int(sessionLifetime(snap).Seconds())))
	i.auditEntry(evSignIn, outcomeOK, "signed in", client.ID, user.Subject, append([]zap.Field{zap.Strings("amr", amr)}, extra...)...)
	i.metrics.signIn(i.name, outcomeOK)
	i.finishAuthorization(w, r, snap, req, client, user, sess)
}

// methodHost is what the issuer offers one sign-in method (authn.Host).
type methodHost struct {
	i *Issuer
	m authn.Method
}

var _ authn.Host = (*methodHost)(nil)

func (h *methodHost) Form(w http.ResponseWriter, r *http.Request) (*authn.Transaction, url.Values) {
	tx, _, form := h.i.readSignInForm(w, r, h)
	return tx, form
}

func (h *methodHost) Seal(tx *authn.Transaction) (string, error) {
	return h.i.sealer.sealTx(tx, h.i.now(), h.i.cfg.LoginTimeout)
}

func (h *methodHost) Open(sealed string) (*authn.Transaction, error) {
	tx, err := h.i.sealer.openTx(sealed)
	if err != nil {
		return nil, err
	}
	if tx.Method != "" && tx.Method != h.m.Name() {
		return nil, errors.New("the sign-in transaction belongs to another method")
	}
	return tx, nil
}

func (h *methodHost) CSRF(w http.ResponseWriter, r *http.Request, tx *authn.Transaction) string {
	return h.i.sealer.csrfToken(h.i.csrfCookieValue(w, r), tx.ID)
}

func (h *methodHost) CheckCSRF(r *http.Request, tx *authn.Transaction, token string) bool {
	c, _ := r.Cookie(h.i.csrfCookie)
	return c != nil && h.i.sealer.checkCSRF(c.Value, tx.ID, token)
}

func (h *methodHost) Continue(w http.ResponseWriter, r *http.Request, tx *authn.Transaction, status int, msg string) {
	snap, err := h.i.snapshot(r.Context())
	if err != nil {
		h.i.directoryUnavailable(w, pathLogin)
		return
	}
	client := snap.Client(tx.ClientID)
	if client == nil {
		writeErrorPage(w, http.StatusBadRequest, "Unknown application", "The application is no longer registered.", "")
		return
	}
	h.i.renderLogin(w, r, status, tx, client, msg, "")
}

func (h *methodHost) Complete(w http.ResponseWriter, r *http.Request, tx *authn.Transaction, a authn.Authentication) {
	h.i.completeSignIn(w, r, h, tx, a)
}

func (h *methodHost) Cancel(w http.ResponseWriter, r *http.Request, tx *authn.Transaction) {
	h.i.cancelSignIn(w, r, tx)
}

func (h *methodHost) Fail(w http.ResponseWriter, status int, title, message string) {
	writeErrorPage(w, status, title, message, "")
}

func (h *methodHost) URL(path string) string {
	return h.i.issuer + pathLogin + "/" + h.m.Name() + path
}

func (h *methodHost) Now() time.Time { return h.i.now() }

func (h *methodHost) Users() authn.Users { return issuerUsers{h.i} }

func (h *methodHost) Throttle() authn.Throttle { return h.i.throttle }

func (h *methodHost) Audit(tx *authn.Transaction, outcome, reason, sub string, fields ...zap.Field) {
	h.i.auditEntry(evSignIn, outcome, reason, tx.ClientID, sub, fields...)
}

func (h *methodHost) CountSignIn(outcome string) { h.i.metrics.signIn(h.i.name, outcome) }

// issuerUsers are the domain's accounts, as methods see them: the
// directory's.
type issuerUsers struct{ i *Issuer }

func (u issuerUsers) UserByLogin(ctx context.Context, login string) (*identity.User, error) {
	user, err := u.i.dir.UserByLogin(ctx, u.i.name, login)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return nil, nil
	case err != nil:
		u.i.directoryError("user_by_login", err)
		return nil, err
	}
	return user, nil
}

// SpendDummyHash spends a real password hash of the domain (the snapshot's
// DummyHash; a default one when the directory cannot say).
func (u issuerUsers) SpendDummyHash(password string) {
	hash := ""
	if snap, err := u.i.snapshot(context.Background()); err == nil {
		hash = snap.DummyHash
	}
	identity.SpendDummyHash(hash, password)
}

// csrfCookieValue returns the browser's CSRF cookie, setting a new one when
// it has none: the forms the issuer renders carry tokens bound to it.
func (i *Issuer) csrfCookieValue(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(i.csrfCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	v := randomString(32)
	http.SetCookie(w, i.cookie(i.csrfCookie, v, 0))
	return v
}

// cookie builds an issuer cookie: host-only, Path=/, HttpOnly, SameSite=Lax,
// Secure on https. maxAge < 0 deletes it; 0 makes a browser-session cookie.
func (i *Issuer) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   i.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// loginCSP is the login page's Content-Security-Policy: the page's own
// origin and the origin of the (already validated, registered) redirect URI
// may receive the form and the redirects that follow it.
func loginCSP(redirectURI string) string {
	if u, err := url.Parse(redirectURI); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") {
		return htmlpage.CSP(u.Scheme + "://" + u.Host)
	}
	return htmlpage.CSP()
}
