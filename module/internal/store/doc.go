// Package store defines what Gatehouse keeps at run time — signing keys,
// authorization codes, refresh-token families, revocations, SSO sessions (with
// the grants made under each), login-failure counts and shared secrets — and the Store interface that every backend implements.
//
// Static configuration (domains, users, clients, policies) does not live here;
// it comes from the Caddy config. Backends live in sub-packages (sqlite,
// postgres) and all of them pass the one conformance suite in storetest.
//
// Secrets are never stored in the clear: codes, refresh tokens and session IDs
// are stored under their SHA-256 hash (the caller hashes; see HashID).
package store
