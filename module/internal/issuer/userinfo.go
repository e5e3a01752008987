package issuer

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
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
func (i *Issuer) serveUserinfo(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	if i.cors(w, r, snap, "GET, POST") {
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
	revoked, err := i.accessTokenRevoked(ctx, c.JTI)
	if err != nil {
		i.storeError("revoked", err)
		writeBearerError(w, http.StatusServiceUnavailable, ErrTemporarilyUnavailable, "the token could not be checked now; try again")
		return
	}
	if revoked {
		writeBearerError(w, http.StatusUnauthorized, ErrInvalidToken, "token is revoked")
		return
	}
	scopes := c.Scopes
	if !contains(scopes, "openid") {
		writeBearerError(w, http.StatusForbidden, "insufficient_scope", "the openid scope is required")
		return
	}
	u, err := i.dir.UserBySubject(ctx, i.name, c.Subject)
	switch {
	case errors.Is(err, directory.ErrNotFound) || err == nil && !u.Active:
		writeBearerError(w, http.StatusUnauthorized, ErrInvalidToken, "the user is no longer active")
		return
	case err != nil:
		i.directoryError("user_by_subject", err)
		writeBearerError(w, http.StatusServiceUnavailable, ErrTemporarilyUnavailable, "the user could not be read now; try again")
		return
	}
	idClaims, _, err := i.customClaims(snap, u)
	if err != nil {
		writeBearerError(w, http.StatusInternalServerError, "server_error", "could not map the user's claims")
		return
	}
	payload, err := marshalClaims(struct {
		Sub string `json:"sub"`
		userClaims
	}{u.Subject, profileClaims(u, scopes)}, idClaims)
	if err != nil {
		writeBearerError(w, http.StatusInternalServerError, "server_error", "could not encode claims")
		return
	}
	noStore(w.Header())
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(payload)
}
