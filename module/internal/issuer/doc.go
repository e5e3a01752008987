// Package issuer is Gatehouse's embedded OpenID Connect / OAuth 2.0 provider
// for one domain: discovery and JWKS, the authorization endpoint with its
// login page and SSO session, the token endpoint (authorization_code with
// PKCE, refresh_token with rotation and reuse detection, client_credentials),
// userinfo, revocation (RFC 7009), introspection (RFC 7662), RP-initiated
// logout (which revokes what the SSO session started), back-channel
// logout and a health check (store reachable, signing key active). It owns
// the OAuth error writer, the token claims, the audit entries and the
// metrics of those endpoints. It finds the domain's settings, clients,
// policies and users only through a directory.Directory: each request
// reads one snapshot of the domain (and what is derived from it, such as
// CORS origins and the discovery document, is built once per snapshot),
// users are read with a context and an error (a directory that cannot
// answer is "try again", never "unknown user"), and the domain's claims map
// is applied when tokens are minted. It imports nothing of Caddy: the Caddy
// handler builds a Config and calls ServeHTTP.
//
// One file per endpoint; grants live in grant_*.go behind the token
// endpoint, which authenticates the client once. Signing in is not done
// here: login.go begins a sign-in for a pending authorization request,
// shows the login page and routes <issuer>/login/<method>/... to the
// methods of package authn, and ends the sign-in a method completes.
package issuer
