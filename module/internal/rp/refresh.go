package rp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NewSession returns the session to seal after a successful Callback, ending
// at sessionExpiry whatever the refreshes.
func NewSession(t *Tokens, sessionExpiry time.Time) *Session {
	return &Session{
		Subject:       t.Subject,
		Issuer:        t.Issuer,
		Claims:        t.Claims,
		AccessToken:   t.AccessToken,
		RefreshToken:  t.RefreshToken,
		IDToken:       t.IDToken,
		Expiry:        t.Expiry,
		Obtained:      time.Now(),
		TokenID:       t.AccessTokenID,
		SessionExpiry: sessionExpiry,
	}
}

// Refresh renews s's tokens through p and returns the updated copy; s is not
// modified. The refresh token is replaced when the provider rotated it. When
// the provider returned an ID token, it must name the same subject (OIDC Core
// 12.2, else ErrSubjectChanged) and its claims replace the session's, so
// changes such as group membership reach policies; otherwise the claims and
// ID token are kept. SessionExpiry never moves.
func Refresh(ctx context.Context, p Provider, s *Session) (*Session, error) {
	if s.RefreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	t, err := p.Refresh(ctx, s.RefreshToken)
	if err != nil {
		return nil, err
	}
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("login: refresh returned no access token")
	}
	out := *s
	out.AccessToken = t.AccessToken
	out.Expiry = t.Expiry
	out.Obtained = time.Now()
	out.TokenID = t.AccessTokenID
	if t.RefreshToken != "" {
		out.RefreshToken = t.RefreshToken
	}
	if t.IDToken != "" {
		if t.Subject != s.Subject || (s.Issuer != "" && t.Issuer != s.Issuer) {
			return nil, fmt.Errorf("%w (issuer %q)", ErrSubjectChanged, t.Issuer)
		}
		out.IDToken = t.IDToken
		out.Claims = t.Claims
	}
	return &out, nil
}
