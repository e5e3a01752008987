package mgmtapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// DefaultDomain is the API's name for the configuration's unnamed domain
// (a `domain { ... }` block without a name). No domain of that name can be
// created through the API.
const DefaultDomain = "default"

// domainNameRE is what the name of a domain created through the API may
// be: a DNS label (lower-case letters, digits and inner hyphens, at most
// 63), so it fits in a URL path and a host name alike.
var domainNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

func validDomainName(name string) bool { return domainNameRE.MatchString(name) }

// ConfigDomain is one domain as the configuration (the Caddyfile) defines
// it. Its settings, users, clients and policies are listed and readable
// through the API, marked "managed": "config", and every write to them is
// refused (TypeManagedByConfig): the configuration is the truth for what it
// names. Users, clients and policies the configuration does not define may
// still be added to the domain through the API.
type ConfigDomain struct {
	// Name is the domain's name; "" for the unnamed domain, which the API
	// calls DefaultDomain.
	Name             string
	Issuer           string
	SigningAlgorithm string        // "": RS256
	SessionLifetime  time.Duration // 0: the default
	KeyRotation      time.Duration // 0: the default
	Users            []*identity.User
	Clients          []*identity.Client
	Policies         []policy.Policy
}

// Config is what the configuration defines, as the API sees it. It is
// fixed for the life of the API: a configuration reload builds a new one.
// Its answers are those of directory.Layered: the configuration wins per
// object id (a domain by name, a user by sub, a client or policy by id), and
// what it defines is read-only.
type Config struct {
	domains map[string]*configDomain // by API name
	names   []string                 // API names, sorted
	issuers map[string]string        // issuer URL → API name
}

type configDomain struct {
	ConfigDomain
	apiName  string
	etag     string
	users    map[string]*identity.User // by sub
	logins   map[string]*identity.User // by store.LoginKey of username and e-mail
	clients  map[string]*identity.Client
	policies map[string]*policy.Policy
	// etags of users, clients and policies, by id.
	userTags, clientTags, policyTags map[string]string
}

// NewConfig indexes the configuration's domains. A nil *Config (or one
// built from nothing) defines nothing.
func NewConfig(domains ...ConfigDomain) *Config {
	c := &Config{domains: map[string]*configDomain{}, issuers: map[string]string{}}
	for _, d := range domains {
		api := d.Name
		if api == "" {
			api = DefaultDomain
			if slices.ContainsFunc(domains, func(o ConfigDomain) bool { return o.Name == DefaultDomain }) {
				continue // a domain named "default" takes the name
			}
		}
		cd := &configDomain{ConfigDomain: d, apiName: api,
			users: map[string]*identity.User{}, logins: map[string]*identity.User{},
			clients: map[string]*identity.Client{}, policies: map[string]*policy.Policy{},
			userTags: map[string]string{}, clientTags: map[string]string{}, policyTags: map[string]string{}}
		cd.etag = configETag(domainOfConfig(cd))
		for _, u := range d.Users {
			cd.users[u.Subject] = u
			cd.userTags[u.Subject] = configETag(userOfConfig(u))
			for _, l := range []string{u.PreferredUsername, u.Email} {
				if l != "" {
					cd.logins[store.LoginKey(l)] = u
				}
			}
		}
		for _, cl := range d.Clients {
			cd.clients[cl.ID] = cl
			cd.clientTags[cl.ID] = configETag(clientOfConfig(cl))
		}
		for i := range d.Policies {
			p := &d.Policies[i]
			cd.policies[p.ID] = p
			cd.policyTags[p.ID] = configETag(p)
		}
		c.domains[api] = cd
		c.names = append(c.names, api)
		if d.Issuer != "" {
			c.issuers[d.Issuer] = api
		}
	}
	slices.Sort(c.names)
	return c
}

// domain returns the configured domain of that API name, or nil.
func (c *Config) domain(name string) *configDomain {
	if c == nil {
		return nil
	}
	return c.domains[name]
}

// Names lists the API names of the configured domains, sorted.
func (c *Config) Names() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.names)
}

// ConfigManaged reports whether the configuration defines the object of
// kind ("domain", "user", "client" or "policy"; directory.Kind's values)
// named id in the domain of that API name (for a domain, id is ignored).
func (c *Config) ConfigManaged(kind, domain, id string) bool {
	d := c.domain(domain)
	if d == nil {
		return false
	}
	switch kind {
	case "domain":
		return true
	case "user":
		return d.users[id] != nil
	case "client":
		return d.clients[id] != nil
	case "policy":
		return d.policies[id] != nil
	}
	return false
}

// configETag is the entity tag of a configured object: a hash of its JSON,
// so it changes when the configuration does.
func configETag(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return `"c` + hex.EncodeToString(sum[:12]) + `"`
}
