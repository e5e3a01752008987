package version

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

const (
	// ModulePath is Gatehouse's Go module.
	ModulePath = "github.com/gatehouse-auth/gatehouse"
	// StampPackage is this package's import path, for the -X flags that set
	// the revision of a build whose build information lacks it:
	//
	//	-ldflags "-X <StampPackage>.revision=<git commit>
	//	          -X <StampPackage>.revisionTime=<commit time, RFC 3339>
	//	          -X <StampPackage>.modified=true"   (only for a dirty tree)
	StampPackage = ModulePath + "/module/internal/version"

	caddyModulePath = "github.com/caddyserver/caddy/v2"
	// Devel is the version of a build that records neither a release
	// version nor a revision.
	Devel = "(devel)"
)

// Set at link time (see StampPackage); empty otherwise.
var (
	revision     string
	revisionTime string
	modified     string
)

// Info describes the running build.
type Info struct {
	// Version is Gatehouse's module version when it is a release,
	// v0.0.0-<first 12 digits of Revision>[+dirty] when only the revision is
	// known, and Devel otherwise.
	Version string
	// Revision is the full VCS revision the build was made from, or empty.
	Revision string
	// Time is the revision's commit time (UTC), or zero.
	Time time.Time
	// Modified reports that the working tree had uncommitted changes.
	Modified bool
	// Caddy is Caddy's module version ("unknown" when not in the build).
	Caddy string
	// Go is the Go toolchain that built the binary.
	Go string
}

// String is the one-line form `caddy gatehouse version` prints, e.g.
// "gatehouse v0.0.0-8ad4aa97c177 (2026-12-02T12:43:55Z) caddy v2.11.9 go1.26.8".
func (i Info) String() string {
	s := "gatehouse " + i.Version
	if !i.Time.IsZero() {
		s += " (" + i.Time.Format(time.RFC3339) + ")"
	}
	return s + " caddy " + i.Caddy + " " + i.Go
}

// Stamp is what the link-time variables hold.
type Stamp struct {
	Revision string // git commit
	Time     string // RFC 3339
	Modified string // "true" for a dirty tree
}

var get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return FromBuildInfo(bi, Stamp{Revision: revision, Time: revisionTime, Modified: modified})
})

// Get describes the running binary (computed once).
func Get() Info { return get() }

// pseudoVersion matches the tail of a Go pseudo-version
// (vX.Y.Z-[pre.]0.yyyymmddhhmmss-abcdefabcdef, or vX.0.0-yyyymmddhhmmss-abcdefabcdef),
// with an optional build suffix such as +dirty.
var pseudoVersion = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+[0-9A-Za-z.-]+)?$`)

// FromBuildInfo describes the build bi records, with the link-time stamp st.
// A stamp with a revision takes precedence over the revision Go recorded
// (whoever set it built from that revision on purpose).
func FromBuildInfo(bi *debug.BuildInfo, st Stamp) Info {
	info := Info{Version: Devel, Caddy: "unknown", Go: bi.GoVersion}
	if info.Go == "" {
		info.Go = runtime.Version()
	}
	var modVersion string
	isMain := bi.Main.Path == ModulePath
	if isMain {
		modVersion = bi.Main.Version
	}
	for _, dep := range bi.Deps {
		v := dep.Version
		if dep.Replace != nil && dep.Replace.Version != "" {
			v = dep.Replace.Version
		}
		switch dep.Path {
		case caddyModulePath:
			if v != "" {
				info.Caddy = v
			}
		case ModulePath:
			if !isMain {
				modVersion = v
			}
		}
	}

	switch {
	case st.Revision != "":
		info.Revision, info.Modified = st.Revision, st.Modified == "true"
		info.Time, _ = time.Parse(time.RFC3339, st.Time) // a malformed time is left out
	case isMain:
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time, _ = time.Parse(time.RFC3339, s.Value)
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	info.Time = info.Time.UTC()

	switch {
	case released(modVersion) && !(isMain && pseudoVersion.MatchString(modVersion) && info.Revision != ""):
		// A tag, or a dependency's pseudo-version (which names its commit).
		// The main module's pseudo-version says no more than the revision.
		info.Version = modVersion
	case info.Revision != "":
		short := info.Revision
		if len(short) > 12 {
			short = short[:12]
		}
		info.Version = "v0.0.0-" + short
		if info.Modified {
			info.Version += "+dirty"
		}
	}
	return info
}

// released reports whether v is a module version that names a release or
// a commit, rather than Go's placeholders.
func released(v string) bool {
	return v != "" && v != Devel && v != "v0.0.0"
}
