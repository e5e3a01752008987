package issuer

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// clientCredentials are the credentials a request presented.
type clientCredentials struct {
	id, secret string
	// method is client_secret_basic, client_secret_post or none.
	method string
}

// credentialsFrom extracts client credentials from the Authorization header
// (client_secret_basic, with RFC 6749 2.3.1 form-decoding) or the form
// (client_secret_post / none). Using both is an error.
func credentialsFrom(r *http.Request, form url.Values) (clientCredentials, *OAuthError) {
	if len(form["client_id"]) > 1 || len(form["client_secret"]) > 1 {
		return clientCredentials{}, oauthErr(ErrInvalidRequest, "client_id or client_secret is repeated")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, _, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return clientCredentials{}, &OAuthError{Code: ErrInvalidClient, Description: "use HTTP Basic client authentication"}
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			return clientCredentials{}, &OAuthError{Code: ErrInvalidClient, Description: "malformed Basic credentials"}
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return clientCredentials{}, &OAuthError{Code: ErrInvalidClient, Description: "malformed Basic credentials (form-encode the client id and secret)"}
		}
		if form.Has("client_secret") {
			return clientCredentials{}, oauthErr(ErrInvalidRequest, "use one client authentication method, not Basic and client_secret together")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return clientCredentials{}, oauthErr(ErrInvalidRequest, "client_id differs from the Basic credentials")
		}
		return clientCredentials{id: id, secret: secret, method: "client_secret_basic"}, nil
	}
	if form.Has("client_secret") {
		return clientCredentials{id: form.Get("client_id"), secret: form.Get("client_secret"), method: "client_secret_post"}, nil
	}
	return clientCredentials{id: form.Get("client_id"), method: "none"}, nil
}

// authenticateClient checks credentials: confidential clients must present
// their secret; public clients present none (and rely on PKCE).
func (i *Issuer) authenticateClient(snap *directory.Snapshot, cr clientCredentials) (*identity.Client, *OAuthError) {
	if cr.id == "" {
		return nil, &OAuthError{Code: ErrInvalidClient, Description: "client authentication is required"}
	}
	c := snap.Client(cr.id)
	if c == nil {
		return nil, &OAuthError{Code: ErrInvalidClient, Description: "unknown client or wrong secret"}
	}
	if c.IsPublic() {
		if cr.secret != "" {
			return nil, &OAuthError{Code: ErrInvalidClient, Description: "a public client has no secret"}
		}
		return c, nil
	}
	if cr.secret == "" || !c.SecretMatches(cr.secret) {
		return nil, &OAuthError{Code: ErrInvalidClient, Description: "unknown client or wrong secret"}
	}
	return c, nil
}

// tokenRequest reads a revocation or introspection request (RFC 7009,
// RFC 7662): a POSTed form from an authenticated client with exactly one
// token parameter. A failed client authentication is audited as event ev;
// publicRefusal, when not empty, refuses public clients with that
// description. On any problem the OAuth error has been written and ok is
// false.
func (i *Issuer) tokenRequest(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot, ev, publicRefusal string) (client *identity.Client, tok string, ok bool) {
	if r.Method != http.MethodPost {
		i.writeOAuthError(w, &OAuthError{Code: ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed})
		return nil, "", false
	}
	form, err := readForm(w, r)
	if err != nil {
		i.writeOAuthError(w, oauthErr(ErrInvalidRequest, err.Error()))
		return nil, "", false
	}
	cr, oe := credentialsFrom(r, form)
	if oe != nil {
		i.writeOAuthError(w, oe)
		return nil, "", false
	}
	client, oe = i.authenticateClient(snap, cr)
	if oe == nil && publicRefusal != "" && client.IsPublic() {
		oe = &OAuthError{Code: ErrInvalidClient, Description: publicRefusal}
	}
	if oe != nil {
		i.auditEntry(ev, outcomeDenied, "client authentication failed", cr.id, "")
		i.writeOAuthError(w, oe)
		return nil, "", false
	}
	tok = form.Get("token")
	if tok == "" || len(form["token"]) > 1 {
		i.writeOAuthError(w, oauthErr(ErrInvalidRequest, "token is missing or repeated"))
		return nil, "", false
	}
	return client, tok, true
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	if i.cors(w, r, snap, "POST") {
		return
	}
	if r.Method != http.MethodPost {
		i.tokenFailed(w, "", &OAuthError{Code: ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed})
		return
	}
	form, err := readForm(w, r)
	if err != nil {
		i.tokenFailed(w, "", oauthErr(ErrInvalidRequest, err.Error()))
		return
	}
	cr, oe := credentialsFrom(r, form)
	if oe != nil {
		i.tokenFailed(w, cr.id, oe)
		return
	}
	m, oe := i.exchange(r.Context(), snap, form, cr)
	if oe != nil {
		i.tokenFailed(w, cr.id, oe)
		return
	}
	noStore(w.Header())
	writeJSON(w, m.resp)
}

// tokenFailed writes a token endpoint error and counts it. Errors worth an
// audit entry have been audited where they were decided.
func (i *Issuer) tokenFailed(w http.ResponseWriter, clientID string, e *OAuthError) {
	i.metrics.tokenError(i.name, e.Code)
	i.writeOAuthError(w, e)
}

// tokenParams may appear at most once (RFC 6749 3.2); resource may repeat
// (RFC 8707).
var tokenParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"}

// exchange authenticates the client once and dispatches to the grant.
func (i *Issuer) exchange(ctx context.Context, snap *directory.Snapshot, form url.Values, cr clientCredentials) (minted, *OAuthError) {
	if oe := checkTokenParams(form); oe != nil {
		return minted{}, oe
	}
	client, oe := i.authenticateClient(snap, cr)
	if oe != nil {
		i.auditEntry(evToken, outcomeDenied, "client authentication failed: "+oe.Description, cr.id, "")
		return minted{}, oe
	}
	return i.grant(ctx, snap, client, form)
}

// checkTokenParams refuses a token request without a grant type or with a
// parameter repeated.
func checkTokenParams(form url.Values) *OAuthError {
	for _, k := range tokenParams {
		if len(form[k]) > 1 {
			return oauthErr(ErrInvalidRequest, k+" is repeated")
		}
	}
	if form.Get("grant_type") == "" {
		return oauthErr(ErrInvalidRequest, "grant_type is missing")
	}
	return nil
}

// grant runs the form's grant for an authenticated (or trusted) client.
func (i *Issuer) grant(ctx context.Context, snap *directory.Snapshot, client *identity.Client, form url.Values) (minted, *OAuthError) {
	grant := form.Get("grant_type")
	switch grant {
	case identity.GrantAuthorizationCode, identity.GrantRefreshToken, identity.GrantClientCredentials:
	default:
		return minted{}, oauthErr(ErrUnsupportedGrantType, "supported grant types: authorization_code, refresh_token, client_credentials")
	}
	if !client.HasGrant(grant) {
		i.auditEntry(evToken, outcomeDenied, "grant "+grant+" not allowed for client", client.ID, "")
		return minted{}, oauthErr(ErrUnauthorizedClient, "the client may not use "+grant)
	}
	switch grant {
	case identity.GrantAuthorizationCode:
		return i.grantAuthorizationCode(ctx, snap, client, form)
	case identity.GrantRefreshToken:
		return i.grantRefreshToken(ctx, snap, client, form)
	default:
		return i.grantClientCredentials(snap, client, form)
	}
}

// requestedResources validates RFC 8707 resource parameters against the
// audiences allowed (nil allowed: the client's audiences).
func requestedResources(form url.Values, allowed []string) ([]string, *OAuthError) {
	res := form["resource"]
	if len(res) > maxResources {
		return nil, oauthErr(ErrInvalidTarget, "too many resource parameters")
	}
	for _, r := range res {
		if !contains(allowed, r) {
			return nil, oauthErr(ErrInvalidTarget, "resource is not one of the client's audiences")
		}
	}
	return res, nil
}

// grantedAudience is the audience of a token issued from an earlier grant
// (an authorization code or a refresh token) whose audience was granted:
// the requested RFC 8707 resources, which must lie within granted (within
// the client's audiences when granted is empty), or else granted itself.
func (i *Issuer) grantedAudience(client *identity.Client, form url.Values, granted []string) ([]string, *OAuthError) {
	allowed := granted
	if len(allowed) == 0 {
		allowed = client.Audiences
	}
	res, oe := requestedResources(form, allowed)
	if oe != nil {
		return nil, oe
	}
	if len(res) == 0 {
		res = granted
	}
	return audienceFor(client, res), nil
}

// narrowScopes returns the requested scopes when every one is in granted,
// or granted itself when none were requested.
func narrowScopes(requested string, granted []string) ([]string, *OAuthError) {
	if len(requested) > maxScopeLen {
		return nil, oauthErr(ErrInvalidScope, "scope is too long")
	}
	fields := strings.Fields(requested)
	if len(fields) == 0 {
		return granted, nil
	}
	out := make([]string, 0, len(fields))
	for _, s := range fields {
		if !contains(granted, s) {
			return nil, oauthErr(ErrInvalidScope, "scope exceeds what was granted")
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
