package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
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

	// PolicyFiles are YAML files in the Entrypage policy language. A
	// relative path is read from Caddy's working directory; the Caddyfile
	// adapter first resolves it against the directory of the Caddyfile that
	// names it. Default: none.
	PolicyFiles []string `json:"policy_files,omitempty"`

	// ClaimsMap transforms the users' custom claims whenever tokens are
	// minted, userinfo answers and policies run (claims transformation: mode
	// merge|filter and a list of transformations). Profile fields (sub,
	// preferred_username, name, given_name, family_name, email,
	// email_verified) may be read as sources; they are not rewritten. A
	// claim the map produces lands in the access token when an access claim
	// of that name went in, otherwise in the ID token; names the issuer sets
	// itself are refused. Default: none, the claims as configured.
	ClaimsMap *claims.Map `json:"claims_map,omitempty"`

	// ClaimsMapFile is a YAML claim map file (an alternative to ClaimsMap).
	// Relative paths are resolved as for PolicyFiles. Default: none.
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
	// Placeholders such as {env.ALICE_HASH} are replaced. It is the only way
	// a local user signs in, so an account that is not Disabled must have
	// one. Default: none.
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
	// (which must use PKCE). Use a placeholder: {env.WEBAPP_SECRET}. At
	// least 16 characters. Gatehouse keeps only its SHA-256 hash once the
	// configuration is loaded.
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
	// DenyLocalLogin hides the username/password form for this client. An
	// authorization_code client then needs Providers, so (until login
	// providers can be defined) it is refused. Default: false.
	DenyLocalLogin bool `json:"deny_local_login,omitempty"`
	// Providers are the federated login providers this client offers; each
	// must be a provider the domain defines. Login providers cannot be
	// defined yet, so any entry is refused. Default: none.
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

// compiledDomain is a domain's configuration, checked and built, before
// anything touches the store.
type compiledDomain struct {
	dom     *identity.Domain
	set     *policy.Set // nil without policies
	keys    keys.Config
	methods []authn.Method // nil: the password method alone
}

// compile checks the domain's whole configuration — users, clients, policy
// files, inline policies, the claim map, the signing settings — and returns
// every problem it finds, each naming the user, client or file it is about.
// It reads the policy and claim-map files and nothing else.
func (dc *DomainConfig) compile() (*compiledDomain, error) {
	var probs problems
	dom, err := dc.identity()
	probs.add("", err)
	set, err := dc.policySet()
	probs.add("", err)
	for _, c := range dc.Clients {
		if len(c.Policies) > 0 && err == nil { // not when the policies failed to compile
			probs.add("", clientPolicies(set, c))
		}
	}
	kcfg, err := dc.keysConfig(dom)
	probs.add("", err)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return &compiledDomain{dom: dom, set: set, keys: kcfg}, nil
}

// identity turns the configuration into the identity model, replacing
// placeholders in secrets and validating everything. It reports every
// problem, not only the first.
func (dc *DomainConfig) identity() (*identity.Domain, error) {
	repl := caddy.NewReplacer()
	var probs problems
	if dc.Issuer == "" {
		probs.add("", fmt.Errorf("the issuer URL is missing; add `issuer https://auth.example.com` to the domain"))
	}
	dom := &identity.Domain{DomainSettings: identity.DomainSettings{
		Name:             dc.Name,
		Issuer:           strings.TrimRight(dc.Issuer, "/"),
		SessionLifetime:  time.Duration(dc.SessionLifetime),
		SigningAlgorithm: dc.SigningAlgorithm,
		KeyRotation:      time.Duration(dc.KeyRotation),
	}}
	for i, u := range dc.Users {
		if u.Username == "" {
			probs.add("", fmt.Errorf("users[%d]: the username is missing; write `user <username> { ... }`", i))
			continue
		}
		iu, err := u.identity(repl)
		probs.add(fmt.Sprintf("user %q", u.Username), err)
		dom.Users = append(dom.Users, iu)
	}
	for _, c := range dc.Clients {
		ic, err := c.identity(repl)
		probs.add(fmt.Sprintf("client %q", c.ClientID), err)
		if c.Secret != "" && ic.SecretHash == "" {
			continue // reported; Validate would only repeat it
		}
		dom.Clients = append(dom.Clients, ic)
	}
	// The issuer applies the claim map whenever it mints tokens; Compile
	// tries it on every configured user first.
	m, err := dc.claimsMap()
	probs.add("", err)
	dom.ClaimsMap = m
	probs.add("", dom.Compile())
	if err := probs.err(); err != nil {
		return nil, err
	}
	return dom, nil
}

// identity builds the identity model of a user, placeholders replaced, and
// reports what keeps the user from signing in. The user is built even then.
func (u *UserConfig) identity(repl *caddy.Replacer) (*identity.User, error) {
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
	switch {
	case u.PasswordHash != "" && iu.PasswordHash == "":
		return iu, fmt.Errorf("password_hash %q expands to nothing; set the environment variable or file it names", u.PasswordHash)
	case iu.PasswordHash == "" && !u.Disabled:
		// A password is the only way a local user signs in (login
		// providers cannot be configured yet).
		return iu, fmt.Errorf("has no way to sign in: add a `password_hash` (`caddy hash-password` prints one), or mark the account `disabled`")
	}
	return iu, nil
}

// identity builds the identity model of a client, placeholders replaced and
// defaults applied, and reports what identity.Client.Validate cannot see.
// The client is built even then (without a secret when its placeholder
// expands to nothing). Only the secret's hash is kept: nothing in the
// process can present it again.
func (c *ClientConfig) identity(repl *caddy.Replacer) (*identity.Client, error) {
	secret := repl.ReplaceKnown(c.Secret, "")
	ic := &identity.Client{
		ID:                     c.ClientID,
		GrantTypes:             c.GrantTypes,
		Scopes:                 c.Scopes,
		Audiences:              c.Audiences,
		RedirectURIs:           c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		AllowedOrigins:         c.AllowedOrigins,
		AllowLocalLogin:        !c.DenyLocalLogin,
		Policies:               c.Policies,
		AllowPlainPKCE:         c.AllowPlainPKCE,
		RequirePKCE:            !c.OptionalPKCE,
		AccessTokenLifetime:    time.Duration(c.AccessTokenLifetime),
		IDTokenLifetime:        time.Duration(c.IDTokenLifetime),
		RefreshTokenLifetime:   time.Duration(c.RefreshTokenLifetime),

		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
	}
	var probs problems
	if c.Secret == "" {
		ic.Type = identity.Public
	} else {
		ic.Type = identity.Confidential
		if secret != "" {
			probs.add("", identity.CheckSecretStrength(secret))
			ic.SecretHash = identity.HashSecret(secret)
		}
	}
	if len(ic.GrantTypes) == 0 {
		ic.GrantTypes = []string{identity.GrantAuthorizationCode, identity.GrantRefreshToken}
	}
	if len(ic.Scopes) == 0 {
		ic.Scopes = []string{"openid", "profile", "email"}
	}
	if len(c.Providers) > 0 {
		// Only providers the domain defines reach the identity model, so
		// that deny_local_login is judged by what is really offered. No
		// login provider can be defined yet: every entry is unknown.
		probs.add("", fmt.Errorf("providers %v: the domain defines no login provider of that name (Gatehouse cannot define login providers yet); remove providers", c.Providers))
	}
	if c.Secret != "" && secret == "" {
		probs.add("", fmt.Errorf("its secret %q expands to nothing; set the environment variable or file it names", c.Secret))
	}
	return ic, probs.err()
}

// evalUser builds one configured user (found by username or e-mail) as the
// issuer holds it: placeholders replaced and the claim map applied. Problems
// elsewhere in the domain do not matter here.
func (dc *DomainConfig) evalUser(login string) (*identity.User, error) {
	repl := caddy.NewReplacer()
	for _, u := range dc.Users {
		if !strings.EqualFold(u.Username, login) && (u.Email == "" || !strings.EqualFold(u.Email, login)) {
			continue
		}
		iu, _ := u.identity(repl) // signing in is not what is evaluated
		m, err := dc.claimsMap()
		if err != nil {
			return nil, err
		}
		if iu.Claims, err = identity.MapClaims(m, iu); err != nil {
			return nil, fmt.Errorf("user %q: claims_map: %w", u.Username, err)
		}
		return iu, nil
	}
	return nil, fmt.Errorf("no user %q is configured", login)
}

// policySet compiles the inline policies and policy files. It returns nil
// when the domain has no policies.
func (dc *DomainConfig) policySet() (*policy.Set, error) {
	all, err := dc.policies()
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return policy.Compile(all)
}

// policies reads the domain's policies, inline and from its policy files,
// in that order (not compiled together: see policySet).
func (dc *DomainConfig) policies() ([]policy.Policy, error) {
	var probs problems
	all := append([]policy.Policy(nil), dc.Policies...)
	for _, f := range dc.PolicyFiles {
		src, err := readConfigFile("policy_file", f)
		if err != nil {
			probs.add("", err)
			continue
		}
		ps, err := policy.Parse(f, src)
		if err != nil {
			probs.add("", err)
			continue
		}
		all = append(all, ps...)
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return all, nil
}

// readConfigFile reads a file the configuration names (a policy file, a
// claim map). A relative path is read from Caddy's working directory (the
// Caddyfile adapter has already made paths relative to the Caddyfile's
// directory), so an error names the absolute path that was tried.
func readConfigFile(option, path string) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err == nil {
		return src, nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s %s: %w", option, path, err)
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		return nil, fmt.Errorf("%s %s: %w", option, path, err)
	}
	return nil, fmt.Errorf("%s %s: reading %s (relative to the working directory): %w", option, path, abs, err)
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
	if dom == nil {
		return cfg, nil
	}
	for _, c := range dom.Clients {
		longest = max(longest, c.AccessTokenLifetime, c.IDTokenLifetime)
	}
	cfg.MaxTokenLifetime = longest
	return cfg, nil
}

// claimsMap reads and compiles the domain's claim map; nil without one. The
// issuer applies it whenever it mints tokens (identity.MapClaims).
func (dc *DomainConfig) claimsMap() (*claims.Map, error) {
	m := dc.ClaimsMap
	if dc.ClaimsMapFile != "" {
		if m != nil {
			return nil, fmt.Errorf("both claims_map and claims_map_file are set; keep one")
		}
		src, err := readConfigFile("claims_map", dc.ClaimsMapFile)
		if err != nil {
			return nil, err
		}
		return claims.Parse(dc.ClaimsMapFile, src)
	}
	if m != nil {
		if err := m.Compile(); err != nil {
			return nil, fmt.Errorf("claims_map: %w", err)
		}
	}
	return m, nil
}
