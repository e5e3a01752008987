package module

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

func init() {
	caddy.RegisterModule(PasswordLoginMethod{})
}

// LoginMethodModule is implemented by the guest modules in the
// gatehouse.login_methods namespace. Like caddyauth's providers, each
// configures one way of signing in at a domain's issuer; after Provision it
// provides the method the issuer runs, which owns the routes
// <issuer>/login/<name>/... and its section of the login page.
type LoginMethodModule interface {
	// LoginMethod returns the method for the domain that lists the module.
	LoginMethod() (LoginMethod, error)
}

// The sign-in seam, under names a login-method module outside this module
// can write (the seam's package is internal): see package authn.
type (
	LoginMethod         = authn.Method
	LoginHost           = authn.Host
	LoginTransaction    = authn.Transaction
	LoginView           = authn.View
	LoginAuthentication = authn.Authentication
	LoginExternal       = authn.External
	LoginClient         = identity.Client
)

// PasswordLoginMethod signs local users in with a username or e-mail address
// and a password (amr "pwd"): the form of the login page, posted to
// <issuer>/login/password. It is offered to every client but those with
// deny_local_login, and it is the domain's only method when the domain
// lists none. Failed attempts are throttled per account and per client
// address.
type PasswordLoginMethod struct{}

// CaddyModule returns the Caddy module information.
func (PasswordLoginMethod) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "gatehouse.login_methods.password",
		New: func() caddy.Module { return new(PasswordLoginMethod) },
	}
}

// LoginMethod implements LoginMethodModule.
func (PasswordLoginMethod) LoginMethod() (LoginMethod, error) { return authn.Password{}, nil }

// UnmarshalCaddyfile parses `login_method password`, which takes no options.
func (*PasswordLoginMethod) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the method's name
	if d.NextArg() {
		return d.Errf("unexpected %q; write `login_method password`", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("the password login method takes no options; remove %q", d.Val())
	}
	return nil
}

// parseLoginMethod parses `login_method <name> [...] [{ ... }]` in a domain
// block with the method module's own Caddyfile parser.
func parseLoginMethod(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("login_method needs the method's name, e.g. `login_method password`")
	}
	name := d.Val()
	id := "gatehouse.login_methods." + name
	if _, err := caddy.GetModule(id); err != nil {
		var known []string
		for _, m := range caddy.GetModules("gatehouse.login_methods") {
			known = append(known, m.ID.Name())
		}
		slices.Sort(known)
		return nil, d.Errf("unknown login method %q; this build has %s", name, strings.Join(known, ", "))
	}
	unm, err := caddyfile.UnmarshalModule(d, id)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "method", name, nil), nil
}

// loginMethods loads the domain's login methods; nil when it lists none
// (the issuer then runs the password method alone).
func loginMethods(ctx caddy.Context, dc *DomainConfig) ([]authn.Method, error) {
	if len(dc.LoginMethodsRaw) == 0 {
		return nil, nil
	}
	mods, err := ctx.LoadModule(dc, "LoginMethodsRaw")
	if err != nil {
		return nil, fmt.Errorf("loading the login methods: %w", err)
	}
	var out []authn.Method
	for _, mod := range mods.([]any) {
		lm, ok := mod.(LoginMethodModule)
		if !ok {
			return nil, fmt.Errorf("module %T is not a Gatehouse login method", mod)
		}
		m, err := lm.LoginMethod()
		if err != nil {
			return nil, fmt.Errorf("login method %s: %w", caddy.GetModuleName(mod), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Interface guards
var (
	_ LoginMethodModule     = PasswordLoginMethod{}
	_ caddyfile.Unmarshaler = (*PasswordLoginMethod)(nil)
)
