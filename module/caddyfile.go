package module

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/gatehouse-auth/gatehouse/policy"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("gatehouse", parseGlobalOption)
	httpcaddyfile.RegisterDirective("gatehouse_issuer", parseIssuerRoute)
	httpcaddyfile.RegisterDirectiveOrder("gatehouse_issuer", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption parses the `gatehouse` global option:
//
//	gatehouse {
//		store <backend> ...   (sqlite [<path>] | postgres <dsn> | any gatehouse.stores module)
//		cleanup_interval <duration>
//		revocation_poll <duration>
//		key_encryption_key <secret> [<older secret>...]
//		domain [<name>] {
//			issuer <url>
//			signing_algorithm RS256|ES256|EdDSA
//			key_rotation <duration>
//			session_lifetime <duration>
//			claims_map <path>
//			policy_file <path>
//			policy <id> { description <text>; all|any { rule { claim ... } } }
//			user <username> { ... }
//			client <client_id> { ... }
//			login_method <name> [{ ... }]
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		return nil, d.Err("the gatehouse global option is given twice; merge both blocks into one")
	}
	d.Next() // "gatehouse"
	if d.NextArg() {
		return nil, d.Errf("unexpected %q after gatehouse; the global option takes only a block: `gatehouse { domain { issuer https://... } }`", d.Val())
	}
	var probs problems
	probs.add("", eachEntry(d, func(d *caddyfile.Dispenser) error {
		switch d.Val() {
		case "store":
			if app.StoreRaw != nil {
				return d.Errf("store is given twice; keep one %s", storeUsages())
			}
			if !d.NextArg() {
				return d.Errf("store needs a backend: %s", storeUsages())
			}
			// Stores are guest modules (gatehouse.stores.<backend>); each
			// reads its own Caddyfile arguments.
			backend := d.Val()
			if _, err := caddy.GetModule(storeNamespace + "." + backend); err != nil {
				return d.Errf("unknown store %q; use %s", backend, storeUsages())
			}
			st, err := caddyfile.UnmarshalModule(d, storeNamespace+"."+backend)
			if err != nil {
				return err
			}
			app.StoreRaw = caddyconfig.JSONModuleObject(st, "backend", backend, nil)
		case "cleanup_interval":
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			app.CleanupInterval = dur
		case "key_encryption_key":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return d.Err("key_encryption_key needs a secret of at least 32 bytes, e.g. `key_encryption_key {env.GATEHOUSE_KEY_ENCRYPTION_KEY}` (generate one with `openssl rand -base64 32`); list older secrets after it while keys sealed with them are still published")
			}
			if len(app.KeyEncryptionKeys) > 0 {
				return d.Err("key_encryption_key is given twice; list every secret on one line, the current one first")
			}
			app.KeyEncryptionKeys = vals
		case "revocation_poll":
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			app.RevocationPoll = dur
		case "domain":
			dc, err := parseDomain(d)
			if dc != nil {
				app.Domains = append(app.Domains, dc)
			}
			return err
		default:
			return d.Errf("unknown gatehouse option %q; expected store, cleanup_interval, revocation_poll, key_encryption_key or domain", d.Val())
		}
		return nil
	}))
	if err := probs.err(); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "gatehouse", Value: caddyconfig.JSON(app, nil)}, nil
}

// eachEntry calls parse for every entry of the block that follows d's
// current token, each with a dispenser of its own holding the entry's line
// and block (positioned on its first token), and collects their errors: a
// mistake in one entry is reported and parsing goes on with the next, so
// one run reports every problem.
func eachEntry(d *caddyfile.Dispenser, parse func(entry *caddyfile.Dispenser) error) error {
	var probs problems
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		e := d.NewFromNextSegment()
		e.Next()
		probs.add("", parse(e))
	}
	return probs.err()
}

// besideCaddyfile resolves a relative file path given in a Caddyfile
// against the directory of the Caddyfile that names it, as `import` does.
// Paths with placeholders and paths in a Caddyfile in the working
// directory are left as they are.
func besideCaddyfile(d *caddyfile.Dispenser, path string) string {
	if path == "" || filepath.IsAbs(path) || strings.Contains(path, "{") {
		return path
	}
	dir := filepath.Dir(d.File())
	if d.File() == "" || dir == "." {
		return path
	}
	return filepath.Join(dir, path)
}

func parseDomain(d *caddyfile.Dispenser) (*DomainConfig, error) {
	dc := new(DomainConfig)
	if d.NextArg() {
		dc.Name = d.Val()
		if d.NextArg() {
			return nil, d.Errf("unexpected %q after the domain name; write `domain [name] {`", d.Val())
		}
	}
	var probs problems
	probs.add(domainWhere(dc.Name), eachEntry(d, func(d *caddyfile.Dispenser) error {
		switch d.Val() {
		case "issuer":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dc.Issuer = v
		case "signing_algorithm":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch v {
			case "RS256", "ES256", "EdDSA":
			default:
				return d.Errf("signing_algorithm %q is not supported; use RS256, ES256 or EdDSA", v)
			}
			dc.SigningAlgorithm = v
		case "key_rotation":
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			dc.KeyRotation = dur
		case "session_lifetime":
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			dc.SessionLifetime = dur
		case "claims_map":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dc.ClaimsMapFile = besideCaddyfile(d, v)
		case "policy_file":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dc.PolicyFiles = append(dc.PolicyFiles, besideCaddyfile(d, v))
		case "policy":
			p, err := parsePolicy(d)
			if err != nil {
				return within("policy", p.ID, err)
			}
			dc.Policies = append(dc.Policies, p)
		case "user":
			u, err := parseUser(d)
			if err != nil {
				return within("user", u.Username, err)
			}
			dc.Users = append(dc.Users, u)
		case "client":
			c, err := parseClient(d)
			if err != nil {
				return within("client", c.ClientID, err)
			}
			dc.Clients = append(dc.Clients, c)
		case "login_method":
			m, err := parseLoginMethod(d)
			if err != nil {
				return err
			}
			dc.LoginMethodsRaw = append(dc.LoginMethodsRaw, m)
		default:
			return d.Errf("unknown domain option %q; expected issuer, signing_algorithm, key_rotation, session_lifetime, claims_map, policy_file, policy, user, client or login_method", d.Val())
		}
		return nil
	}))
	if dc.Issuer == "" {
		probs.add(domainWhere(dc.Name), d.Err("no issuer; add `issuer https://auth.example.com` inside the domain block"))
	}
	return dc, probs.err()
}

// within prefixes every problem of err with the object it is about, e.g.
// `user "alice"`; an object without a name adds no prefix.
func within(kind, name string, err error) error {
	if name == "" {
		return err
	}
	var probs problems
	probs.add(fmt.Sprintf("%s %q", kind, name), err)
	return probs.err()
}

func parseUser(d *caddyfile.Dispenser) (*UserConfig, error) {
	u := new(UserConfig)
	if !d.NextArg() {
		return u, d.Err("user needs a username: `user alice { ... }`")
	}
	u.Username = d.Val()
	if d.NextArg() {
		return u, d.Errf("unexpected %q after the username; put settings inside `user %s { ... }`", d.Val(), u.Username)
	}
	return u, eachEntry(d, func(d *caddyfile.Dispenser) error {
		key := d.Val()
		switch key {
		case "sub", "name", "given_name", "family_name", "email", "password_hash":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch key {
			case "sub":
				u.Subject = v
			case "name":
				u.Name = v
			case "given_name":
				u.GivenName = v
			case "family_name":
				u.FamilyName = v
			case "email":
				u.Email = v
			case "password_hash":
				u.PasswordHash = v
			}
		case "email_verified":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return d.Errf("email_verified must be true or false, not %q", v)
			}
			u.EmailVerified = &b
		case "disabled":
			if d.NextArg() {
				return d.Errf("disabled takes no value; remove %q", d.Val())
			}
			u.Disabled = true
		case "claims", "access_claims":
			if d.NextArg() {
				return d.Errf("%s takes a block: `%s { groups admins dev }`", key, key)
			}
			m := map[string]any{}
			for n := d.Nesting(); d.NextBlock(n); {
				name := d.Val()
				vals := d.RemainingArgs()
				if len(vals) == 0 {
					return d.Errf("claim %q has no value; write `%s value [value...]`", name, name)
				}
				if _, dup := m[name]; dup {
					return d.Errf("claim %q is given twice; list every value on one line", name)
				}
				m[name] = claimValue(vals)
			}
			if key == "claims" {
				u.Claims = m
			} else {
				u.AccessClaims = m
			}
		default:
			return d.Errf("unknown user option %q; expected sub, name, given_name, family_name, email, email_verified, password_hash, disabled, claims or access_claims", key)
		}
		return nil
	})
}

// claimValue turns Caddyfile tokens into a claim: one token is a scalar
// (true/false become booleans, numbers become numbers), several are a list
// of strings. A single-element list is written with brackets: `[admins]`.
func claimValue(vals []string) any {
	if len(vals) == 1 {
		v := vals[0]
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			inner := strings.TrimSpace(v[1 : len(v)-1])
			if inner == "" {
				return []any{}
			}
			return []any{inner}
		}
		if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			return b
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil && json.Valid([]byte(v)) {
			return f
		}
		return v
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}

func parseClient(d *caddyfile.Dispenser) (*ClientConfig, error) {
	c := new(ClientConfig)
	if !d.NextArg() {
		return c, d.Err("client needs a client id: `client webapp { ... }`")
	}
	c.ClientID = d.Val()
	if d.NextArg() {
		return c, d.Errf("unexpected %q after the client id; put settings inside `client %s { ... }`", d.Val(), c.ClientID)
	}
	return c, eachEntry(d, func(d *caddyfile.Dispenser) error {
		key := d.Val()
		switch key {
		case "secret":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			c.Secret = v
		case "grant_types", "scopes", "audience", "redirect_uris", "post_logout_redirect_uris", "allowed_origins", "providers", "policies":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return d.Errf("%s needs at least one value", key)
			}
			switch key {
			case "grant_types":
				for _, g := range vals {
					switch g {
					case "authorization_code", "refresh_token", "client_credentials":
					case "implicit", "password":
						return d.Errf("grant type %q is not offered (it is unsafe); use authorization_code with PKCE", g)
					default:
						return d.Errf("unknown grant type %q; use authorization_code, refresh_token or client_credentials", g)
					}
				}
				c.GrantTypes = append(c.GrantTypes, vals...)
			case "scopes":
				c.Scopes = append(c.Scopes, vals...)
			case "audience":
				c.Audiences = append(c.Audiences, vals...)
			case "redirect_uris":
				c.RedirectURIs = append(c.RedirectURIs, vals...)
			case "post_logout_redirect_uris":
				c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, vals...)
			case "allowed_origins":
				c.AllowedOrigins = append(c.AllowedOrigins, vals...)
			case "providers":
				c.Providers = append(c.Providers, vals...)
			case "policies":
				c.Policies = append(c.Policies, vals...)
			}
		case "deny_local_login", "allow_plain_pkce", "optional_pkce", "backchannel_logout_session_required":
			if d.NextArg() {
				return d.Errf("%s takes no value; remove %q", key, d.Val())
			}
			switch key {
			case "deny_local_login":
				c.DenyLocalLogin = true
			case "allow_plain_pkce":
				c.AllowPlainPKCE = true
			case "optional_pkce":
				c.OptionalPKCE = true
			case "backchannel_logout_session_required":
				c.BackchannelLogoutSessionRequired = true
			}
		case "backchannel_logout_uri":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			c.BackchannelLogoutURI = v
		case "access_token_lifetime", "id_token_lifetime", "refresh_token_lifetime":
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			switch key {
			case "access_token_lifetime":
				c.AccessTokenLifetime = dur
			case "id_token_lifetime":
				c.IDTokenLifetime = dur
			case "refresh_token_lifetime":
				c.RefreshTokenLifetime = dur
			}
		default:
			return d.Errf("unknown client option %q; expected secret, grant_types, scopes, audience, redirect_uris, post_logout_redirect_uris, allowed_origins, providers, policies, deny_local_login, allow_plain_pkce, optional_pkce, backchannel_logout_uri, backchannel_logout_session_required or a *_token_lifetime", key)
		}
		return nil
	})
}

// parsePolicy parses an inline policy; its shape mirrors the YAML language:
//
//	policy admins-only {
//		description "Only admins"
//		all {                 # or any
//			rule {
//				claim groups
//				in admins ops
//				not-in banned
//				minValue 1
//				maxValue 9
//				matches ^.+@example\.com$   # extension
//				exists false                # extension
//			}
//			any { rule { ... } }          # nested group (extension)
//		}
//	}
func parsePolicy(d *caddyfile.Dispenser) (policy.Policy, error) {
	var p policy.Policy
	if !d.NextArg() {
		return p, d.Err("policy needs an id: `policy admins-only { ... }`")
	}
	p.ID = d.Val()
	if d.NextArg() {
		return p, d.Errf("unexpected %q after the policy id; to load policies from YAML use `policy_file <path>`", d.Val())
	}
	err := eachEntry(d, func(d *caddyfile.Dispenser) error {
		switch d.Val() {
		case "description":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			p.Description = v
		case "all", "any":
			kind := d.Val()
			if p.All != nil || p.Any != nil {
				return d.Err("more than one all/any section; a policy has exactly one of them")
			}
			rules, err := parseRules(d, 1)
			if err != nil {
				return err
			}
			if len(rules) == 0 {
				return d.Errf("the %s section has no rules; add at least one `rule { claim ... }`", kind)
			}
			if kind == "all" {
				p.All = rules
			} else {
				p.Any = rules
			}
		default:
			return d.Errf("unknown policy option %q; expected description, all or any", d.Val())
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if p.All == nil && p.Any == nil {
		return p, d.Err("no rules; add an `all { ... }` or `any { ... }` section")
	}
	return p, nil
}

const maxPolicyDepth = 16

func parseRules(d *caddyfile.Dispenser, depth int) ([]policy.Rule, error) {
	if depth > maxPolicyDepth {
		return nil, d.Errf("policy groups are nested more than %d deep; flatten them", maxPolicyDepth)
	}
	if d.NextArg() {
		return nil, d.Errf("unexpected %q; %s takes a block of rules", d.Val(), d.Val())
	}
	var rules []policy.Rule
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "rule":
			r, err := parseRule(d)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		case "all", "any":
			kind := d.Val()
			sub, err := parseRules(d, depth+1)
			if err != nil {
				return nil, err
			}
			if len(sub) == 0 {
				return nil, d.Errf("nested %s group has no rules", kind)
			}
			if kind == "all" {
				rules = append(rules, policy.Rule{All: sub})
			} else {
				rules = append(rules, policy.Rule{Any: sub})
			}
		default:
			return nil, d.Errf("unknown entry %q in a rule list; expected rule, all or any", d.Val())
		}
	}
	return rules, nil
}

func parseRule(d *caddyfile.Dispenser) (policy.Rule, error) {
	var r policy.Rule
	if d.NextArg() {
		return r, d.Errf("unexpected %q after rule; write `rule { claim <name> ... }`", d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		switch key {
		case "claim", "minValue", "maxValue", "matches", "exists":
			v, err := oneArg(d)
			if err != nil {
				return r, err
			}
			switch key {
			case "claim":
				r.Claim = v
			case "minValue":
				r.MinValue = &v
			case "maxValue":
				r.MaxValue = &v
			case "matches":
				r.Matches = v
			case "exists":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return r, d.Errf("exists must be true or false, not %q", v)
				}
				r.Exists = &b
			}
		case "in", "not-in":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return r, d.Errf("%s needs at least one value", key)
			}
			if key == "in" {
				r.In = append(r.In, vals...)
			} else {
				r.NotIn = append(r.NotIn, vals...)
			}
		default:
			return r, d.Errf("unknown rule option %q; expected claim, in, not-in, minValue, maxValue, matches or exists", key)
		}
	}
	if r.Claim == "" {
		return r, d.Err("a rule has no claim; every rule needs `claim <name>`")
	}
	return r, nil
}

// parseIssuerRoute parses `gatehouse_issuer [<matcher>] [<domain>|*]` into a
// route. It is a handler directive but for one thing: Caddy reads a lone
// `*` after a directive as the match-everything matcher, while
// `gatehouse_issuer *` means every domain (as `gatehouse_issuer * *` and
// `gatehouse_issuer @m *` do).
func parseIssuerRoute(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	var matcherSet caddy.ModuleMap
	if args := h.RemainingArgs(); len(args) == 1 && args[0] == wildcardDomain {
		h.Reset()
	} else {
		h.Reset()
		h.Next()
		var err error
		if matcherSet, err = h.ExtractMatcherSet(); err != nil {
			return nil, err
		}
	}
	ih, err := parseIssuerDirective(h)
	if err != nil {
		return nil, err
	}
	return h.NewRoute(matcherSet, ih), nil
}

// parseIssuerDirective parses `gatehouse_issuer [<domain>|*]` (its matcher
// already taken).
func parseIssuerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // directive name
	ih := new(IssuerHandler)
	if h.NextArg() {
		ih.Domain = h.Val()
	}
	if h.NextArg() {
		return nil, h.Errf("unexpected %q; write `gatehouse_issuer [domain]`", h.Val())
	}
	if h.NextBlock(0) {
		return nil, h.Err("gatehouse_issuer takes no block; configure the domain in the gatehouse global option")
	}
	return ih, nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	key := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s needs a value", key)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s takes one value, but %q follows it; quote the value if it contains spaces", key, d.Val())
	}
	return v, nil
}

func parseDurationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	key := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s %q is not a positive duration; write e.g. 10m, 12h or 30d", key, v)
	}
	return caddy.Duration(dur), nil
}
