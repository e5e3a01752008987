// Package module is Gatehouse's Caddy adapter: the `gatehouse` app (shared
// identity state: domains, store, keys, users, clients, policies), the
// `gatehouse_issuer` handler (one domain's OpenID Connect issuer), the
// `gatehouse` handler (the gate in front of sites and APIs), the
// `gatehouse_api` handler (the management API of package mgmtapi), the
// `admin.api.gatehouse` routes on Caddy's admin endpoint (key rotation, a
// user's sessions revoked), the store and login-method guest modules, the
// Caddyfile syntax and the `caddy gatehouse` commands (among them `apikey`,
// the API's keys).
//
// It is the only package tree that imports Caddy; the work is done by the
// Caddy-free packages under module/internal and policy/.
package module
