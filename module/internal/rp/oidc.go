package rp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultScopes are requested when OIDCConfig.Scopes is empty.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// OIDCConfig configures an external OpenID provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; discovery is fetched from
	// Issuer + "/.well-known/openid-configuration" and the document's issuer
	// must equal it exactly.
	Issuer string
	// ClientID is the client registered at the provider.
	ClientID string
	// ClientSecret makes the gate a confidential client (client_secret_basic,
	// or client_secret_post when that is all the provider supports). Empty
	// means a public client that authenticates with PKCE only.
	ClientSecret string
	// Scopes requested; default DefaultScopes. "openid" is always added.
	Scopes []string
	// UserInfo also fetches the userinfo endpoint after a code exchange and
	// adds the claims the ID token lacks (the ID token wins on conflicts;
	// a userinfo sub different from the ID token's fails the login).
	UserInfo bool
	// HTTPClient is used for discovery, JWKS, token and userinfo requests;
	// default a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for ID token expiry; default time.Now.
	Now func() time.Time
}

// OIDCProvider is a Provider for an external OpenID provider found by
// discovery: go-oidc verifies ID tokens against the provider's JWKS, and
// golang.org/x/oauth2 talks to its token endpoint.
type OIDCProvider struct {
	issuer     string
	clientID   string
	base       oauth2.Config
	client     *http.Client
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	userInfo   bool
	endSession string
	revocation string
}

// discoveryExtras are discovery fields go-oidc does not expose.
type discoveryExtras struct {
	EndSession       string   `json:"end_session_endpoint"`
	Revocation       string   `json:"revocation_endpoint"`
	AuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	ChallengeMethods []string `json:"code_challenge_methods_supported"`
}

// NewOIDCProvider fetches cfg.Issuer's discovery document and returns a
// Provider for it. ctx bounds the discovery request only.
func NewOIDCProvider(ctx context.Context, cfg OIDCConfig) (*OIDCProvider, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("login: OIDC provider needs an issuer URL")
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("login: OIDC provider %s needs a client_id", cfg.Issuer)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	scopes = slices.Clone(scopes)

	op, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("login: discovery for %s: %w", cfg.Issuer, err)
	}
	var extra discoveryExtras
	if err := op.Claims(&extra); err != nil {
		return nil, fmt.Errorf("login: discovery for %s: %w", cfg.Issuer, err)
	}
	if len(extra.ChallengeMethods) > 0 && !slices.Contains(extra.ChallengeMethods, "S256") {
		return nil, fmt.Errorf("login: provider %s does not support PKCE S256 (code_challenge_methods_supported %v)", cfg.Issuer, extra.ChallengeMethods)
	}
	endpoint := op.Endpoint()
	switch {
	case cfg.ClientSecret == "":
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	case len(extra.AuthMethods) == 0 || slices.Contains(extra.AuthMethods, "client_secret_basic"):
		endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(extra.AuthMethods, "client_secret_post"):
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, fmt.Errorf("login: provider %s supports neither client_secret_basic nor client_secret_post (token_endpoint_auth_methods_supported %v)", cfg.Issuer, extra.AuthMethods)
	}
	if extra.EndSession != "" {
		if u, err := url.Parse(extra.EndSession); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("login: provider %s advertises an invalid end_session_endpoint", cfg.Issuer)
		}
	}
	if extra.Revocation != "" {
		if u, err := url.Parse(extra.Revocation); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("login: provider %s advertises an invalid revocation_endpoint", cfg.Issuer)
		}
	}
	return &OIDCProvider{
		revocation: extra.Revocation,
		issuer:     cfg.Issuer,
		clientID:   cfg.ClientID,
		base: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			Scopes:       scopes,
		},
		client:     client,
		provider:   op,
		verifier:   op.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: now}),
		userInfo:   cfg.UserInfo,
		endSession: extra.EndSession,
	}, nil
}

// Issuer returns the provider's issuer URL.
func (p *OIDCProvider) Issuer() string { return p.issuer }

func (p *OIDCProvider) config(redirectURI string) *oauth2.Config {
	c := p.base
	c.RedirectURL = redirectURI
	return &c
}

func (p *OIDCProvider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// AuthCodeURL implements Provider.
func (p *OIDCProvider) AuthCodeURL(state, nonce, codeChallenge, redirectURI, prompt string) string {
	opts := []oauth2.AuthCodeOption{
		oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("code_challenge", codeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	return p.config(redirectURI).AuthCodeURL(state, opts...)
}

// Exchange implements Provider: it redeems the code, verifies the ID token
// (signature, iss, aud, azp when several audiences, exp, at_hash when
// present) and collects its claims.
func (p *OIDCProvider) Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (*Tokens, error) {
	tok, err := p.config(redirectURI).Exchange(p.ctx(ctx), code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return nil, fmt.Errorf("login: token request to %s: %w", p.issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("login: %s returned no ID token", p.issuer)
	}
	t, err := p.verify(ctx, tok, raw)
	if err != nil {
		return nil, err
	}
	if p.userInfo {
		if err := p.addUserInfo(ctx, tok, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Refresh implements Provider. An ID token in the response is verified like
// at login, except for the nonce, which OIDC does not require on refresh.
func (p *OIDCProvider) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	if refreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	tok, err := p.config("").TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("login: refresh at %s: %w", p.issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return &Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
	}
	t, err := p.verify(ctx, tok, raw)
	if err != nil {
		return nil, err
	}
	if p.userInfo {
		if err := p.addUserInfo(ctx, tok, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Revoke revokes refreshToken at the provider's RFC 7009
// revocation_endpoint, authenticating like the token endpoint. A provider
// without one makes Revoke return ErrNoRevocation.
func (p *OIDCProvider) Revoke(ctx context.Context, refreshToken string) error {
	if p.revocation == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	if p.base.Endpoint.AuthStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", p.base.ClientID)
		if p.base.ClientSecret != "" {
			form.Set("client_secret", p.base.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.base.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		// RFC 6749 2.3.1: form-encode the id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(p.base.ClientID), url.QueryEscape(p.base.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("login: revocation at %s: %w", p.issuer, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login: revocation at %s answered %s", p.issuer, resp.Status)
	}
	return nil
}

func (p *OIDCProvider) verify(ctx context.Context, tok *oauth2.Token, raw string) (*Tokens, error) {
	idt, err := p.verifier.Verify(oidc.ClientContext(ctx, p.client), raw)
	if err != nil {
		return nil, fmt.Errorf("login: ID token from %s rejected: %w", p.issuer, err)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("login: ID token from %s: %w", p.issuer, err)
	}
	// OIDC Core 3.1.3.7 (4, 5): with several audiences, azp must be us.
	if azp, ok := claims["azp"]; (ok || len(idt.Audience) > 1) && azp != p.clientID {
		return nil, fmt.Errorf("login: ID token from %s is for authorized party %v, not %q", p.issuer, azp, p.clientID)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("login: ID token from %s: %w", p.issuer, err)
		}
	}
	if idt.Subject == "" {
		return nil, fmt.Errorf("login: ID token from %s has no sub", p.issuer)
	}
	return &Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		IDToken:      raw,
		Expiry:       tok.Expiry,
		Claims:       claims,
		Subject:      idt.Subject,
		Issuer:       idt.Issuer,
		Nonce:        idt.Nonce,
	}, nil
}

func (p *OIDCProvider) addUserInfo(ctx context.Context, tok *oauth2.Token, t *Tokens) error {
	ui, err := p.provider.UserInfo(oidc.ClientContext(ctx, p.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("login: userinfo from %s: %w", p.issuer, err)
	}
	if ui.Subject != t.Subject {
		return fmt.Errorf("login: userinfo from %s is for another subject", p.issuer)
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return fmt.Errorf("login: userinfo from %s: %w", p.issuer, err)
	}
	for k, v := range extra {
		if _, ok := t.Claims[k]; !ok {
			t.Claims[k] = v
		}
	}
	return nil
}

// EndSessionURL implements Provider from the discovery document's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0); "" when the
// provider advertises none.
func (p *OIDCProvider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) string {
	return endSessionURL(p.endSession, p.clientID, idTokenHint, postLogoutRedirectURI, state)
}

// endSessionURL adds the RP-Initiated Logout parameters to endpoint, keeping
// any query it already has.
func endSessionURL(endpoint, clientID, idTokenHint, postLogoutRedirectURI, state string) string {
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", clientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
