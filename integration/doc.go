// Package integration runs complete flows against a real Caddy, started
// in-process from a real Caddyfile with Gatehouse built in, driven by
// independent client code (golang.org/x/oauth2, go-oidc, net/http with a
// cookie jar). It is the only package that starts whole Caddy servers.
package integration
