package issuer

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// LoginMethod is one way of signing in on the issuer's login page. The
// built-in method checks a local password. Methods that finish elsewhere
// (magic links, federated providers) carry the sealed request through their
// round trip and end with (*Issuer).CompleteLogin.
type LoginMethod interface {
	// Name is the method's form value, audit reason and amr value ("pwd").
	Name() string
	// Offered reports whether the method is offered to this client.
	Offered(client *identity.Client) bool
	// Authenticate checks the submitted form. On failure it returns the
	// user when known (for the audit log) and an error: the page shows
	// users one generic message, the audit log the precise one.
	Authenticate(ctx context.Context, form url.Values) (*identity.User, error)
}

// passwordLogin signs local accounts in with username-or-email + password.
type passwordLogin struct {
	dir    directory.Directory
	domain string
}

func (passwordLogin) Name() string { return "pwd" }

func (passwordLogin) Offered(c *identity.Client) bool { return c.AllowLocalLogin }

func (p passwordLogin) Authenticate(ctx context.Context, form url.Values) (*identity.User, error) {
	login, password := form.Get("login"), form.Get("password")
	if login == "" || password == "" || len(login) > 256 || len(password) > identity.MaxPasswordLength {
		// Nothing about accounts depends on this answer: no hash is spent.
		return nil, errors.New("login or password missing or too long")
	}
	return directory.CheckPassword(ctx, p.dir, p.domain, login, password)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}.err{color:#a00}</style>
</head><body>
<h1>Sign in</h1>
<p>to continue to <strong>{{.Client}}</strong></p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="req" value="{{.Req}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="method" value="pwd">
<label for="login">Username or e-mail</label>
<input type="text" id="login" name="login" value="{{.Login}}" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
<button type="submit" name="cancel" value="1" formnovalidate>Cancel</button>
</form>
</body></html>
`))

type loginView struct {
	Client, Error, Action, Req, CSRF, Login string
}

func (i *Issuer) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(r.URL.RawQuery) > maxQueryBytes {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in request is too large.", ErrInvalidRequest)
			return
		}
		sealed := r.URL.Query().Get("req")
		req, client := i.openPending(w, sealed)
		if req == nil {
			return
		}
		i.renderLogin(w, r, http.StatusOK, sealed, req, client, "", req.LoginHint)
	case http.MethodPost:
		i.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.", "")
	}
}

// openPending unseals a pending request; on failure it has answered.
func (i *Issuer) openPending(w http.ResponseWriter, sealed string) (*pendingRequest, *identity.Client) {
	req, err := i.sealer.open(sealed, i.now())
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
	client := snap.Client(req.ClientID)
	if client == nil {
		writeErrorPage(w, http.StatusBadRequest, "Unknown application", "The application is no longer registered.", "")
		return nil, nil
	}
	return req, client
}

func (i *Issuer) renderLogin(w http.ResponseWriter, r *http.Request, status int, sealed string, req *pendingRequest, client *identity.Client, msg, login string) {
	if !i.offered(client) {
		writeErrorPage(w, http.StatusForbidden, "Sign-in unavailable",
			"No sign-in method is enabled for this application.", "")
		return
	}
	csrf := i.csrfCookieValue(w, r)
	htmlHeaders(w.Header())
	// Browsers apply form-action to every redirect that follows a form
	// submission, so the login form must also be allowed to end at the
	// client's registered redirect URI (its origin only).
	w.Header().Set("Content-Security-Policy", loginCSP(req.RedirectURI))
	w.WriteHeader(status)
	_ = loginPage.Execute(w, loginView{
		Client: client.ID,
		Error:  msg,
		Action: i.issuer + pathLogin,
		Req:    sealed,
		CSRF:   i.sealer.csrfToken(csrf, req.ID),
		Login:  login,
	})
}

func (i *Issuer) offered(client *identity.Client) bool {
	for _, m := range i.logins {
		if m.Offered(client) {
			return true
		}
	}
	return false
}

func (i *Issuer) postLogin(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in form is malformed: "+err.Error(), ErrInvalidRequest)
		return
	}
	for k, v := range form {
		if len(v) > 1 {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in form repeats "+k+".", ErrInvalidRequest)
			return
		}
	}
	sealed := form.Get("req")
	req, client := i.openPending(w, sealed)
	if req == nil {
		return
	}
	c, _ := r.Cookie(i.csrfCookie)
	if c == nil || !i.sealer.checkCSRF(c.Value, req.ID, form.Get("csrf")) {
		i.auditEntry(evSignIn, outcomeDenied, "login form CSRF check failed", client.ID, "")
		writeErrorPage(w, http.StatusForbidden, "Sign-in refused",
			"The sign-in form could not be verified. Go back to the application and start again (cookies must be enabled).", "")
		return
	}
	if form.Get("cancel") != "" {
		i.auditEntry(evSignIn, outcomeDenied, "user cancelled", client.ID, "")
		i.metrics.signIn(i.name, "cancelled")
		i.authorizeError(w, r, &authzError{code: ErrAccessDenied, desc: "the user cancelled the sign-in", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	var method LoginMethod
	for _, m := range i.logins {
		if m.Name() == form.Get("method") && m.Offered(client) {
			method = m
		}
	}
	if method == nil {
		writeErrorPage(w, http.StatusBadRequest, "Invalid request", "This sign-in method is not available.", ErrInvalidRequest)
		return
	}
	login := form.Get("login")
	account := accountKey(r.Context(), i.dir, i.name, login)
	if i.throttle.blocked(r, account) {
		// Refused before any password hash is spent.
		i.auditEntry(evSignIn, outcomeDenied, "too many failed sign-ins", client.ID, "", zap.String("method", method.Name()))
		i.metrics.signIn(i.name, "throttled")
		i.renderLogin(w, r, http.StatusTooManyRequests, sealed, req, client, "Too many failed sign-ins. Wait a few minutes and try again.", login)
		return
	}
	user, err := method.Authenticate(r.Context(), form)
	if errors.Is(err, directory.ErrUnavailable) {
		// Not a wrong password: the account could not be read.
		i.auditEntry(evSignIn, outcomeFailed, err.Error(), client.ID, "", zap.String("method", method.Name()))
		i.directoryUnavailable(w, pathLogin)
		return
	}
	if err != nil {
		i.throttle.failed(r, account)
		sub := ""
		if user != nil {
			sub = user.Subject
		}
		i.auditEntry(evSignIn, outcomeFailed, err.Error(), client.ID, sub, zap.String("method", method.Name()))
		i.metrics.signIn(i.name, outcomeFailed)
		i.renderLogin(w, r, http.StatusUnauthorized, sealed, req, client, "Incorrect username or password.", form.Get("login"))
		return
	}
	i.throttle.succeeded(r, account)
	i.completeLogin(w, r, req, user, []string{method.Name()})
}

// CompleteLogin ends a successful sign-in made by a login method that
// authenticates elsewhere (magic link, federated provider): sealed is the
// value of the login page's "req" parameter, carried through the method's
// round trip. It starts an SSO session and finishes the authorization
// request, or shows an error page when sealed is invalid or expired.
func (i *Issuer) CompleteLogin(w http.ResponseWriter, r *http.Request, sealed string, user *identity.User, amr []string) {
	req, _ := i.openPending(w, sealed)
	if req == nil {
		return
	}
	i.completeLogin(w, r, req, user, amr)
}

// completeLogin starts an SSO session (a new cookie; the previous session,
// if any, ends) and finishes the pending authorization request.
func (i *Issuer) completeLogin(w http.ResponseWriter, r *http.Request, req *pendingRequest, user *identity.User, amr []string) {
	snap, err := i.snapshot(r.Context())
	if err != nil {
		i.directoryUnavailable(w, pathLogin)
		return
	}
	client := snap.Client(req.ClientID)
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
	i.auditEntry(evSignIn, outcomeOK, "signed in", client.ID, user.Subject, zap.Strings("amr", amr))
	i.metrics.signIn(i.name, outcomeOK)
	i.finishAuthorization(w, r, snap, req, client, user, sess)
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
