package issuer

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// serveRevoke implements RFC 7009. The client authenticates (public
// clients by client_id); a token that is unknown, invalid or not the
// client's is answered 200 like a revoked one, so the endpoint reveals
// nothing. Revoking a refresh token revokes its whole family, including the
// access tokens issued with it. When the store cannot be read or written the
// answer is 503 with Retry-After (RFC 7009 2.2.1): nothing was revoked, and
// the client should try again.
func (i *Issuer) serveRevoke(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	if i.cors(w, r, snap, "POST") {
		return
	}
	client, tok, ok := i.tokenRequest(w, r, snap, evRevoke, "")
	if !ok {
		return
	}
	reason, sub, err := i.revokeToken(r.Context(), client, tok)
	if err != nil {
		i.auditEntry(evRevoke, outcomeFailed, "store unavailable; nothing revoked", client.ID, "")
		i.writeOAuthError(w, unavailable("the token could not be revoked now; nothing was revoked, try again"))
		return
	}
	i.auditEntry(evRevoke, outcomeOK, reason, client.ID, sub)
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}

// revokeToken revokes tok if it is an access token or a refresh token of
// client; it returns what happened for the audit log. An error means the
// store (or the key set) could not answer: nothing was revoked, and the
// token must not be taken for an unknown one.
func (i *Issuer) revokeToken(ctx context.Context, client *identity.Client, tok string) (reason, sub string, err error) {
	now := i.now()
	reason = "not a token of this client"
	if strings.Count(tok, ".") == 2 {
		c, err := i.verifyOwn(ctx, tok, typAccessToken, true)
		if errors.Is(err, errKeysUnavailable) {
			return "", "", err
		}
		if err == nil && c.ClientID == client.ID {
			if until := c.Expiry; until.After(now) {
				if err := i.revoke(ctx, revocation.ID(c.JTI), until); err != nil {
					return "", "", err
				}
			}
			reason, sub = "access token revoked", c.Subject
		}
	} else if len(tok) <= 512 {
		rt, err := i.st.RefreshToken(ctx, store.HashID(tok), now)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			i.storeError("refresh_token", err)
			return "", "", err
		case rt.ClientID == client.ID && rt.Domain == i.name:
			if err := i.revoke(ctx, revocation.ID(rt.FamilyID), now.Add(familyLifetime(client))); err != nil {
				return "", "", err
			}
			reason, sub = "refresh token family revoked", rt.Subject
		}
	}
	return reason, sub, nil
}
