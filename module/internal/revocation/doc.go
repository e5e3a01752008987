// Package revocation owns what Gatehouse knows in memory about revoked
// tokens and ended gate sessions, and how it learns what other instances
// sharing the store revoked.
//
//   - ID is what a revocation names: a token family, one access token of a
//     family (its jti, "<family>.<random>"), or a gate session
//     ("gate-session:<id>"). Only this package knows the spelling.
//   - Hub remembers revoked IDs until they may be forgotten and tells its
//     subscribers of each new one (the gate drops a revoked token from its
//     cache). A jti is refused when it or its family was revoked.
//   - Watcher publishes to a hub what the store records: at start, what was
//     revoked before (so a new instance never accepts a token another one
//     revoked), then on every poll what was recorded since, reading each
//     time a little behind the newest revocation it saw (a revocation
//     stamped earlier may commit later) and publishing nothing twice. One
//     watcher follows token revocations, another gate sessions.
//
// The package takes only the store's Revocations role and imports nothing
// of Caddy.
package revocation
