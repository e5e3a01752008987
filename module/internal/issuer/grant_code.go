package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// grantAuthorizationCode redeems a code (RFC 6749 4.1.3, RFC 7636 4.6).
func (i *Issuer) grantAuthorizationCode(ctx context.Context, snap *directory.Snapshot, client *identity.Client, form url.Values) (minted, *OAuthError) {
	code := form.Get("code")
	if code == "" || len(code) > 512 {
		return minted{}, oauthErr(ErrInvalidRequest, "code is missing")
	}
	now := i.now()
	rec, err := i.st.ConsumeAuthCode(ctx, store.HashID(code), now)
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		// A replayed code means it leaked: revoke everything issued from it.
		if err := i.revokeFamilyByOwner(ctx, snap, rec.FamilyID, rec.ClientID, client, now); err != nil {
			// Not revoked: say so, and let the next attempt try again.
			i.auditEntry(evRevoke, outcomeFailed, "authorization code replayed; revoking its token family failed", client.ID, rec.Subject)
			return minted{}, unavailable("the code was already used; revoking the tokens issued from it failed, try again")
		}
		i.auditEntry(evRevoke, outcomeDenied, "authorization code replayed; its token family is revoked", client.ID, rec.Subject)
		return minted{}, oauthErr(ErrInvalidGrant, "the code was already used; the tokens issued from it are revoked")
	case errors.Is(err, store.ErrNotFound):
		i.auditEntry(evToken, outcomeDenied, "unknown or expired code", client.ID, "")
		return minted{}, oauthErr(ErrInvalidGrant, "the code is invalid or expired")
	case err != nil:
		i.storeError("consume_auth_code", err)
		return minted{}, unavailable("the code could not be checked now; try again")
	}
	deny := func(reason, desc string) (minted, *OAuthError) {
		i.auditEntry(evToken, outcomeDenied, reason, client.ID, rec.Subject)
		return minted{}, oauthErr(ErrInvalidGrant, desc)
	}
	if rec.Domain != i.name || !now.Before(rec.ExpiresAt) {
		return deny("expired code", "the code is invalid or expired")
	}
	if rec.ClientID != client.ID {
		return deny("code issued to another client", "the code was issued to another client")
	}
	ru, given := form.Get("redirect_uri"), form.Has("redirect_uri")
	if rec.RedirectURI != "" && ru != rec.RedirectURI {
		return deny("redirect_uri mismatch", "redirect_uri does not match the authorization request")
	}
	if rec.RedirectURI == "" && given && !client.HasRedirectURI(ru) {
		return deny("redirect_uri mismatch", "redirect_uri is not registered for this client")
	}
	verifier := form.Get("code_verifier")
	if rec.CodeChallenge == "" {
		if verifier != "" {
			return deny("code_verifier without code_challenge", "code_verifier sent but the authorization request had no code_challenge")
		}
	} else if !verifyPKCE(rec.CodeChallenge, rec.CodeChallengeMethod, verifier) {
		if verifier == "" {
			return deny("missing code_verifier", "code_verifier is missing")
		}
		return deny("wrong code_verifier", "code_verifier does not match the code_challenge")
	}
	user, err := i.dir.UserBySubject(ctx, i.name, rec.Subject)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return deny("user missing or disabled", "the user is no longer active")
	case err != nil:
		i.directoryError("user_by_subject", err)
		return minted{}, unavailable("the user could not be read now; try again")
	case !user.Active:
		return deny("user missing or disabled", "the user is no longer active")
	}
	// The session that approved the code may have ended since (logout
	// revokes the families of its grants): nothing is issued into a revoked
	// family.
	switch revoked, err := i.st.Revoked(ctx, rec.FamilyID); {
	case err != nil:
		i.storeError("revoked", err)
		return minted{}, unavailable("the code could not be checked now; try again")
	case revoked:
		return deny("the session that approved the code has ended", "the code is invalid or expired")
	}
	audience, oe := i.grantedAudience(client, form, rec.Audience)
	if oe != nil {
		return minted{}, oe
	}
	is := issue{
		amr:       i.sessionAMR(ctx, rec.SessionID, now),
		grant:     identity.GrantAuthorizationCode,
		client:    client,
		user:      user,
		subject:   user.Subject,
		scopes:    rec.Scopes,
		audience:  audience,
		authTime:  rec.AuthTime,
		nonce:     rec.Nonce,
		familyID:  rec.FamilyID,
		sessionID: rec.SessionID,
		idToken:   contains(rec.Scopes, "openid"),
	}
	if client.HasGrant(identity.GrantRefreshToken) {
		tok := randomString(32)
		err := i.st.CreateRefreshToken(ctx, store.RefreshToken{
			ID:        store.HashID(tok),
			FamilyID:  rec.FamilyID,
			Domain:    i.name,
			ClientID:  client.ID,
			Subject:   user.Subject,
			Scopes:    rec.Scopes,
			Audience:  rec.Audience,
			AuthTime:  rec.AuthTime,
			SessionID: rec.SessionID,
			CreatedAt: now,
			ExpiresAt: now.Add(client.RefreshLifetime()),
		})
		if err != nil {
			i.storeError("create_refresh_token", err)
			return minted{}, unavailable("the refresh token could not be stored; try again")
		}
		is.refresh = tok
	}
	return i.mint(snap, is)
}

// verifyPKCE checks a code_verifier (RFC 7636 4.1: 43-128 unreserved
// characters) against the stored challenge in constant time.
func verifyPKCE(challenge, method, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || !isPKCEChars(verifier) {
		return false
	}
	var got string
	switch method {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		got = base64.RawURLEncoding.EncodeToString(sum[:])
	case "plain":
		got = verifier
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// revokeFamilyByOwner revokes a token family for as long as any token of it
// may live, going by the lifetimes of its owner (the client ownerID), or of
// presenter when the owner is no longer configured. A store failure is
// logged by revoke and returned: the caller must not report the family
// revoked.
func (i *Issuer) revokeFamilyByOwner(ctx context.Context, snap *directory.Snapshot, familyID, ownerID string, presenter *identity.Client, now time.Time) error {
	owner := snap.Client(ownerID)
	if owner == nil {
		owner = presenter
	}
	return i.revoke(ctx, revocation.ID(familyID), now.Add(familyLifetime(owner)))
}

// familyLifetime is how long a revoked family must stay revoked: as long as
// any token of it may live.
func familyLifetime(c *identity.Client) (d time.Duration) {
	d = c.RefreshLifetime()
	if a := c.AccessLifetime(); a > d {
		d = a
	}
	return d
}

// sessionAMR are the factors of the sign-in that started the SSO session
// sessionID (the ID token's amr), or nil when the session is gone.
func (i *Issuer) sessionAMR(ctx context.Context, sessionID string, now time.Time) []string {
	if sessionID == "" {
		return nil
	}
	sess, err := i.st.Session(ctx, sessionID, now)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			i.storeError("session", err)
		}
		return nil
	}
	return sess.AMR
}
