package issuer

import (
	"context"
	"errors"
	"net/url"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// grantRefreshToken rotates a refresh token (RFC 6749 6; OAuth 2.0 Security
// BCP 4.14): every use returns a new refresh token; presenting a rotated one
// again after the grace window revokes the whole family.
func (i *Issuer) grantRefreshToken(ctx context.Context, snap *directory.Snapshot, client *identity.Client, form url.Values) (minted, *OAuthError) {
	tok := form.Get("refresh_token")
	if tok == "" || len(tok) > 512 {
		return minted{}, oauthErr(ErrInvalidRequest, "refresh_token is missing")
	}
	id := store.HashID(tok)
	now := i.now()
	old, err := i.st.RefreshToken(ctx, id, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		i.auditEntry(evToken, outcomeDenied, "unknown, expired or revoked refresh token", client.ID, "")
		return minted{}, oauthErr(ErrInvalidGrant, "the refresh token is invalid, expired or revoked")
	case err != nil:
		i.storeError("refresh_token", err)
		return minted{}, unavailable("the refresh token could not be checked now; try again")
	}
	revokeFamily := func(reason, desc string) (minted, *OAuthError) {
		if err := i.revokeFamilyByOwner(ctx, snap, old.FamilyID, old.ClientID, client, now); err != nil {
			i.auditEntry(evRevoke, outcomeFailed, reason+"; revoking the token family failed", client.ID, old.Subject)
			return minted{}, unavailable("the refresh token is refused; revoking its token family failed, try again")
		}
		i.auditEntry(evRevoke, outcomeDenied, reason+"; token family revoked", client.ID, old.Subject)
		return minted{}, oauthErr(ErrInvalidGrant, desc)
	}
	if old.Domain != i.name {
		return minted{}, oauthErr(ErrInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	if old.ClientID != client.ID {
		return revokeFamily("refresh token presented by another client", "the refresh token was issued to another client")
	}
	reuse := func(rt store.RefreshToken) (minted, *OAuthError) {
		if now.Sub(rt.RotatedAt) <= i.cfg.RefreshReuseGrace {
			i.auditEntry(evToken, outcomeDenied, "rotated refresh token reused within the grace window", client.ID, rt.Subject)
			return minted{}, oauthErr(ErrInvalidGrant, "the refresh token was already used")
		}
		return revokeFamily("rotated refresh token reused", "the refresh token was already used; its token family is revoked")
	}
	if !old.RotatedAt.IsZero() {
		return reuse(old)
	}
	scopes, oe := narrowScopes(form.Get("scope"), old.Scopes)
	if oe != nil {
		return minted{}, oe
	}
	audience, oe := i.grantedAudience(client, form, old.Audience)
	if oe != nil {
		return minted{}, oe
	}
	user, err := i.dir.UserBySubject(ctx, i.name, old.Subject)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return revokeFamily("user missing or disabled", "the user is no longer active")
	case err != nil:
		// Unknown is not missing: nothing is revoked, the client retries.
		i.directoryError("user_by_subject", err)
		return minted{}, unavailable("the user could not be read now; try again")
	case !user.Active:
		return revokeFamily("user missing or disabled", "the user is no longer active")
	}
	if len(client.Policies) > 0 {
		claims, err := i.policyClaims(snap, user, client, old.Scopes, old.Audience, store.Session{AuthTime: old.AuthTime})
		if err != nil {
			return minted{}, oauthErr(ErrServerError, "the user's claims could not be mapped")
		}
		if ok, why := i.policyCheck(snap.Policies, claims, client.Policies); !ok {
			i.auditEntry(evPolicy, outcomeDenied, why, client.ID, user.Subject)
			return revokeFamily("policy no longer satisfied", "access denied by policy")
		}
	}
	next := randomString(32)
	_, err = i.st.RotateRefreshToken(ctx, id, now, store.RefreshToken{
		ID:        store.HashID(next),
		FamilyID:  old.FamilyID,
		Domain:    i.name,
		ClientID:  client.ID,
		Subject:   old.Subject,
		Scopes:    old.Scopes,
		Audience:  old.Audience,
		AuthTime:  old.AuthTime,
		SessionID: old.SessionID,
		CreatedAt: now,
		ExpiresAt: now.Add(client.RefreshLifetime()),
	})
	if err != nil {
		var rt store.RefreshToken
		switch {
		case errors.Is(err, store.ErrAlreadyUsed):
			// Lost a race with another use of the same token; the winner's
			// RotatedAt decides the grace window.
			rt = old
			if got, err := i.st.RefreshToken(ctx, id, now); err == nil && !got.RotatedAt.IsZero() {
				rt = got
			} else {
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					i.storeError("refresh_token", err)
				}
				rt.RotatedAt = now // within the grace window: refused, nothing revoked
			}
			return reuse(rt)
		case errors.Is(err, store.ErrNotFound):
			return minted{}, oauthErr(ErrInvalidGrant, "the refresh token is invalid, expired or revoked")
		}
		i.storeError("rotate_refresh_token", err)
		return minted{}, unavailable("the refresh token could not be rotated now; try again")
	}
	return i.mint(snap, issue{
		grant:     identity.GrantRefreshToken,
		client:    client,
		user:      user,
		subject:   user.Subject,
		scopes:    scopes,
		audience:  audience,
		authTime:  old.AuthTime,
		familyID:  old.FamilyID,
		sessionID: old.SessionID,
		idToken:   contains(old.Scopes, "openid"),
		refresh:   next,
	})
}
