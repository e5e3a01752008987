package issuer

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
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
// everything else is {"active": false}. When the store cannot answer, the
// answer is 503 with Retry-After, never "inactive".
func (i *Issuer) serveIntrospect(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	client, tok, ok := i.tokenRequest(w, r, snap, evIntrospect, "introspection requires a confidential client")
	if !ok {
		return
	}
	ctx := r.Context()
	now := i.now()
	out := introspection{}
	fail := func(op string, err error) {
		i.storeError(op, err)
		i.writeOAuthError(w, unavailable("the token could not be checked now; try again"))
	}
	if strings.Count(tok, ".") == 2 {
		c, err := i.verifyOwn(ctx, tok, typAccessToken, false)
		if errors.Is(err, errKeysUnavailable) {
			fail("keys", err)
			return
		}
		if err == nil {
			aud := c.Audience
			if c.ClientID == client.ID || contains(aud, client.ID) {
				revoked, err := i.accessTokenRevoked(ctx, c.JTI)
				if err != nil {
					fail("revoked", err)
					return
				}
				if !revoked {
					out = introspection{Active: true, Scope: strings.Join(c.Scopes, " "), ClientID: c.ClientID, Sub: c.Subject, Aud: aud,
						Iss: c.Issuer, Exp: c.Expiry.Unix(), Iat: unixOrZero(c.IssuedAt), Jti: c.JTI, TokenType: "Bearer"}
				}
			}
		}
	} else if len(tok) <= 512 {
		rt, err := i.st.RefreshToken(ctx, store.HashID(tok), now)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			fail("refresh_token", err)
			return
		case rt.RotatedAt.IsZero() && rt.ClientID == client.ID && rt.Domain == i.name:
			out = introspection{Active: true, Scope: strings.Join(rt.Scopes, " "), ClientID: rt.ClientID, Sub: rt.Subject,
				Iss: i.issuer, Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), TokenType: "refresh_token"}
		}
	}
	noStore(w.Header())
	writeJSON(w, out)
}

// unixOrZero is t as a NumericDate, 0 (omitted) for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
