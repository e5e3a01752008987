package module

import (
	"context"
	"net/url"

	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
)

// The provider a gate signs in with: the domain's embedded issuer
// (localProvider, in process) or an external OpenID provider, found by
// discovery when first needed (getProvider).

// getProvider returns the gate's provider, running an external provider's
// discovery when it has not answered yet.
func (web *gateWeb) getProvider(ctx context.Context) (rp.Provider, error) {
	web.providerMu.Lock()
	defer web.providerMu.Unlock()
	if web.provider != nil {
		return web.provider, nil
	}
	p, err := web.newProvider(ctx)
	if err != nil {
		return nil, err
	}
	web.provider = p
	return p, nil
}

// localProvider logs in through the domain's embedded issuer: the browser
// goes to its authorize endpoint, and the code is redeemed, tokens
// refreshed and revoked in-process by the issuer's trusted relying party
// (no client secret: the issuer keeps only its hash), which hands back the
// claims it minted.
type localProvider struct {
	rp *issuer.LocalRP
	// scopes are the gate's configured scopes; none: the client's, as the
	// domain has them now (fallback when they cannot be read).
	scopes, fallback []string
}

func (p *localProvider) Issuer() string { return p.rp.Issuer() }

func (p *localProvider) AuthCodeURL(state, nonce, challenge, redirectURI, prompt string) string {
	scopes := p.scopes
	if len(scopes) == 0 {
		var err error
		if scopes, err = p.rp.Scopes(context.Background()); err != nil {
			scopes = p.fallback
		}
	}
	return p.rp.AuthCodeURL(scopes, state, nonce, challenge, redirectURI, prompt)
}

func (p *localProvider) Exchange(ctx context.Context, code, verifier, redirectURI string) (*rp.Tokens, error) {
	return loginTokens(p.rp.Exchange(ctx, code, verifier, redirectURI))
}

func (p *localProvider) Refresh(ctx context.Context, refreshToken string) (*rp.Tokens, error) {
	return loginTokens(p.rp.Refresh(ctx, refreshToken))
}

func (p *localProvider) Revoke(ctx context.Context, refreshToken string) error {
	return p.rp.Revoke(ctx, refreshToken)
}

// EndSessionURL is what rp.Provider asks for; the gate's logout uses
// the relying party's EndSessionURL instead, whose hint needs no ID token.
func (p *localProvider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) string {
	v := url.Values{"client_id": {p.rp.ClientID()}}
	if idTokenHint != "" {
		v.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		v.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		v.Set("state", state)
	}
	return p.rp.Issuer() + "/logout?" + v.Encode()
}

// loginTokens converts what the relying party minted.
func loginTokens(t *issuer.LocalTokens, err error) (*rp.Tokens, error) {
	if err != nil {
		return nil, err
	}
	return &rp.Tokens{
		AccessToken:   t.AccessToken,
		RefreshToken:  t.RefreshToken,
		IDToken:       t.IDToken,
		Expiry:        t.Expiry,
		AccessTokenID: t.AccessTokenID,
		Claims:        t.Claims,
		Subject:       t.Subject,
		Issuer:        t.Issuer,
		Nonce:         t.Nonce,
	}, nil
}
