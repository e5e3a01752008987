package identity

import (
	"time"
)

// Claim visibility: which token a custom claim lands in.
const (
	ClaimAccess   = "access"   // the access token (roles, permissions)
	ClaimIdentity = "identity" // the ID token and userinfo
)

// CustomClaim is one custom claim of a user.
type CustomClaim struct {
	Name  string
	Value any // string, []string, bool, float64, map[string]any
	// In is ClaimAccess or ClaimIdentity.
	In string
}

// User is a local account.
type User struct {
	Subject           string
	PreferredUsername string
	Name              string
	GivenName         string
	FamilyName        string
	Email             string
	EmailVerified     bool
	Active            bool
	// PasswordHash is bcrypt ($2a$/$2b$/$2y$) or argon2id ($argon2id$) as
	// `caddy hash-password` prints it. Empty: no password login.
	PasswordHash string
	Claims       []CustomClaim
}

// Client types.
const (
	Public       = "public"
	Confidential = "confidential"
)

// Grant types a client may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Client is an OAuth client (application), with every field of the Entrypage
// client model.
type Client struct {
	ID   string
	Type string // Public or Confidential
	// Secret is the client secret of a confidential client as configured
	// (usually from an {env.*} or {file.*} placeholder). It is compared in
	// constant time by SecretMatches and never logged.
	Secret                 string
	GrantTypes             []string
	Scopes                 []string
	Audiences              []string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	AllowedOrigins         []string
	// AllowLocalLogin offers the issuer's username/password form to this
	// client's users. The configuration layer should default it to true;
	// Validate rejects an authorization-code client with neither local
	// login nor providers.
	AllowLocalLogin bool
	Providers       []string
	Policies        []string
	// AllowPlainPKCE lets this client use code_challenge_method=plain.
	AllowPlainPKCE bool
	// RequirePKCE: confidential clients must also send PKCE. The
	// configuration layer must default it to true (CONFORMANCE: PKCE is
	// required by default for all clients); public clients always must.
	RequirePKCE          bool
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration
	// BackchannelLogoutURI, when set, receives an OpenID Connect
	// Back-Channel Logout token (a POSTed logout_token) whenever a user signs
	// out at the issuer from a session in which this client was granted
	// tokens. https, or http on a loopback host; no fragment.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired: the client needs the session ID
	// (sid) in its logout tokens, and in its ID tokens to match them.
	BackchannelLogoutSessionRequired bool
}

// Domain is one tenant: an issuer with its own users, clients and keys.
type Domain struct {
	Name    string
	Issuer  string // exact issuer URL, no trailing slash
	Users   []*User
	Clients []*Client

	// index holds the lookup maps built by Compile.
	index *domainIndex
}
