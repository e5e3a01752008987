package issuer

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Request size limits. Anything larger is refused with a clean 400.
const (
	maxFormBytes   = 64 << 10
	maxQueryBytes  = 16 << 10
	maxStateLen    = 2048
	maxNonceLen    = 512
	maxScopeLen    = 2048
	maxHintLen     = 256
	maxResourceLen = 512
	maxResources   = 16
)

// authzError is an authorization endpoint error. With a trusted redirect
// URI it is sent to the client; without one it is shown as a page.
type authzError struct {
	code, desc string
	// redirectURI and state are set once the redirect URI is trusted.
	redirectURI, state string
}

// singleParams are the parameters that must not be repeated (RFC 6749 3.1).
var singleParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode", "login_hint"}

// readAuthorizeParams returns the request parameters of GET (query) or POST
// (form) authorization requests; a nil result has been answered already.
func (i *Issuer) readAuthorizeParams(w http.ResponseWriter, r *http.Request) url.Values {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(r.URL.RawQuery) > maxQueryBytes {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in request is too large.", ErrInvalidRequest)
			return nil
		}
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in request is malformed.", ErrInvalidRequest)
			return nil
		}
		return v
	case http.MethodPost:
		v, err := readForm(w, r)
		if err != nil {
			writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The sign-in request is malformed: "+err.Error(), ErrInvalidRequest)
			return nil
		}
		return v
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.", "")
		return nil
	}
}

// readForm reads an application/x-www-form-urlencoded body of at most
// maxFormBytes. Query parameters are not merged in.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, errors.New("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errors.New("the body is too large")
		}
		return nil, errors.New("the body is not a valid form")
	}
	return r.PostForm, nil
}

func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	params := i.readAuthorizeParams(w, r)
	if params == nil {
		return
	}
	now := i.now()
	req, prompt, maxAge, aerr := i.parseAuthorize(snap, params)
	if aerr != nil {
		i.auditEntry(evAuthorize, outcomeFailed, aerr.code+": "+aerr.desc, params.Get("client_id"), "")
		i.authorizeError(w, r, aerr)
		return
	}
	req.Expires = now.Add(i.cfg.LoginTimeout).Unix()
	client := snap.Client(req.ClientID)

	sess, user, err := i.currentSession(r.Context(), r)
	if err != nil {
		// Whether the browser has a session is unknown: neither sign it in
		// silently nor claim it has none (prompt=none).
		i.authorizeError(w, r, &authzError{code: ErrTemporarilyUnavailable, desc: "sign-in is unavailable for a moment; try again", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	needLogin := user == nil
	if !needLogin {
		if prompt["login"] {
			needLogin = true
		} else if maxAge >= 0 && now.Sub(sess.AuthTime).Seconds() > float64(maxAge) {
			needLogin = true
		}
	}
	if !needLogin {
		i.finishAuthorization(w, r, snap, req, client, user, sess)
		return
	}
	if prompt["none"] {
		i.auditEntry(evAuthorize, outcomeFailed, "prompt=none without a usable session", client.ID, "")
		i.authorizeError(w, r, &authzError{code: ErrLoginRequired, desc: "the user must sign in", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	i.beginSignIn(w, r, req)
}

// parseAuthorize validates an authorization request in the order that keeps
// redirects safe: client and redirect URI first (errors become pages), then
// everything else (errors go back to the client).
func (i *Issuer) parseAuthorize(snap *directory.Snapshot, p url.Values) (req *pendingRequest, prompt map[string]bool, maxAge int, aerr *authzError) {
	maxAge = -1
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(p[k]) > 1 {
			return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: k + " is repeated"}
		}
	}
	clientID := p.Get("client_id")
	if clientID == "" {
		return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: "client_id is missing"}
	}
	client := snap.Client(clientID)
	if client == nil {
		return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: "client_id is not registered"}
	}
	redirectURI, given := p.Get("redirect_uri"), p.Has("redirect_uri")
	switch {
	case given && !client.HasRedirectURI(redirectURI):
		return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: "redirect_uri is not registered for this client"}
	case !given && len(client.RedirectURIs) != 1:
		return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: "redirect_uri is missing and the client has several registered"}
	case !given:
		redirectURI = client.RedirectURIs[0]
	}
	state := p.Get("state")
	if len(p["state"]) > 1 || len(state) > maxStateLen {
		// The state cannot be echoed faithfully: redirect without it.
		return nil, nil, 0, &authzError{code: ErrInvalidRequest, desc: "state is repeated or too long", redirectURI: redirectURI}
	}
	fail := func(code, desc string) (*pendingRequest, map[string]bool, int, *authzError) {
		return nil, nil, 0, &authzError{code: code, desc: desc, redirectURI: redirectURI, state: state}
	}
	for _, k := range singleParams {
		if len(p[k]) > 1 {
			return fail(ErrInvalidRequest, k+" is repeated")
		}
	}
	if !client.HasGrant(identity.GrantAuthorizationCode) {
		return fail(ErrUnauthorizedClient, "the client may not use the authorization code flow")
	}
	switch rt := p.Get("response_type"); rt {
	case "code":
	case "":
		return fail(ErrInvalidRequest, "response_type is missing; use code")
	default:
		return fail(ErrUnsupportedResponseType, "only response_type=code is supported")
	}
	if rm := p.Get("response_mode"); rm != "" && rm != "query" {
		return fail(ErrInvalidRequest, "only response_mode=query is supported")
	}
	if p.Has("request") {
		return fail(ErrRequestNotSupported, "request objects are not supported")
	}
	if p.Has("request_uri") {
		return fail(ErrRequestURINotSupported, "request_uri is not supported")
	}
	rawScope := p.Get("scope")
	if len(rawScope) > maxScopeLen {
		return fail(ErrInvalidScope, "scope is too long")
	}
	// Scopes the client may not request are dropped (RFC 6749 3.3); the
	// token response says which were granted.
	var scopes []string
	for _, s := range strings.Fields(rawScope) {
		if client.MayRequestScope(s) && !contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	nonce := p.Get("nonce")
	if len(nonce) > maxNonceLen {
		return fail(ErrInvalidRequest, "nonce is too long")
	}
	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	if challenge == "" {
		if method != "" {
			return fail(ErrInvalidRequest, "code_challenge_method without code_challenge")
		}
		if client.PKCERequired() {
			return fail(ErrInvalidRequest, "code_challenge is required (PKCE with S256)")
		}
	} else {
		if method == "" {
			method = "plain" // RFC 7636 4.3 default
		}
		switch method {
		case "S256":
			if len(challenge) != 43 || !isPKCEChars(challenge) {
				return fail(ErrInvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier")
			}
		case "plain":
			if !client.AllowPlainPKCE {
				return fail(ErrInvalidRequest, "code_challenge_method plain is not allowed; use S256")
			}
			if len(challenge) < 43 || len(challenge) > 128 || !isPKCEChars(challenge) {
				return fail(ErrInvalidRequest, "code_challenge must be 43 to 128 unreserved characters")
			}
		default:
			return fail(ErrInvalidRequest, "code_challenge_method must be S256")
		}
	}
	prompt = map[string]bool{}
	for _, v := range strings.Fields(p.Get("prompt")) {
		switch v {
		case "none", "login", "consent", "select_account":
			prompt[v] = true
		default:
			return fail(ErrInvalidRequest, "prompt value is not supported")
		}
	}
	if prompt["none"] && len(prompt) > 1 {
		return fail(ErrInvalidRequest, "prompt=none cannot be combined with other values")
	}
	if v := p.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail(ErrInvalidRequest, "max_age must be a non-negative integer")
		}
		maxAge = n
	}
	resources := p["resource"]
	if len(resources) > maxResources {
		return fail(ErrInvalidTarget, "too many resource parameters")
	}
	for _, res := range resources {
		if len(res) > maxResourceLen || !client.HasAudience(res) {
			return fail(ErrInvalidTarget, "resource is not one of the client's audiences")
		}
	}
	hint := p.Get("login_hint")
	if len(hint) > maxHintLen {
		hint = ""
	}
	return &pendingRequest{
		ID:            randomString(12),
		ClientID:      client.ID,
		RedirectURI:   redirectURI,
		RedirectGiven: given,
		Scopes:        scopes,
		Resources:     resources,
		State:         state,
		Nonce:         nonce,
		Challenge:     challenge,
		Method:        method,
		LoginHint:     hint,
	}, prompt, maxAge, nil
}

// isPKCEChars: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
func isPKCEChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// authorizeError redirects to a trusted redirect URI, or shows a page.
func (i *Issuer) authorizeError(w http.ResponseWriter, r *http.Request, e *authzError) {
	if e.redirectURI == "" {
		writeErrorPage(w, http.StatusBadRequest, "Sign-in request rejected",
			"The application sent an invalid sign-in request: "+e.desc+".", e.code)
		return
	}
	v := url.Values{"error": {e.code}, "iss": {i.issuer}}
	if e.desc != "" {
		v.Set("error_description", cleanDescription(e.desc))
	}
	if e.state != "" {
		v.Set("state", e.state)
	}
	redirectWith(w, r, e.redirectURI, v)
}

// redirectWith sends the browser to a registered redirect URI (which has no
// query by registration rules) with the response parameters.
func redirectWith(w http.ResponseWriter, r *http.Request, uri string, v url.Values) {
	noStore(w.Header())
	w.Header().Set("Location", uri+"?"+v.Encode())
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.WriteHeader(status)
}

// finishAuthorization runs at the end of sign-in (or with a usable SSO
// session): it applies the client's policies (the snapshot's) and sends
// the code.
func (i *Issuer) finishAuthorization(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot, req *pendingRequest, client *identity.Client, user *identity.User, sess store.Session) {
	if len(client.Policies) > 0 {
		claims, err := i.policyClaims(snap, user, client, req.Scopes, req.Resources, sess)
		if err != nil {
			i.authorizeError(w, r, &authzError{code: ErrServerError, desc: "the user's claims could not be mapped", redirectURI: req.RedirectURI, state: req.State})
			return
		}
		allowed, why := i.policyCheck(snap.Policies, claims, client.Policies)
		if !allowed {
			i.auditEntry(evPolicy, outcomeDenied, why, client.ID, user.Subject)
			i.authorizeError(w, r, &authzError{code: ErrAccessDenied, desc: "access denied by policy", redirectURI: req.RedirectURI, state: req.State})
			return
		}
	}
	now := i.now()
	code := randomString(32)
	rec := store.AuthCode{
		ID:                  store.HashID(code),
		Domain:              i.name,
		ClientID:            client.ID,
		Subject:             user.Subject,
		Scopes:              req.Scopes,
		Audience:            req.Resources,
		Nonce:               req.Nonce,
		CodeChallenge:       req.Challenge,
		CodeChallengeMethod: req.Method,
		AuthTime:            sess.AuthTime,
		SessionID:           sess.ID,
		FamilyID:            randomString(16),
		CreatedAt:           now,
		ExpiresAt:           now.Add(i.cfg.CodeLifetime),
	}
	if req.RedirectGiven {
		rec.RedirectURI = req.RedirectURI
	}
	// Recorded first: every grant a code may start is known to the session,
	// so signing out revokes it (see endSession).
	if err := i.st.AddSessionGrant(r.Context(), store.SessionGrant{
		SessionID: sess.ID, FamilyID: rec.FamilyID, ClientID: client.ID, CreatedAt: now, ExpiresAt: sess.ExpiresAt,
	}); err != nil {
		i.storeError("add_session_grant", err)
		i.authorizeError(w, r, &authzError{code: ErrTemporarilyUnavailable, desc: "could not issue a code; try again", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	if err := i.st.CreateAuthCode(r.Context(), rec); err != nil {
		i.storeError("create_auth_code", err)
		i.authorizeError(w, r, &authzError{code: ErrTemporarilyUnavailable, desc: "could not issue a code; try again", redirectURI: req.RedirectURI, state: req.State})
		return
	}
	i.auditEntry(evAuthorize, outcomeOK, "code issued", client.ID, user.Subject)
	v := url.Values{"code": {code}, "iss": {i.issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	redirectWith(w, r, req.RedirectURI, v)
}

// currentSession returns the browser's SSO session and its user, or a nil
// user when there is none (or it belongs to a missing or disabled user). An
// error means the store (or the directory) could not tell.
func (i *Issuer) currentSession(ctx context.Context, r *http.Request) (store.Session, *identity.User, error) {
	c, err := r.Cookie(i.ssoCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return store.Session{}, nil, nil
	}
	sess, err := i.st.Session(ctx, store.HashID(c.Value), i.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			i.storeError("session", err)
			return store.Session{}, nil, err
		}
		return store.Session{}, nil, nil
	}
	if sess.Domain != i.name {
		return store.Session{}, nil, nil
	}
	u, err := i.dir.UserBySubject(ctx, i.name, sess.Subject)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return store.Session{}, nil, nil
	case err != nil:
		i.directoryError("user_by_subject", err)
		return store.Session{}, nil, err
	case !u.Active:
		return store.Session{}, nil, nil
	}
	return sess, u, nil
}
