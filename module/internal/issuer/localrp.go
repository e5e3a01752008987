package issuer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// LocalRP is a relying party that runs in the issuer's own process: the
// embedded gate. The browser still goes through the authorization endpoint
// (and signs in there), but the code is redeemed, and tokens refreshed and
// revoked, through the token endpoint's code path without HTTP and without
// a client secret: a caller in this process is trusted as the client it
// names (it has the configuration anyway), so client secrets need never be
// kept in a form that could be presented. The client must still exist and be
// allowed the grant, every other check of the token endpoint applies, and
// the claims it minted are returned as they were signed — no token is
// decoded.
type LocalRP struct {
	iss      *Issuer
	clientID string
}

// RelyingParty returns the in-process relying party for clientID, a client
// of the issuer's domain (it is looked up again on every call: a client
// removed later fails its calls).
func (i *Issuer) RelyingParty(clientID string) (*LocalRP, error) {
	snap, err := i.snapshot(context.Background())
	if err != nil {
		return nil, err
	}
	if snap.Client(clientID) == nil {
		return nil, fmt.Errorf("client %q is not registered in the domain", clientID)
	}
	return &LocalRP{iss: i, clientID: clientID}, nil
}

// LocalTokens are the tokens of a code redemption or a refresh, with what
// they say.
type LocalTokens struct {
	AccessToken  string
	RefreshToken string // "" when the client has no refresh_token grant
	IDToken      string // "" without the openid scope
	// Expiry is when the access token expires.
	Expiry time.Time
	// AccessTokenID is the access token's jti.
	AccessTokenID string
	// Claims are the ID token's claims plus those of the access token that
	// describe the user (custom access claims, scope, client_id, ...), the
	// ID token winning. Nil without an ID token.
	Claims map[string]any
	// Subject, Issuer and Nonce are the ID token's sub, iss and nonce ("" without one).
	Subject, Issuer, Nonce string
}

// ClientID is the client the relying party acts as.
func (rp *LocalRP) ClientID() string { return rp.clientID }

// Issuer is the issuer identifier.
func (rp *LocalRP) Issuer() string { return rp.iss.issuer }

// Scopes are the client's registered scopes, as the domain's current
// snapshot has them.
func (rp *LocalRP) Scopes(ctx context.Context) ([]string, error) {
	c, err := rp.client(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(c.Scopes), nil
}

// AuthCodeURL is the authorization request the browser is sent to: the
// code flow with PKCE (S256) for these scopes, with prompt when not empty.
func (rp *LocalRP) AuthCodeURL(scopes []string, state, nonce, codeChallenge, redirectURI, prompt string) string {
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {rp.clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {codeChallenge},
		"code_challenge_method": {"S256"},
	}
	if prompt != "" {
		v.Set("prompt", prompt)
	}
	return rp.iss.AuthorizationURL() + "?" + v.Encode()
}

// Exchange redeems an authorization code with its PKCE verifier. A refused
// request is an *OAuthError.
func (rp *LocalRP) Exchange(ctx context.Context, code, verifier, redirectURI string) (*LocalTokens, error) {
	return rp.token(ctx, url.Values{
		"grant_type":    {identity.GrantAuthorizationCode},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {redirectURI},
	})
}

// Refresh redeems (and rotates) a refresh token. A refused request is an
// *OAuthError.
func (rp *LocalRP) Refresh(ctx context.Context, refreshToken string) (*LocalTokens, error) {
	return rp.token(ctx, url.Values{"grant_type": {identity.GrantRefreshToken}, "refresh_token": {refreshToken}})
}

// Revoke revokes a token of the client (RFC 7009 semantics: a token that
// is unknown or another client's is not an error). A revoked refresh token
// revokes its whole family, its access tokens included. An error means
// nothing was revoked.
func (rp *LocalRP) Revoke(ctx context.Context, token string) error {
	i := rp.iss
	c, err := rp.client(ctx)
	if err != nil {
		i.auditEntry(evRevoke, outcomeDenied, "in-process client unknown: "+err.Error(), rp.clientID, "")
		return err
	}
	reason, sub, err := i.revokeToken(ctx, c, token)
	if err != nil {
		return err
	}
	i.auditEntry(evRevoke, outcomeOK, reason, c.ID, sub)
	return nil
}

// EndSessionURL is the issuer's logout URL for subject, who asked this
// relying party to sign out (see Issuer.EndSessionURLFor).
func (rp *LocalRP) EndSessionURL(subject, postLogoutRedirectURI, state string) string {
	return rp.iss.EndSessionURLFor(rp.clientID, subject, postLogoutRedirectURI, state)
}

// client returns the relying party's client from the current snapshot.
func (rp *LocalRP) client(ctx context.Context) (*identity.Client, error) {
	snap, err := rp.iss.snapshot(ctx)
	if err != nil {
		return nil, unavailable("the issuer's directory could not be read; try again")
	}
	c := snap.Client(rp.clientID)
	if c == nil {
		return nil, &OAuthError{Code: ErrInvalidClient, Description: "the client is no longer registered"}
	}
	return c, nil
}

// token runs a grant for the trusted client.
func (rp *LocalRP) token(ctx context.Context, form url.Values) (*LocalTokens, error) {
	i := rp.iss
	fail := func(oe *OAuthError) (*LocalTokens, error) {
		i.metrics.tokenError(i.name, oe.Code)
		return nil, oe
	}
	snap, err := i.snapshot(ctx)
	if err != nil {
		return fail(unavailable("the issuer's directory could not be read; try again"))
	}
	c := snap.Client(rp.clientID)
	if c == nil {
		i.auditEntry(evToken, outcomeDenied, "in-process client no longer registered", rp.clientID, "")
		return fail(&OAuthError{Code: ErrInvalidClient, Description: "the client is no longer registered"})
	}
	m, oe := i.grant(ctx, snap, c, form)
	if oe != nil {
		return fail(oe)
	}
	t := &LocalTokens{
		AccessToken:  m.resp.AccessToken,
		RefreshToken: m.resp.RefreshToken,
		IDToken:      m.resp.IDToken,
		Expiry:       i.now().Add(time.Duration(m.resp.ExpiresIn) * time.Second),
	}
	var at map[string]any
	if err := json.Unmarshal(m.access, &at); err != nil {
		return fail(oauthErr(ErrServerError, "could not read the minted claims"))
	}
	t.AccessTokenID, _ = at["jti"].(string)
	if m.id == nil {
		return t, nil
	}
	if err := json.Unmarshal(m.id, &t.Claims); err != nil {
		return fail(oauthErr(ErrServerError, "could not read the minted claims"))
	}
	t.Subject, _ = t.Claims["sub"].(string)
	t.Issuer, _ = t.Claims["iss"].(string)
	t.Nonce, _ = t.Claims["nonce"].(string)
	for k, v := range at {
		if _, dup := t.Claims[k]; !dup && !tokenOnlyClaims[k] {
			t.Claims[k] = v
		}
	}
	return t, nil
}

// tokenOnlyClaims describe a token rather than its user; they are not
// merged from the access token into LocalTokens.Claims.
var tokenOnlyClaims = map[string]bool{"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"azp": true, "at_hash": true, "nonce": true, "auth_time": true, "typ": true}
