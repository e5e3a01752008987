package module

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-auth/gatehouse/module/internal/claims"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// DomainConfig is one domain (tenant): an OpenID Connect issuer with its own
// users, clients, policies and signing keys.
type DomainConfig struct {
	// Name of the domain. Empty is the default domain, used by handlers that
	// name none.
	Name string `json:"name,omitempty"`

	// Issuer is the exact issuer URL (https, or http on a loopback host for
	// development), e.g. https://auth.example.com or https://example.com/auth.
	// Required.
	Issuer string `json:"issuer,omitempty"`

	// Users are the local accounts.
	Users []*UserConfig `json:"users,omitempty"`

	// Clients are the registered applications.
	Clients []*ClientConfig `json:"clients,omitempty"`

	// Policies written inline (the same model as the YAML policy language).
	Policies []policy.Policy `json:"policies,omitempty"`

	// PolicyFiles are YAML files in the Entrypage policy language.
	PolicyFiles []string `json:"policy_files,omitempty"`

	// ClaimsMap transforms the users' custom claims before tokens are minted
	// and policies run (claims transformation: mode merge|filter and a list
	// of transformations). Profile fields (sub, preferred_username, name,
	// given_name, family_name, email, email_verified) may be read as
	// sources; they are not rewritten.
	ClaimsMap *claims.Map `json:"claims_map,omitempty"`

	// ClaimsMapFile is a YAML claim map file (an alternative to ClaimsMap).
	ClaimsMapFile string `json:"claims_map_file,omitempty"`

	// SigningAlgorithm of the domain's tokens: RS256 (default), ES256 or EdDSA.
	SigningAlgorithm string `json:"signing_algorithm,omitempty"`

	// KeyRotation is how long a signing key signs before a new one takes
	// over; the old one stays in the JWKS until its tokens have expired. The
	// new key is published a quarter of this period (at most an hour) before
	// it signs, so every instance on the store serves it first; hence at
	// least 1m. Default: 90 days (2160h).
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// SessionLifetime is how long a sign-in at the issuer lasts (the SSO
	// session). Default: 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// LoginMethodsRaw are the ways users sign in at the domain's issuer
	// (module namespace gatehouse.login_methods, inline key "method"), in
	// the order the login page shows them; each client is shown the ones
	// offered to it. Listing methods replaces the default, so list
	// {"method": "password"} to keep the password form. Default: the
	// password method alone.
	LoginMethodsRaw []json.RawMessage `json:"login_methods,omitempty" caddy:"namespace=gatehouse.login_methods inline_key=method"`
}

// UserConfig is a local account.
type UserConfig struct {
	// Username is the preferred_username; users sign in with it or their
	// e-mail address. Required.
	Username string `json:"username,omitempty"`
	// Subject is the stable `sub`. Default: the username.
	Subject string `json:"sub,omitempty"`
	// Name, GivenName, FamilyName are profile claims.
	Name       string `json:"name,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	// Email address; EmailVerified defaults to true for configured users.
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	// Disabled accounts cannot sign in.
	Disabled bool `json:"disabled,omitempty"`
	// PasswordHash as `caddy hash-password` prints it (bcrypt or argon2id).
	// Placeholders such as {env.ALICE_HASH} are replaced.
	PasswordHash string `json:"password_hash,omitempty"`
	// Claims are custom claims that land in the ID token and userinfo.
	Claims map[string]any `json:"claims,omitempty"`
	// AccessClaims are custom claims that land in the access token (roles,
	// permissions).
	AccessClaims map[string]any `json:"access_claims,omitempty"`
}

// ClientConfig is a registered application, with every field of the
// Entrypage client model.
type ClientConfig struct {
	// ClientID. Required.
	ClientID string `json:"client_id,omitempty"`
	// Secret makes the client confidential; omit it for a public client
	// (which must use PKCE). Use a placeholder: {env.WEBAPP_SECRET}.
	Secret string `json:"secret,omitempty"`
	// GrantTypes the client may use: authorization_code, refresh_token,
	// client_credentials. Default: authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scopes the client may request. Default: openid profile email.
	Scopes []string `json:"scopes,omitempty"`
	// Audiences are the client ids / resource URIs of the APIs the client's
	// access tokens are for. Default: the client's own id.
	Audiences []string `json:"audiences,omitempty"`
	// RedirectURIs, matched exactly: https, or http on a loopback host; no
	// query, no fragment.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs accepted by the end-session endpoint.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// AllowedOrigins for CORS on the token and userinfo endpoints.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// DenyLocalLogin hides the username/password form for this client.
	DenyLocalLogin bool `json:"deny_local_login,omitempty"`
	// Providers are the federated login providers this client offers.
	Providers []string `json:"providers,omitempty"`
	// Policies are policy ids; a user must satisfy at least one to sign in.
	Policies []string `json:"policies,omitempty"`
	// AllowPlainPKCE accepts code_challenge_method=plain (never recommended).
	AllowPlainPKCE bool `json:"allow_plain_pkce,omitempty"`
	// OptionalPKCE lets a confidential client omit PKCE. Public clients must
	// always use it.
	OptionalPKCE bool `json:"optional_pkce,omitempty"`
	// Token lifetimes. Defaults: access 1h, ID 1h, refresh 720h (30 days);
	// access and ID tokens live at most 24h, refresh tokens 366 days.
	AccessTokenLifetime  caddy.Duration `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime      caddy.Duration `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime caddy.Duration `json:"refresh_token_lifetime,omitempty"`
	// BackchannelLogoutURI is where the issuer POSTs an OpenID Connect
	// Back-Channel Logout token when a user signs out at the issuer from a
	// session in which this client was granted tokens (https, or http on a
	// loopback host; delivered in the background, failures audited).
	// Default: none, the client is not told.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired puts the session ID (sid) in the
	// client's logout tokens and ID tokens. Needs BackchannelLogoutURI.
	// Default: false (logout tokens name the user by sub only).
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
}

// identity turns the configuration into the identity model, replacing
// placeholders in secrets and validating everything.
func (dc *DomainConfig) identity() (*identity.Domain, error) {
	repl := caddy.NewReplacer()
	if dc.Issuer == "" {
		return nil, fmt.Errorf("the issuer URL is missing; add `issuer https://auth.example.com` to the domain")
	}
	dom := &identity.Domain{Name: dc.Name, Issuer: strings.TrimRight(dc.Issuer, "/")}
	for i, u := range dc.Users {
		if u.Username == "" {
			return nil, fmt.Errorf("users[%d]: the username is missing; write `user <username> { ... }`", i)
		}
		iu := &identity.User{
			Subject:           u.Subject,
			PreferredUsername: u.Username,
			Name:              u.Name,
			GivenName:         u.GivenName,
			FamilyName:        u.FamilyName,
			Email:             u.Email,
			EmailVerified:     u.EmailVerified == nil || *u.EmailVerified,
			Active:            !u.Disabled,
			PasswordHash:      repl.ReplaceKnown(u.PasswordHash, ""),
		}
		if iu.Subject == "" {
			iu.Subject = u.Username
		}
		for name, v := range u.Claims {
			iu.Claims = append(iu.Claims, identity.CustomClaim{Name: name, Value: v, In: identity.ClaimIdentity})
		}
		for name, v := range u.AccessClaims {
			iu.Claims = append(iu.Claims, identity.CustomClaim{Name: name, Value: v, In: identity.ClaimAccess})
		}
		dom.Users = append(dom.Users, iu)
	}
	for _, c := range dc.Clients {
		ic := &identity.Client{
			ID:                     c.ClientID,
			Secret:                 repl.ReplaceKnown(c.Secret, ""),
			GrantTypes:             c.GrantTypes,
			Scopes:                 c.Scopes,
			Audiences:              c.Audiences,
			RedirectURIs:           c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			AllowedOrigins:         c.AllowedOrigins,
			AllowLocalLogin:        !c.DenyLocalLogin,
			Providers:              c.Providers,
			Policies:               c.Policies,
			AllowPlainPKCE:         c.AllowPlainPKCE,
			RequirePKCE:            !c.OptionalPKCE,
			AccessTokenLifetime:    time.Duration(c.AccessTokenLifetime),
			IDTokenLifetime:        time.Duration(c.IDTokenLifetime),
			RefreshTokenLifetime:   time.Duration(c.RefreshTokenLifetime),

			BackchannelLogoutURI:             c.BackchannelLogoutURI,
			BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		}
		if c.Secret != "" && ic.Secret == "" {
			return nil, fmt.Errorf("client %q: its secret %q expands to nothing; set the environment variable or file it names", c.ClientID, c.Secret)
		}
		if ic.Secret == "" {
			ic.Type = identity.Public
		} else {
			ic.Type = identity.Confidential
		}
		if len(ic.GrantTypes) == 0 {
			ic.GrantTypes = []string{identity.GrantAuthorizationCode, identity.GrantRefreshToken}
		}
		if len(ic.Scopes) == 0 {
			ic.Scopes = []string{"openid", "profile", "email"}
		}
		dom.Clients = append(dom.Clients, ic)
	}
	if err := dc.transformClaims(dom); err != nil {
		return nil, err
	}
	if err := dom.Compile(); err != nil {
		return nil, err
	}
	return dom, nil
}

// policySet compiles the inline policies and policy files. It returns nil
// when the domain has no policies.
func (dc *DomainConfig) policySet() (*policy.Set, error) {
	all := append([]policy.Policy(nil), dc.Policies...)
	for _, f := range dc.PolicyFiles {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading policy file: %w", err)
		}
		ps, err := policy.Parse(f, src)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return policy.Compile(all)
}

// keysConfig derives the signing-key settings; keys stay published for the
// longest token lifetime any client of the domain may be given.
func (dc *DomainConfig) keysConfig(dom *identity.Domain) (keys.Config, error) {
	cfg := keys.Config{Algorithm: dc.SigningAlgorithm, RotateEvery: time.Duration(dc.KeyRotation)}
	if cfg.Algorithm == "" {
		cfg.Algorithm = keys.RS256
	}
	switch cfg.Algorithm {
	case keys.RS256, keys.ES256, keys.EdDSA:
	default:
		return cfg, fmt.Errorf("signing_algorithm %q is not supported; use RS256, ES256 or EdDSA", cfg.Algorithm)
	}
	longest := 24 * time.Hour
	for _, c := range dom.Clients {
		longest = max(longest, c.AccessTokenLifetime, c.IDTokenLifetime)
	}
	cfg.MaxTokenLifetime = longest
	return cfg, nil
}

// profileFields are read-only sources for the claim map.
var profileFields = []string{"sub", "preferred_username", "name", "given_name", "family_name", "email", "email_verified"}

// transformClaims applies the domain's claim map to every local user's
// custom claims. Users are static configuration, so this happens once, at
// provision time; a claim that comes out of the map lands in the access
// token if it came from an access claim, otherwise in the ID token.
func (dc *DomainConfig) transformClaims(dom *identity.Domain) error {
	m := dc.ClaimsMap
	if dc.ClaimsMapFile != "" {
		if m != nil {
			return fmt.Errorf("both claims_map and claims_map_file are set; keep one")
		}
		src, err := os.ReadFile(dc.ClaimsMapFile)
		if err != nil {
			return fmt.Errorf("reading the claim map: %w", err)
		}
		if m, err = claims.Parse(dc.ClaimsMapFile, src); err != nil {
			return err
		}
	} else if m != nil {
		if err := m.Compile(); err != nil {
			return fmt.Errorf("claims_map: %w", err)
		}
	}
	if m == nil {
		return nil
	}
	for _, u := range dom.Users {
		in := map[string]any{
			"sub": u.Subject, "preferred_username": u.PreferredUsername, "name": u.Name,
			"given_name": u.GivenName, "family_name": u.FamilyName, "email": u.Email, "email_verified": u.EmailVerified,
		}
		access := map[string]bool{}
		for _, c := range u.Claims {
			in[c.Name] = c.Value
			access[c.Name] = c.In == identity.ClaimAccess
		}
		out, err := m.Apply(in)
		if err != nil {
			return fmt.Errorf("user %q: claims_map: %w", u.PreferredUsername, err)
		}
		u.Claims = u.Claims[:0]
		for name, v := range out {
			if slices.Contains(profileFields, name) {
				continue
			}
			where := identity.ClaimIdentity
			if access[name] {
				where = identity.ClaimAccess
			}
			u.Claims = append(u.Claims, identity.CustomClaim{Name: name, Value: v, In: where})
		}
		slices.SortFunc(u.Claims, func(a, b identity.CustomClaim) int { return strings.Compare(a.Name, b.Name) })
	}
	return nil
}
