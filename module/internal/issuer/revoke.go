package issuer

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// serveRevoke implements RFC 7009. The client authenticates (public
// clients by client_id); a token that is unknown, invalid or not the
// client's is answered 200 like a revoked one, so the endpoint reveals
// nothing. Revoking a refresh token revokes its whole family, including the
// access tokens issued with it.
func (i *Issuer) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if i.cors(w, r, "POST") {
		return
	}
	client, tok, ok := i.tokenRequest(w, r, evRevoke, "")
	if !ok {
		return
	}
	ctx := r.Context()
	now := i.now()
	outcome, reason, sub := outcomeOK, "not a token of this client", ""
	if strings.Count(tok, ".") == 2 {
		if c, err := i.verifyOwn(ctx, tok, typAccessToken, true); err == nil && c.ClientID == client.ID {
			until := time.Unix(c.Exp, 0)
			if until.After(now) {
				if err := i.revoke(ctx, c.Jti, until); err != nil {
					i.writeOAuthError(w, oauthErr(ErrServerError, "the token could not be revoked"))
					return
				}
			}
			reason, sub = "access token revoked", c.Sub
		}
	} else if len(tok) <= 512 {
		if rt, err := i.st.RefreshToken(ctx, store.HashID(tok), now); err == nil && rt.ClientID == client.ID && rt.Domain == i.domain.Name {
			if err := i.revoke(ctx, rt.FamilyID, now.Add(familyLifetime(client))); err != nil {
				i.writeOAuthError(w, oauthErr(ErrServerError, "the token could not be revoked"))
				return
			}
			reason, sub = "refresh token family revoked", rt.Subject
		}
	}
	i.auditEntry(evRevoke, outcome, reason, client.ID, sub)
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}
