package rp

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Audience names the gates a session is valid at: those of one domain that
// sign in through one issuer with one client. Gates with the same Audience
// share a session (one cookie, one set of keys); gates with different ones
// never open each other's sessions, and use different cookie names so that
// signing in at one does not overwrite the other's session.
type Audience struct {
	// Domain is the gatehouse domain whose policies and revocations the
	// gate uses ("" is the default domain).
	Domain string `json:"d,omitempty"`
	// Issuer is the issuer the gate signs users in with.
	Issuer string `json:"i"`
	// Client is the client id the gate signs users in as.
	Client string `json:"c"`
}

// String is the audience in an unambiguous form, for key derivation
// (Keys.Bind).
func (a Audience) String() string {
	return strconv.Quote(a.Domain) + " " + strconv.Quote(a.Issuer) + " " + strconv.Quote(a.Client)
}

// Tag is 8 hex digits of a SHA-256 of String: enough to keep the cookie
// names of the few gates a browser meets apart (a collision costs only a
// sign-in, as the keys differ anyway).
func (a Audience) Tag() string {
	sum := sha256.Sum256([]byte(a.String()))
	return hex.EncodeToString(sum[:4])
}

// Session is what the gate keeps in a browser session cookie.
//
// JSON names are short because the whole value travels in cookies on every
// request; tokens dominate the size, which is why Sealer splits large values.
type Session struct {
	// ID identifies this session: random, made at sign-in and kept across
	// refreshes. Logout revokes it, so every copy of the cookie dies with
	// the one the browser drops.
	ID string `json:"sid,omitempty"`
	// Audience is the gates the session was made for; a gate opens only a
	// session whose Audience is its own.
	Audience Audience `json:"ga,omitzero"`
	// Subject is the user's stable identifier (the ID token's sub).
	Subject string `json:"sub"`
	// Issuer is the issuer that authenticated the user (the ID token's iss).
	Issuer string `json:"iss,omitempty"`
	// Claims are the user's claims used for policy decisions and forwarded
	// headers, as produced by the login provider.
	Claims map[string]any `json:"cl,omitempty"`
	// AccessToken is the current access token; it may be forwarded upstream.
	AccessToken string `json:"at,omitempty"`
	// RefreshToken renews the access token before Expiry; empty when the
	// provider issued none.
	RefreshToken string `json:"rt,omitempty"`
	// IDToken is the last ID token, kept as id_token_hint for RP-initiated
	// logout.
	IDToken string `json:"it,omitempty"`
	// Expiry is when the access token expires.
	Expiry time.Time `json:"exp,omitzero"`
	// Obtained is when the current access token was received; with Expiry
	// it gives the token's lifetime (RefreshSkew). Zero in sessions sealed
	// before the field existed.
	Obtained time.Time `json:"ia,omitzero"`
	// TokenID is the access token's jti when the provider is the embedded
	// issuer, so the gate can refuse a session whose tokens were revoked
	// (logout, refresh-token reuse). Empty for external providers.
	TokenID string `json:"ti,omitempty"`
	// SessionExpiry is when the session ends regardless of refreshes; it is
	// also the cookie expiry given to Sealer.Seal.
	SessionExpiry time.Time `json:"sx,omitzero"`
}

// Ended reports whether the session is over at now (SessionExpiry passed).
// A zero SessionExpiry never ends by itself; the cookie expiry still applies.
func (s *Session) Ended(now time.Time) bool {
	return !s.SessionExpiry.IsZero() && !now.Before(s.SessionExpiry)
}

// RefreshSkew is how long before Expiry the session should refresh its
// access token: a quarter of the token's lifetime, at most max. A session
// without Obtained uses max.
func (s *Session) RefreshSkew(max time.Duration) time.Duration {
	if s.Obtained.IsZero() || s.Expiry.IsZero() {
		return max
	}
	if q := s.Expiry.Sub(s.Obtained) / 4; q >= 0 && q < max {
		return q
	}
	return max
}

// NeedsRefresh reports whether the access token expires within skew of now
// and a refresh token is available to renew it.
func (s *Session) NeedsRefresh(now time.Time, skew time.Duration) bool {
	return s.RefreshToken != "" && !s.Expiry.IsZero() && !now.Add(skew).Before(s.Expiry)
}
