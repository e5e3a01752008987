package identity

import (
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/claims"
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
	// Identities are the user's accounts at external providers (federated
	// sign-in), each unique within the domain. Empty for configured users.
	Identities []ExternalIdentity
}

// ExternalIdentity names a user's account at an external provider.
type ExternalIdentity struct {
	// Provider is the name of the login provider in the domain.
	Provider string
	// Subject is the user's stable identifier at the provider (its sub).
	Subject string
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
	// SecretHash is the hash of a confidential client's secret, as
	// HashSecret makes it ("sha256:" and the unpadded base64url SHA-256 of
	// the secret). The secret itself is never kept: SecretMatches compares a
	// presented secret's hash in constant time.
	SecretHash             string
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

// DomainSettings are a domain's own settings: what it is called, the
// issuer it serves and how its sessions, keys and claims behave.
type DomainSettings struct {
	Name   string
	Issuer string // exact issuer URL, no trailing slash
	// SessionLifetime of the SSO session at the issuer; 0: the default (12h).
	SessionLifetime time.Duration
	// SigningAlgorithm of the domain's tokens; "": RS256.
	SigningAlgorithm string
	// KeyRotation is how long a signing key signs; 0: the default.
	KeyRotation time.Duration
	// ClaimsMap transforms the users' claims when tokens are minted, at
	// userinfo and for policies; nil: none. It is compiled.
	ClaimsMap *claims.Map
}

// Domain is one tenant as configuration defines it: its settings, users
// and clients.
type Domain struct {
	DomainSettings
	Users   []*User
	Clients []*Client

	// index holds the lookup maps built by Compile.
	index *domainIndex
}
