// Package mgmtapi is Gatehouse's management API: domains, users, clients,
// policies and API keys, at run time, over HTTP under /v1/ with
// Entrypage's paths and camelCase JSON. It imports nothing of Caddy; the
// gatehouse_api handler of package module serves it.
//
// # Model
//
// What the API creates is kept in the store's directory (store.Directory)
// and read by the issuer and the gate through package directory. What the
// configuration (the Caddyfile) defines is listed and readable too, marked
// "managed": "config", wins over a stored object of the same id, and is
// never written (TypeManagedByConfig, 403). The configuration's unnamed
// domain is called "default" here.
//
// # Keys
//
// Every path but the OpenAPI document needs an API key, in the x-api-key
// header or as Authorization: Bearer. A key is global (every domain; may
// create domains and keys) or bound to one domain, and read-write or
// read-only; it expires (by default after DefaultKeyLifetime) and can be
// revoked. A key never makes a key with more rights than its own. Keys are
// gatehouse_<id>_<secret> (see KeyPrefix), stored as HashKey of the key,
// and checked with one lookup and one constant-time comparison whatever
// the key (a wrong key costs what a right one does).
//
// # Requests and answers
//
// Bodies are JSON (a policy also YAML), bounded in size, decoded strictly
// (unknown or repeated members refused); errors are RFC 9457 problem
// details with a stable type per cause (the Type constants). Every object
// has an ETag; a write may send If-Match (412 when stale, nothing changed)
// and otherwise applies to the current object. Every write is one store
// call. Deleting or disabling a user, or deleting a client or a domain,
// first ends what they hold: SSO sessions deleted, token families revoked
// through the Revoker (the module publishes to this process's gates; other
// instances poll the store).
//
// Every request is audited (the Audit logger, gatehouse.audit): action,
// key ID (never the key), domain, object and outcome.
//
// The OpenAPI 3.1 document (openapi.json, embedded) describes every path,
// body, answer and problem; it is served at /v1/openapi.json without a key.
package mgmtapi
