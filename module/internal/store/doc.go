// Package store defines what Gatehouse keeps in its database, as role
// interfaces each consumer takes one of: signing keys (Keys), shared secrets
// (Secrets), authorization codes, refresh-token families and the grants made
// under each SSO session (Grants), SSO sessions (Sessions), revocations
// (Revocations), login-failure counts (Throttle), the identities managed at
// run time — domains, users, clients, policies (Directory) — and the
// management API keys (Credentials). Store composes them all.
//
// The Caddyfile's domains, users, clients and policies do not come here:
// the directory holds only what is managed at run time, with a version per
// row for optimistic concurrency and a change counter other instances poll.
// The records are plain rows; the store imports nothing of the project.
//
// One implementation, sqlstore, runs on SQLite and PostgreSQL (its dialects;
// the sqlite and postgres packages open the databases), and passes the one
// conformance suite in storetest.
//
// Secrets are never stored in the clear: codes, refresh tokens and session
// IDs are stored under their SHA-256 hash (the caller hashes; see HashID),
// as are API keys and client secrets.
package store
