package issuer

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// bearerToken returns the token of an Authorization: Bearer header (scheme
// case-insensitive, RFC 9110); never from the query string.
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// serveUserinfo answers GET and POST with the claims of the access token's
// user, released by the token's scopes (OIDC Core 5.3).
func (i *Issuer) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	if i.cors(w, r, "GET, POST") {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeBearerError(w, http.StatusMethodNotAllowed, ErrInvalidRequest, "use GET or POST")
		return
	}
	tok := bearerToken(r)
	if tok == "" {
		writeBearerError(w, http.StatusUnauthorized, "", "")
		return
	}
	ctx := r.Context()
	c, err := i.verifyOwn(ctx, tok, typAccessToken, false)
	if errors.Is(err, errKeysUnavailable) {
		writeBearerError(w, http.StatusServiceUnavailable, ErrTemporarilyUnavailable, "the token could not be checked now; try again")
		return
	}
	if err != nil {
		writeBearerError(w, http.StatusUnauthorized, ErrInvalidToken, err.Error())
		return
	}
	revoked, err := i.accessTokenRevoked(ctx, c.Jti)
	if err != nil {
		i.storeError("revoked", err)
		writeBearerError(w, http.StatusServiceUnavailable, ErrTemporarilyUnavailable, "the token could not be checked now; try again")
		return
	}
	if revoked {
		writeBearerError(w, http.StatusUnauthorized, ErrInvalidToken, "token is revoked")
		return
	}
	scopes := strings.Fields(c.Scope)
	if !contains(scopes, "openid") {
		writeBearerError(w, http.StatusForbidden, "insufficient_scope", "the openid scope is required")
		return
	}
	u := i.domain.UserBySubject(c.Sub)
	if u == nil || !u.Active {
		writeBearerError(w, http.StatusUnauthorized, ErrInvalidToken, "the user is no longer active")
		return
	}
	payload, err := marshalClaims(struct {
		Sub string `json:"sub"`
		userClaims
	}{u.Subject, profileClaims(u, scopes)}, customClaims(u, identity.ClaimIdentity))
	if err != nil {
		writeBearerError(w, http.StatusInternalServerError, "server_error", "could not encode claims")
		return
	}
	noStore(w.Header())
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(payload)
}
