package module

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("gatehouse", parseGateDirective)
	// After gatehouse_issuer (registered first, in caddyfile.go), before basic_auth.
	httpcaddyfile.RegisterDirectiveOrder("gatehouse", httpcaddyfile.Before, "basic_auth")
}

// parseGateDirective parses the `gatehouse` site directive:
//
//	gatehouse {
//		domain <name>
//		login <client_id>                 # through the embedded issuer
//		login {                            # or any OIDC provider
//			issuer <url>
//			client_id <id>
//			client_secret <secret>
//			scopes <scope...>
//			callback <path>
//			logout <path>
//			post_logout_redirect <path or url>
//			session_lifetime <duration>
//			refresh_before <duration>
//		}
//		bearer {
//			issuer <url>
//			jwks_url <url>
//			public_key <file>
//			audience <aud...>
//			scopes [any] <scope...>
//			algorithms <alg...>
//			leeway <duration>
//			typ <typ...>
//		}
//		policy <id...>
//		forward <header> <claim>
//		forward_subject_kind <header>     # user or client
//		forward_access_token              # Authorization: Bearer <access token>
//		forward_id_token                  # Authorization: Bearer <ID token>
//		userinfo <path>|off               # who am I; default /.gatehouse/userinfo
//	}
func parseGateDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	g := new(Gate)
	if h.NextArg() {
		return nil, h.Errf("unexpected %q; the gatehouse directive takes a block: `gatehouse { login <client> ... }`", h.Val())
	}
	for h.NextBlock(0) {
		key := h.Val()
		switch key {
		case "domain":
			v, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			g.Domain = v
		case "login":
			if g.Login != nil {
				return nil, h.Err("login is given twice; a protected site has one login")
			}
			l, err := parseGateLogin(h.Dispenser)
			if err != nil {
				return nil, err
			}
			g.Login = l
		case "bearer":
			b, err := parseGateBearer(h.Dispenser)
			if err != nil {
				return nil, err
			}
			g.Bearer = append(g.Bearer, b)
		case "policy":
			ids := h.RemainingArgs()
			if len(ids) == 0 {
				return nil, h.Err("policy needs at least one policy id: `policy admins-only`")
			}
			g.Policies = append(g.Policies, ids...)
		case "forward":
			args := h.RemainingArgs()
			if len(args) != 2 {
				return nil, h.Err("forward takes a header and a claim: `forward X-Auth-Email email`")
			}
			g.Forward = append(g.Forward, ForwardHeader{Header: args[0], Claim: args[1]})
		case "forward_subject_kind":
			v, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			g.ForwardSubjectKind = v
		case "forward_access_token", "forward_id_token":
			args := h.RemainingArgs()
			v := "Authorization"
			switch len(args) {
			case 0:
			case 1:
				if err := checkTokenHeader(key, args[0]); err != nil {
					return nil, h.Err(err.Error())
				}
			default:
				return nil, h.Errf("%s takes no argument: the token goes in Authorization: Bearer", key)
			}
			if key == "forward_access_token" {
				g.ForwardAccessToken = v
			} else {
				g.ForwardIDToken = v
			}
			if g.ForwardAccessToken != "" && g.ForwardIDToken != "" {
				return nil, h.Err("forward_access_token and forward_id_token both forward a token in the one Authorization header; keep one")
			}
		case "userinfo":
			v, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			if v != "off" && !strings.HasPrefix(v, "/") {
				return nil, h.Errf("userinfo must be a path starting with /, like %s, or off", defaultUserinfoPath)
			}
			g.UserinfoPath = v
		default:
			return nil, h.Errf("unknown gatehouse option %q; expected domain, login, bearer, policy, forward, forward_subject_kind, forward_access_token, forward_id_token or userinfo", key)
		}
	}
	if g.Login == nil && len(g.Bearer) == 0 {
		return nil, h.Err("the gatehouse directive needs `login <client>` (browser sessions), a `bearer { ... }` block (APIs), or both")
	}
	return g, nil
}

func parseGateLogin(d *caddyfile.Dispenser) (*GateLogin, error) {
	l := new(GateLogin)
	if d.NextArg() {
		l.Client = d.Val()
		if d.NextArg() {
			return nil, d.Errf("unexpected %q; write `login <client_id>` or a login block", d.Val())
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		switch key {
		case "issuer", "client_id", "client_secret", "callback", "logout", "post_logout_redirect":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			switch key {
			case "issuer":
				l.Issuer = v
			case "client_id":
				if l.Client != "" {
					return nil, d.Errf("the client is named twice (%q and %q); keep one", l.Client, v)
				}
				l.Client = v
			case "client_secret":
				l.ClientSecret = v
			case "callback":
				l.CallbackPath = v
			case "logout":
				l.LogoutPath = v
			case "post_logout_redirect":
				l.PostLogoutRedirect = v
			}
			if (key == "callback" || key == "logout") && !strings.HasPrefix(v, "/") {
				return nil, d.Errf("%s must be a path starting with /, like /.gatehouse/%s", key, key)
			}
		case "scopes":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return nil, d.Err("scopes needs at least one scope")
			}
			l.Scopes = append(l.Scopes, vals...)
		case "session_lifetime":
			dur, err := parseDurationArg(d)
			if err != nil {
				return nil, err
			}
			l.SessionLifetime = dur
		case "refresh_before":
			dur, err := parseDurationArg(d)
			if err != nil {
				return nil, err
			}
			l.RefreshBefore = dur
		default:
			return nil, d.Errf("unknown login option %q; expected issuer, client_id, client_secret, scopes, callback, logout, post_logout_redirect, session_lifetime or refresh_before", key)
		}
	}
	if l.Client == "" {
		return nil, d.Err("login needs a client: `login <client_id>` for the embedded issuer, or `client_id` inside the login block")
	}
	if l.ClientSecret != "" && l.Issuer == "" {
		return nil, d.Err("client_secret is only for an external provider (with `issuer`); the embedded issuer's clients are configured in the gatehouse global option")
	}
	return l, nil
}

func parseGateBearer(d *caddyfile.Dispenser) (*GateBearer, error) {
	b := new(GateBearer)
	if d.NextArg() {
		return nil, d.Errf("unexpected %q; bearer takes a block: `bearer { audience https://api.example.com }`", d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		switch key {
		case "issuer", "jwks_url", "public_key":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			switch key {
			case "issuer":
				b.Issuer = v
			case "jwks_url":
				b.JWKSURL = v
			case "public_key":
				b.PublicKeyFile = v
			}
		case "audience", "algorithms", "typ":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return nil, d.Errf("%s needs at least one value", key)
			}
			switch key {
			case "audience":
				b.Audiences = append(b.Audiences, vals...)
			case "algorithms":
				for _, a := range vals {
					if a == "none" || strings.HasPrefix(a, "HS") {
						return nil, d.Errf("algorithm %q is not allowed for bearer tokens; use asymmetric algorithms (RS256, PS256, ES256, EdDSA, ...)", a)
					}
				}
				b.Algorithms = append(b.Algorithms, vals...)
			case "typ":
				b.Types = append(b.Types, vals...)
			}
		case "scopes":
			vals := d.RemainingArgs()
			if len(vals) > 0 && vals[0] == "any" {
				b.ScopesAny = true
				vals = vals[1:]
			} else if len(vals) > 0 && vals[0] == "all" {
				vals = vals[1:]
			}
			if len(vals) == 0 {
				return nil, d.Err("scopes needs at least one scope: `scopes orders:read` (all of them) or `scopes any a b`")
			}
			b.Scopes = append(b.Scopes, vals...)
		case "leeway":
			dur, err := parseDurationArg(d)
			if err != nil {
				return nil, err
			}
			b.Leeway = dur
		default:
			return nil, d.Errf("unknown bearer option %q; expected issuer, jwks_url, public_key, audience, scopes, algorithms, leeway or typ", key)
		}
	}
	if b.PublicKeyFile != "" && b.Issuer == "" {
		return nil, d.Err("a bearer block with public_key needs the expected `issuer` of its tokens")
	}
	if b.JWKSURL != "" && b.Issuer == "" {
		return nil, d.Err("a bearer block with jwks_url needs the expected `issuer` of its tokens")
	}
	return b, nil
}
