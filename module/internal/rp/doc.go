// Package rp owns the relying-party side of the gate's browser login: the
// authorization code flow with PKCE (S256), state and nonce against an OIDC
// provider (Flow), the provider abstraction (Provider) with an implementation
// for external providers by discovery (OIDCProvider), the session the gate
// keeps afterwards (Session, valid at the gates of one Audience: domain,
// issuer and login client), one refresh per refresh token shared by the
// requests that need it (RefreshGroup), the rules for where a user may be sent back after
// login (SafeReturnPath) and which requests get a login redirect at all
// (IsNavigation).
//
// Pending logins live in a short-lived sealed cookie (seal.Sealer with its
// own key purpose), so any instance behind a load balancer can complete a
// login started on another, with no server-side state. The package does not
// know about Caddy; the gate's handler decides when to call Start and
// Callback and what to do with the tokens. A callback that matches no pending
// login (the cookie expired while the provider's form was open) may be
// answered by starting the login once more (Restartable, StartOptions.Restart);
// the restarted login's state is marked, so it is never restarted again.
package rp
