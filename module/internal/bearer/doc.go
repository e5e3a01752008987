// Package bearer validates OAuth 2.0 bearer access tokens (JWTs, RFC 9068 profile) on the
// resource-server side of Gatehouse's gate, and the embedded issuer's own tokens when the
// issuer reads them back (userinfo, introspection, revocation, logout hints: Config's
// AnyAudience, AllowExpired and IDTokens). It owns:
//
//   - the Validator: compact-JWS parsing, header policy (algorithm allow-list from
//     configuration, never from the token; no jku/x5u/x5c/jwk/crit/b64), signature
//     verification, strict claims-set decoding (claimsjson.go: no duplicate names,
//     valid UTF-8, bounded nesting), claims checks (exp, nbf, iat, iss, aud, typ, scopes);
//   - the verified-token cache (keyed by SHA-256 of the token, bounded, entries never
//     outliving exp, dropped on key rotation and on revocation);
//   - key sources: StaticKeys (JWKS/JWK/PEM), RemoteKeySet (JWKS URL or OIDC discovery,
//     with cooldown-limited, coalesced refreshes and stale-key serving) and the
//     process-wide reference-counted registry that lets every handler trusting one
//     issuer share one cache across config reloads;
//   - the RFC 6750 error model (Error, WWW-Authenticate rendering).
//
// The package does not import Caddy; the gate handler wraps it.
package bearer
