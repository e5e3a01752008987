// Package version tells which build of Gatehouse is running, for
// `caddy gatehouse version` and the gatehouse app's start-up log line.
//
// It reads the binary's build information (runtime/debug.ReadBuildInfo):
//
//   - a released Gatehouse (a tagged module version, or the pseudo-version of a
//     commit fetched as a dependency) is named by that version;
//   - `go build ./cmd/caddy` in a git clone makes Gatehouse the main module, and
//     Go records the commit: the version is v0.0.0-<12-digit revision>, with
//     +dirty when the working tree had changes, and the commit time;
//   - an xcaddy build (cmd/gatehouse-build) includes Gatehouse as a v0.0.0
//     dependency replaced by the checkout, which carries no commit: the
//     revision, commit time and dirty flag are then set at link time
//     (StampPackage names the variables; see cmd/gatehouse-build).
//
// A build that records none of these (go run, go test, -buildvcs=false, a
// git worktree, whose .git is a file Go does not read) is "(devel)".
//
// The package does not import Caddy; it reads Caddy's version from the same
// build information.
package version
