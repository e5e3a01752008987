package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// site is where a gate serves, as far as the http app's configuration says:
// the host names its route matchers name and the ports its server listens
// on.
type site struct {
	// hosts are the host names of the route's host matchers; nil when a
	// route on the way to the gate matches any host (then the gate's host
	// names are not known).
	hosts []string
	// ports the server listens on.
	ports []string
	// tls: the server has TLS connection policies (its sites are https).
	tls bool
}

// gateSites finds the sites of the gate being provisioned in ctx. A handler
// is not told which route it belongs to, so the gate is looked up by its
// configuration: every gatehouse handler with the same configuration in a
// route the http app has not finished provisioning (its own route is one of
// them) is returned. Each is a real gate with this configuration, so what
// must hold for one must hold for all. Nil when the gate is not provisioned
// by the http app (or its configuration cannot be found).
func gateSites(ctx caddy.Context, g *Gate) []site {
	mods := ctx.Modules()
	if len(mods) == 0 {
		return nil
	}
	app, ok := mods[0].(*caddyhttp.App)
	if !ok {
		return nil
	}
	self, err := json.Marshal(g)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(app.Servers))
	for name := range app.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var sites []site
	for _, name := range names {
		srv := app.Servers[name]
		var ports []string
		for _, l := range srv.Listen {
			if addr, err := caddy.ParseNetworkAddress(l); err == nil {
				for p := addr.StartPort; p <= addr.EndPort && p-addr.StartPort < 16; p++ {
					ports = append(ports, fmt.Sprint(p))
				}
			}
		}
		tls := len(srv.TLSConnPolicies) > 0
		for _, r := range srv.Routes {
			hosts, any := matcherHosts(r.MatcherSets)
			if r.MatcherSetsRaw != nil {
				hosts, any = rawMatcherHosts(r.MatcherSetsRaw)
			}
			for _, h := range r.HandlersRaw {
				findGates(h, self, hosts, any, func(hosts []string) {
					sites = append(sites, site{hosts: hosts, ports: ports, tls: tls})
				})
			}
		}
	}
	return sites
}

// findGates calls found with the host names of every gatehouse handler in
// raw (a handler's JSON, subroutes followed) whose configuration is self.
// anyHost: a route on the way matches any host.
func findGates(raw json.RawMessage, self []byte, hosts []string, anyHost bool, found func(hosts []string)) {
	var h struct {
		Handler string `json:"handler"`
		Routes  []struct {
			Match  caddy.ModuleMap   `json:"match"`
			Handle []json.RawMessage `json:"handle"`
		} `json:"routes"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return
	}
	switch h.Handler {
	case "gatehouse":
		var other Gate
		if json.Unmarshal(raw, &other) != nil {
			return
		}
		if b, err := json.Marshal(&other); err == nil && bytes.Equal(b, self) {
			if anyHost {
				hosts = nil
			}
			found(hosts)
		}
	case "subroute":
		for _, r := range h.Routes {
			sub, subAny := hosts, anyHost
			if len(r.Match) > 0 {
				// A nested host matcher narrows the site.
				if nested, nAny := rawMatcherHosts([]caddy.ModuleMap{r.Match}); !nAny {
					sub, subAny = nested, false
				}
			}
			for _, hr := range r.Handle {
				findGates(hr, self, sub, subAny, found)
			}
		}
	}
}

// matcherHosts lists the host names of provisioned matcher sets; anyHost
// when a set has no host matcher (or there are no sets).
func matcherHosts(sets caddyhttp.MatcherSets) (hosts []string, anyHost bool) {
	if len(sets) == 0 {
		return nil, true
	}
	for _, set := range sets {
		var in []string
		for _, m := range set {
			if mh, ok := m.(*caddyhttp.MatchHost); ok {
				in = append(in, *mh...)
			}
		}
		if in == nil {
			return nil, true
		}
		hosts = append(hosts, in...)
	}
	return hosts, false
}

// rawMatcherHosts is matcherHosts for matcher sets not provisioned yet.
func rawMatcherHosts(sets []caddy.ModuleMap) (hosts []string, anyHost bool) {
	if len(sets) == 0 {
		return nil, true
	}
	for _, set := range sets {
		var in []string
		if raw, ok := set["host"]; ok && json.Unmarshal(raw, &in) != nil {
			in = nil
		}
		if in == nil {
			return nil, true
		}
		hosts = append(hosts, in...)
	}
	return hosts, false
}

// urls are the site's base URLs, for the start-up log.
func (s site) urls() []string {
	var out []string
	for _, h := range s.hosts {
		for _, p := range s.ports {
			switch {
			case p == "443":
				out = append(out, "https://"+h)
			case p == "80" && !s.tls:
				out = append(out, "http://"+h)
			case s.tls:
				out = append(out, "https://"+net.JoinHostPort(h, p))
			default:
				out = append(out, "http://"+net.JoinHostPort(h, p))
			}
		}
	}
	return out
}

// reportGate reports a gate's provisioning error naming the gate's site
// (when the routes name it).
func reportGate(g *Gate, err error) error {
	if err == nil {
		return nil
	}
	var hosts []string
	for _, s := range g.sites {
		for _, h := range s.hosts {
			if !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
	}
	where := "gatehouse gate"
	if len(hosts) > 0 {
		where += " on " + strings.Join(hosts, ", ")
	}
	var p problems
	for _, e := range leaves(err) {
		// The gate's own messages start with the directive's name.
		if msg, ok := strings.CutPrefix(e.Error(), "gatehouse: "); ok {
			e = retold{msg, e}
		}
		p.add(where, e)
	}
	return reported(p)
}

// retold is an error told in other words; errors.Is and errors.As still
// see the original.
type retold struct {
	msg string
	err error
}

func (r retold) Error() string { return r.msg }
func (r retold) Unwrap() error { return r.err }

// checkCallbackRegistered checks that an embedded-issuer client can send a
// gate's users back: one of its redirect URIs must be the gate's callback
// path, on one of the gate's host names wherever they are known. The gate
// builds its redirect URI from the request's host and the callback path, and
// the issuer matches redirect URIs exactly, so a login that would fail on
// every request is reported now.
func checkCallbackRegistered(c *identity.Client, callbackPath string, sites []site) error {
	type uri struct{ host, path string }
	var registered []uri
	for _, r := range c.RedirectURIs {
		if u, err := url.Parse(r); err == nil {
			registered = append(registered, uri{strings.ToLower(u.Hostname()), u.EscapedPath()})
		}
	}
	onPath := slices.ContainsFunc(registered, func(u uri) bool { return u.path == callbackPath })
	if !onPath {
		return fmt.Errorf("client %q has no redirect URI with the gate's callback path %s (its redirect_uris: %s); add `redirect_uris https://<this site>%s` to the client, or set the login's `callback` to the path it registered",
			c.ID, callbackPath, strings.Join(c.RedirectURIs, " "), callbackPath)
	}
	for _, s := range sites {
		if s.hosts == nil {
			continue
		}
		ok := slices.ContainsFunc(registered, func(u uri) bool {
			return u.path == callbackPath && slices.ContainsFunc(s.hosts, func(h string) bool { return hostMatches(h, u.host) })
		})
		if !ok {
			return fmt.Errorf("client %q has no redirect URI for the gate's site %s (its redirect_uris: %s); add `redirect_uris %s` to the client",
				c.ID, strings.Join(s.hosts, " "), strings.Join(c.RedirectURIs, " "), exampleCallback(s, callbackPath))
		}
	}
	return nil
}

// hostMatches reports whether a host matcher's pattern (a name, or a
// wildcard like *.example.com for one label) matches host.
func hostMatches(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, parent, found := strings.Cut(host, ".")
		return found && label != "" && parent == rest
	}
	return false
}

// exampleCallback is the redirect URI a site's gate would use, for the fix
// an error suggests.
func exampleCallback(s site, callbackPath string) string {
	if urls := s.urls(); len(urls) > 0 {
		return urls[0] + callbackPath
	}
	return "https://" + s.hosts[0] + callbackPath
}
