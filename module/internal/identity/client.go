package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Token lifetime defaults and bounds. Access and ID tokens are signed JWTs
// that cannot be recalled, so they stay short; the keys package keeps a
// retired key published for MaxTokenLifetime.
const (
	DefaultAccessTokenLifetime  = time.Hour
	DefaultIDTokenLifetime      = time.Hour
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	// MaxTokenLifetime bounds access and ID token lifetimes.
	MaxTokenLifetime = 24 * time.Hour
	// MaxRefreshTokenLifetime bounds refresh token lifetimes.
	MaxRefreshTokenLifetime = 366 * 24 * time.Hour
	// minTokenLifetime: anything shorter expires before clock skew allows use.
	minTokenLifetime = 30 * time.Second
)

// StandardScopes are the OpenID Connect scopes every authorization-code
// client may request in addition to its own Scopes.
var StandardScopes = []string{"openid", "profile", "email", "offline_access"}

// HasGrant reports whether the client may use grant type g.
func (c *Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// IsPublic reports whether the client is public (no secret; PKCE required).
func (c *Client) IsPublic() bool { return c.Type == Public }

// PKCERequired reports whether an authorization request of this client must
// carry a code_challenge: always for public clients, and for confidential
// clients unless RequirePKCE is false.
func (c *Client) PKCERequired() bool { return c.IsPublic() || c.RequirePKCE }

// HasRedirectURI reports whether uri is registered, by exact string
// comparison (no prefix, suffix, case or normalisation games).
func (c *Client) HasRedirectURI(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// HasPostLogoutRedirectURI reports whether uri is a registered post-sign-out
// redirect URI (exact string comparison).
func (c *Client) HasPostLogoutRedirectURI(uri string) bool {
	return slices.Contains(c.PostLogoutRedirectURIs, uri)
}

// HasAudience reports whether aud is one of the client's audiences.
func (c *Client) HasAudience(aud string) bool { return slices.Contains(c.Audiences, aud) }

// HasScope reports whether the client was granted scope s in its
// configuration (Scopes).
func (c *Client) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// MayRequestScope reports whether the client may ask for scope s in an
// authorization request: its own scopes plus the standard OIDC scopes.
func (c *Client) MayRequestScope(s string) bool {
	return c.HasScope(s) || slices.Contains(StandardScopes, s)
}

// AccessLifetime is the access token lifetime (default 1h).
func (c *Client) AccessLifetime() time.Duration {
	return orDefault(c.AccessTokenLifetime, DefaultAccessTokenLifetime)
}

// IDLifetime is the ID token lifetime (default 1h).
func (c *Client) IDLifetime() time.Duration {
	return orDefault(c.IDTokenLifetime, DefaultIDTokenLifetime)
}

// RefreshLifetime is the refresh token lifetime (default 30 days): a refresh
// token unused for this long expires; each rotation starts a new period.
func (c *Client) RefreshLifetime() time.Duration {
	return orDefault(c.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// secretHashPrefix marks the hash HashSecret makes.
const secretHashPrefix = "sha256:"

// HashSecret returns the form a client secret is kept in: "sha256:" and the
// unpadded base64url SHA-256 of the secret. A client secret carries at
// least 128 bits of randomness (CheckSecretStrength), so a fast hash cannot
// be reversed by guessing; a slow password hash would only make every token
// request slow.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return secretHashPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// decodeSecretHash returns the SHA-256 a well-formed secret hash holds.
func decodeSecretHash(h string) (sum [sha256.Size]byte, ok bool) {
	b64, found := strings.CutPrefix(h, secretHashPrefix)
	if !found || base64.RawURLEncoding.EncodedLen(sha256.Size) != len(b64) {
		return sum, false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(sum[:], []byte(b64))
	return sum, err == nil && n == sha256.Size
}

// CheckSecretStrength refuses a configured client secret too short to
// carry 128 bits of randomness; the error names the fix.
func CheckSecretStrength(secret string) error {
	if len(secret) < minSecretLength {
		return fmt.Errorf("client_secret is %d characters; use at least %d (128 bits of randomness, e.g. `openssl rand -base64 24`)", len(secret), minSecretLength)
	}
	return nil
}

// SecretMatches reports, in constant time, whether s is the client's
// secret: the hash of s is compared with SecretHash, so neither the content
// nor the length of the secret leaks through timing. A client without a
// (well-formed) secret hash matches nothing.
func (c *Client) SecretMatches(s string) bool {
	want, ok := decodeSecretHash(c.SecretHash)
	if !ok || s == "" {
		return false
	}
	got := sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// minSecretLength: generated secrets carry >= 128 bits; 16 characters is the
// shortest configured secret we accept.
const minSecretLength = 16

// Validate checks the client's configuration. Errors name the client, the
// field and the fix. It does not change the client.
func (c *Client) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("client %q: "+format, append([]any{c.ID}, a...)...))
	}
	if c.ID == "" {
		return errors.New("client without an id: set client_id")
	}
	if strings.ContainsAny(c.ID, " \t\r\n:") {
		bad("client_id must not contain spaces, colons or control characters; pick a simple identifier")
	}
	switch c.Type {
	case Public:
		if c.SecretHash != "" {
			bad("a public client has no secret; remove client_secret or make the client confidential")
		}
	case Confidential:
		if c.SecretHash == "" {
			bad("a confidential client needs a client_secret (at least %d characters, e.g. {env.CLIENT_SECRET}); or make the client public", minSecretLength)
		} else if _, ok := decodeSecretHash(c.SecretHash); !ok {
			bad("the secret hash is malformed; keep secrets as identity.HashSecret makes them")
		}
	default:
		bad("type %q is not known; use %q or %q", c.Type, Public, Confidential)
	}
	if len(c.GrantTypes) == 0 {
		bad("no grant types; set grant_types to authorization_code (plus refresh_token) or client_credentials")
	}
	seen := map[string]bool{}
	for _, g := range c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken:
		case GrantClientCredentials:
			if c.Type == Public {
				bad("client_credentials needs a confidential client; make the client confidential with a client_secret or remove the grant")
			}
		case "implicit", "password":
			bad("grant type %q is not offered (OAuth 2.1); use authorization_code with PKCE", g)
		default:
			bad("grant type %q is not known; use authorization_code, refresh_token or client_credentials", g)
		}
		if seen[g] {
			bad("grant type %q is listed twice; remove the duplicate", g)
		}
		seen[g] = true
	}
	if seen[GrantRefreshToken] && !seen[GrantAuthorizationCode] {
		bad("refresh_token needs authorization_code (refresh tokens are only issued in that flow); add authorization_code or remove refresh_token")
	}
	if seen[GrantAuthorizationCode] {
		if len(c.RedirectURIs) == 0 {
			bad("authorization_code needs at least one redirect_uri; add the URL your app receives the code at")
		}
		if !c.AllowLocalLogin && len(c.Providers) == 0 {
			bad("users have no way to sign in: local login is denied (deny_local_login; allow_local_login is false) and no providers are listed; allow local login or list providers")
		}
	}
	for _, u := range c.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			bad("redirect_uri: %v", err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			bad("post_logout_redirect_uri: %v", err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := ValidateBackchannelLogoutURI(c.BackchannelLogoutURI); err != nil {
			bad("backchannel_logout_uri: %v", err)
		}
		if !seen[GrantAuthorizationCode] {
			bad("backchannel_logout_uri only applies to clients that sign users in (authorization_code); add that grant or remove the URI")
		}
	} else if c.BackchannelLogoutSessionRequired {
		bad("backchannel_logout_session_required needs a backchannel_logout_uri; add the URI or remove the flag")
	}
	for _, o := range c.AllowedOrigins {
		if err := validateOrigin(o); err != nil {
			bad("allowed_origin: %v", err)
		}
	}
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			bad("scope %q is not a valid scope token; use printable ASCII without spaces, quotes or backslashes", s)
		}
	}
	for _, a := range c.Audiences {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			bad("audience %q must be a non-empty identifier without spaces (usually the client_id of the API)", a)
		}
	}
	if c.AllowPlainPKCE && !seen[GrantAuthorizationCode] {
		bad("allow_plain_pkce only applies to authorization_code; remove it")
	}
	checkLifetime := func(name string, d, max time.Duration) {
		switch {
		case d == 0:
		case d < 0:
			bad("%s is negative; use a positive duration or leave it unset", name)
		case d < minTokenLifetime:
			bad("%s %s is too short; use at least %s", name, d, minTokenLifetime)
		case d > max:
			bad("%s %s is too long; use at most %s", name, d, max)
		}
	}
	checkLifetime("access_token_lifetime", c.AccessTokenLifetime, MaxTokenLifetime)
	checkLifetime("id_token_lifetime", c.IDTokenLifetime, MaxTokenLifetime)
	checkLifetime("refresh_token_lifetime", c.RefreshTokenLifetime, MaxRefreshTokenLifetime)
	return errors.Join(errs...)
}

// validScopeToken: RFC 6749 3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// ValidateRedirectURI checks a redirect URI as registered: absolute, https
// (or http on a loopback host for development), no user info, no query, no
// fragment, no wildcard.
func ValidateRedirectURI(raw string) error {
	if raw == "" {
		return errors.New("empty URI; use an absolute https URL")
	}
	if strings.ContainsAny(raw, "#") {
		return fmt.Errorf("%q has a fragment; remove everything from '#'", raw)
	}
	if strings.Contains(raw, "?") {
		return fmt.Errorf("%q has a query string; remove everything from '?' (carry data in state instead)", raw)
	}
	if strings.Contains(raw, "*") {
		return fmt.Errorf("%q has a wildcard; register every URI exactly", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL; write it as https://host/path", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q contains user info; remove the 'user@' part", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q uses http on a non-loopback host; use https (http is allowed only for localhost, 127.0.0.1 and [::1])", raw)
		}
	default:
		return fmt.Errorf("%q has scheme %q; use https (or http on localhost)", raw, u.Scheme)
	}
	return nil
}

// ValidateBackchannelLogoutURI checks a back-channel logout URI as
// registered: absolute, https (or http on a loopback host), no user info, no
// fragment; a query is allowed (OpenID Connect Back-Channel Logout 2.2).
func ValidateBackchannelLogoutURI(raw string) error {
	if strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment; remove everything from '#'", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL; write it as https://host/path", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q contains user info; remove the 'user@' part", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("%q must use https (http only on localhost, 127.0.0.1 and [::1])", raw)
	}
	return nil
}

// validateOrigin checks a CORS origin: scheme://host[:port] and nothing else.
func validateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin; write scheme://host[:port] with no path", o)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname())) {
		return fmt.Errorf("%q must use https (http only on loopback)", o)
	}
	return nil
}

// IsLoopbackHost reports whether host (without port) is localhost or a
// loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
