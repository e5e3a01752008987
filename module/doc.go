// Package module is Gatehouse's Caddy adapter: the `gatehouse` app (shared
// identity state: domains, store, keys, users, clients, policies; a registry
// of the domains it serves, which follows those stored through the
// management API), the `gatehouse_issuer` handler (one domain's OpenID
// Connect issuer, or every domain's by issuer URL), the
// `gatehouse` handler (the gate in front of sites and APIs), the
// `gatehouse_api` handler (the management API of package mgmtapi), the
// `admin.api.gatehouse` routes on Caddy's admin endpoint (key rotation, a
// user's sessions revoked), the store and login-method guest modules, the
// Caddyfile syntax and the `caddy gatehouse` commands (among them `apikey`,
// the API's keys).
//
// Provisioning only checks: the store is opened, signing keys loaded and
// issuers built when the app starts (so `caddy validate` creates nothing),
// and handlers that get a request before that wait for it.
//
// It is the only package tree that imports Caddy; the work is done by the
// Caddy-free packages under module/internal and policy/.
package module
