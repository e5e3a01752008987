// Package directory is where Gatehouse finds identities: a domain's
// settings, clients and policies, and its users. The issuer and the gate
// read them only through the Directory interface, with a context and an
// error, so identities may come from the configuration, from the store, or
// from both.
//
// Clients, policies and settings are served as a Snapshot per domain: an
// immutable value, swapped atomically when anything in it changes, with the
// state derived from it (CORS origins, supported scopes) computed once per
// snapshot. A request holds one snapshot for its whole length. Users are
// read through (a domain may have many; they are needed on sign-in, code
// exchange, refresh and userinfo, never on the gate's per-request path).
//
// Implementations:
//
//   - Static: the configuration's domains, fixed when it is built.
//   - Stored: the store's domains, with snapshots rebuilt from rows when the
//     store's directory version moves (a Watcher polls it; Refresh applies
//     a write made in this process at once; Changed wakes whoever follows
//     the domains, such as the Caddy app's registry of served domains);
//     users read from the store.
//   - Layered: configuration over store. What the configuration defines
//     wins per id and is read-only ("managed": "config" in a management API);
//     domains are the union; users are looked up in the configuration first.
//
// Errors are ErrNotFound, or wrap ErrUnavailable when the directory could
// not answer (a store failure): callers then answer "try again", never
// "unknown user".
//
// The package imports nothing of Caddy.
package directory
