package module

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(PolicyMatcher{})
}

// claimsVar is the request variable in which the gate leaves the
// authenticated user's claims for matchers and handlers after it.
const claimsVar = "gatehouse.claims"

// PolicyMatcher matches requests whose user — authenticated by a gatehouse
// handler earlier in the same route — satisfies at least one of the named
// policies. A request that no gate authenticated never matches.
//
//	route {
//		gatehouse { login webapp }
//		@admins gatehouse_policy admins-only
//		handle @admins { reverse_proxy admin:8080 }
//		handle { reverse_proxy app:8080 }
//	}
type PolicyMatcher struct {
	// Policies are policy ids of the domain; at least one must hold.
	Policies []string `json:"policies,omitempty"`
	// Domain names the gatehouse domain that defines the policies. Empty:
	// the default domain.
	Domain string `json:"domain,omitempty"`

	policies *policyRef
}

// CaddyModule returns the Caddy module information.
func (PolicyMatcher) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.gatehouse_policy",
		New: func() caddy.Module { return new(PolicyMatcher) },
	}
}

// UnmarshalCaddyfile parses `gatehouse_policy [domain=<name>] <id...>`.
func (m *PolicyMatcher) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() {
		for d.NextArg() {
			v := d.Val()
			if name, ok := strings.CutPrefix(v, "domain="); ok {
				m.Domain = name
				continue
			}
			m.Policies = append(m.Policies, v)
		}
		if d.NextBlock(0) {
			return d.Err("gatehouse_policy takes policy ids, not a block: `@admins gatehouse_policy admins-only`")
		}
	}
	if len(m.Policies) == 0 {
		return d.Err("gatehouse_policy needs at least one policy id: `@admins gatehouse_policy admins-only`")
	}
	return nil
}

// Provision resolves the policies in the gatehouse app. For a configured
// domain they must be defined by its configuration now or by the store when
// the app starts; a domain stored through the management API is read when
// requests come (a policy it lacks matches nobody).
func (m *PolicyMatcher) Provision(ctx caddy.Context) error {
	if len(m.Policies) == 0 {
		return fmt.Errorf("gatehouse_policy: no policy ids given")
	}
	app, err := loadApp(ctx, "gatehouse_policy")
	if err != nil {
		return err
	}
	configured, err := app.handlerDomain("gatehouse_policy", m.Domain)
	if err != nil {
		return err
	}
	m.policies = app.policyRef("gatehouse_policy", m.Domain, m.Policies, configured, ctx.Logger())
	return nil
}

// Match reports whether the authenticated user satisfies a policy of the
// domain's current snapshot; never when they cannot be applied.
func (m *PolicyMatcher) Match(r *http.Request) bool {
	claims, ok := caddyhttp.GetVar(r.Context(), claimsVar).(map[string]any)
	if !ok {
		return false
	}
	d, err := m.policies.evaluate(r.Context(), claims)
	return err == nil && d.Allow
}

// Interface guards
var (
	_ caddy.Provisioner        = (*PolicyMatcher)(nil)
	_ caddyhttp.RequestMatcher = (*PolicyMatcher)(nil)
	_ caddyfile.Unmarshaler    = (*PolicyMatcher)(nil)
)
