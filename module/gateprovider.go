package module

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"golang.org/x/sync/singleflight"
)

// The provider a gate signs in with: the domain's embedded issuer
// (localProvider, in process) or an external OpenID provider, found by
// discovery when first needed (getProvider).

// getProvider returns the gate's provider: the embedded issuer's, or the
// external one (see discovery).
func (web *gateWeb) getProvider(ctx context.Context) (rp.Provider, error) {
	if web.discovery == nil {
		return web.provider, nil
	}
	return web.discovery.get(ctx)
}

const (
	// discoveryTimeout bounds one discovery attempt.
	discoveryTimeout = 10 * time.Second
	// discoveryRetry is how long a failed discovery is remembered: the
	// logins of that window get its error at once, so a provider that is
	// down costs one attempt per window, not one per login.
	discoveryRetry = 5 * time.Second
)

// discovery finds an external provider by OpenID Connect discovery when it
// is first needed, outside every lock of the gate: one attempt at a time,
// shared by all the callers that need the provider meanwhile (each may stop
// waiting when its own context ends; the attempt goes on for the others).
// A provider found is kept; a failure is remembered for discoveryRetry.
type discovery struct {
	newProvider func(ctx context.Context) (rp.Provider, error)
	now         func() time.Time
	attempts    singleflight.Group

	mu       sync.Mutex
	provider rp.Provider
	failure  error // the last attempt's, when it failed
	failedAt time.Time
}

func newDiscovery(newProvider func(ctx context.Context) (rp.Provider, error)) *discovery {
	return &discovery{newProvider: newProvider, now: time.Now}
}

// tryNow attempts discovery within ctx (at provision, so a working provider
// costs nothing later). A failure is not remembered: the first login tries
// again.
func (d *discovery) tryNow(ctx context.Context) error {
	p, err := d.newProvider(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.provider = p
	d.mu.Unlock()
	return nil
}

// cached returns the provider found, or the failure of the last attempt
// while it is remembered (both nil: an attempt is due).
func (d *discovery) cached() (rp.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider != nil {
		return d.provider, nil
	}
	if d.failure != nil && d.now().Sub(d.failedAt) < discoveryRetry {
		return nil, d.failure
	}
	return nil, nil
}

func (d *discovery) get(ctx context.Context) (rp.Provider, error) {
	if p, err := d.cached(); p != nil || err != nil {
		return p, err
	}
	ch := d.attempts.DoChan("", func() (any, error) {
		// Checked again: an attempt may have ended since the check above.
		if p, err := d.cached(); p != nil || err != nil {
			return p, err
		}
		// Not the caller's context: the callers that wait share this
		// attempt, and one that goes away must not fail it for the rest.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
		defer cancel()
		p, err := d.newProvider(actx)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.failure, d.failedAt = err, d.now()
			return nil, err
		}
		d.provider, d.failure = p, nil
		return p, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(rp.Provider), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
