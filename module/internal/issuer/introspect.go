package issuer

import (
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// introspection is an RFC 7662 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
}

// serveIntrospect implements RFC 7662 for confidential clients. A client
// learns about an access token only when it is the token's client or one of
// its audiences, and about a refresh token only when it is its own;
// everything else is {"active": false}.
func (i *Issuer) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	client, tok, ok := i.tokenRequest(w, r, evIntrospect, "introspection requires a confidential client")
	if !ok {
		return
	}
	ctx := r.Context()
	now := i.now()
	out := introspection{}
	if strings.Count(tok, ".") == 2 {
		if c, err := i.verifyOwn(ctx, tok, typAccessToken, false); err == nil {
			aud := c.audiences()
			if c.ClientID == client.ID || contains(aud, client.ID) {
				revoked, err := i.accessTokenRevoked(ctx, c.Jti)
				if err != nil {
					i.storeError("revoked", err)
					i.writeOAuthError(w, oauthErr(ErrServerError, "the token could not be checked"))
					return
				}
				if !revoked {
					out = introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, Sub: c.Sub, Aud: aud,
						Iss: c.Iss, Exp: c.Exp, Iat: c.Iat, Jti: c.Jti, TokenType: "Bearer"}
				}
			}
		}
	} else if len(tok) <= 512 {
		if rt, err := i.st.RefreshToken(ctx, store.HashID(tok), now); err == nil && rt.RotatedAt.IsZero() &&
			rt.ClientID == client.ID && rt.Domain == i.domain.Name {
			out = introspection{Active: true, Scope: strings.Join(rt.Scopes, " "), ClientID: rt.ClientID, Sub: rt.Subject,
				Iss: i.issuer, Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), TokenType: "refresh_token"}
		}
	}
	noStore(w.Header())
	writeJSON(w, out)
}
