package rp

import (
	"context"
	"time"
)

// Provider is the OpenID provider the gate logs users in with: an external
// provider (OIDCProvider) or the embedded issuer called in-process.
//
// Implementations verify every ID token they return (signature, iss, aud,
// exp) and report its nonce claim in Tokens.Nonce; Flow compares it with the
// nonce it sent.
type Provider interface {
	// AuthCodeURL returns the authorization endpoint URL for a code flow
	// request with these parameters (response_type=code, the configured
	// client_id and scopes, code_challenge_method=S256). A non-empty prompt
	// is sent as the OpenID Connect prompt parameter ("login": ask for the
	// user's credentials even when the provider has a session).
	AuthCodeURL(state, nonce, codeChallenge, redirectURI, prompt string) string
	// Exchange redeems an authorization code with its PKCE verifier. The
	// returned Tokens must carry a verified ID token.
	Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (*Tokens, error)
	// Refresh redeems a refresh token. RefreshToken in the result is the
	// rotated token, or the one given when the provider did not rotate it.
	// IDToken, Claims, Subject and Issuer are empty when the provider
	// returned no ID token.
	Refresh(ctx context.Context, refreshToken string) (*Tokens, error)
	// EndSessionURL returns the provider's RP-initiated logout URL, or ""
	// when the provider does not support it.
	EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) string
}

// Revoker is implemented by providers that can revoke a refresh token
// (RFC 7009): the gate revokes the session's refresh token at logout, so a
// copy of the session cookie cannot renew itself afterwards.
type Revoker interface {
	// Revoke revokes refreshToken (and, at providers that tie them
	// together, the access tokens issued with it).
	Revoke(ctx context.Context, refreshToken string) error
}

// Tokens is the result of a code exchange or a refresh.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	// Expiry is when the access token expires (zero if unknown).
	Expiry time.Time
	// AccessTokenID is the access token's jti when the provider knows it
	// (the embedded issuer); the gate checks it against revocations.
	AccessTokenID string
	// Claims are the user's claims for policy and forwarded headers. For
	// OIDCProvider they are the verified ID token's claims, plus the
	// userinfo claims the ID token lacks when OIDCConfig.UserInfo is set.
	// Access-token claims are not merged: an external provider's access
	// token is meant for its audience and may be opaque.
	Claims map[string]any
	// Subject and Issuer are the ID token's sub and iss.
	Subject string
	Issuer  string
	// Nonce is the ID token's nonce claim ("" if absent).
	Nonce string
}
