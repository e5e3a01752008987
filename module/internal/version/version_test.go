package version

import (
	"regexp"
	"runtime/debug"
	"testing"
	"time"
)

const rev = "8ad4aa97c1773e1042067f09ed69e554a7c14238"

func caddyDep() *debug.Module {
	return &debug.Module{Path: caddyModulePath, Version: "v2.11.9"}
}

func vcs(revision, when, dirty string) []debug.BuildSetting {
	return []debug.BuildSetting{
		{Key: "-buildmode", Value: "exe"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: revision},
		{Key: "vcs.time", Value: when},
		{Key: "vcs.modified", Value: dirty},
	}
}

func TestFromBuildInfo(t *testing.T) {
	when := time.Date(2026, 12, 2, 12, 43, 55, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		bi    debug.BuildInfo
		stamp Stamp
		want  Info
		line  string
	}{
		{
			name: "go build ./cmd/caddy in a clean clone: the revision and its time",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v0.0.0-20261202124355-8ad4aa97c177"},
				Deps: []*debug.Module{caddyDep()}, Settings: vcs(rev, "2026-12-02T12:43:55Z", "false")},
			want: Info{Version: "v0.0.0-8ad4aa97c177", Revision: rev, Time: when, Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse v0.0.0-8ad4aa97c177 (2026-12-02T12:43:55Z) caddy v2.11.9 go1.26.8",
		},
		{
			name: "a dirty tree is marked +dirty",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v0.0.0-20261202124355-8ad4aa97c177+dirty"},
				Deps: []*debug.Module{caddyDep()}, Settings: vcs(rev, "2026-12-02T12:43:55Z", "true")},
			want: Info{Version: "v0.0.0-8ad4aa97c177+dirty", Revision: rev, Time: when, Modified: true, Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse v0.0.0-8ad4aa97c177+dirty (2026-12-02T12:43:55Z) caddy v2.11.9 go1.26.8",
		},
		{
			name: "a tagged main module keeps its version, and the revision is known",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v1.2.0"},
				Deps: []*debug.Module{caddyDep()}, Settings: vcs(rev, "2026-12-02T12:43:55Z", "false")},
			want: Info{Version: "v1.2.0", Revision: rev, Time: when, Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse v1.2.0 (2026-12-02T12:43:55Z) caddy v2.11.9 go1.26.8",
		},
		{
			name: "a release as a dependency (xcaddy --with gatehouse@v1.2.0)",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy", Version: Devel},
				Deps: []*debug.Module{caddyDep(), {Path: ModulePath, Version: "v1.2.0"}}},
			want: Info{Version: "v1.2.0", Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse v1.2.0 caddy v2.11.9 go1.26.8",
		},
		{
			name: "a commit as a dependency keeps its pseudo-version",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy", Version: Devel},
				Deps: []*debug.Module{caddyDep(), {Path: ModulePath, Version: "v0.0.0-20261202124355-8ad4aa97c177"}}},
			want: Info{Version: "v0.0.0-20261202124355-8ad4aa97c177", Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse v0.0.0-20261202124355-8ad4aa97c177 caddy v2.11.9 go1.26.8",
		},
		{
			name: "xcaddy with the checkout as a replaced v0.0.0: the link-time stamp",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy", Version: Devel},
				Deps: []*debug.Module{caddyDep(), {Path: ModulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "/src/gatehouse"}}}},
			stamp: Stamp{Revision: rev, Time: "2026-12-02T13:43:55+01:00", Modified: "true"},
			want:  Info{Version: "v0.0.0-8ad4aa97c177+dirty", Revision: rev, Time: when, Modified: true, Caddy: "v2.11.9", Go: "go1.26.8"},
			line:  "gatehouse v0.0.0-8ad4aa97c177+dirty (2026-12-02T12:43:55Z) caddy v2.11.9 go1.26.8",
		},
		{
			name: "xcaddy without a stamp knows nothing",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy", Version: Devel},
				Deps: []*debug.Module{caddyDep(), {Path: ModulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "/src/gatehouse"}}}},
			want: Info{Version: Devel, Caddy: "v2.11.9", Go: "go1.26.8"},
			line: "gatehouse (devel) caddy v2.11.9 go1.26.8",
		},
		{
			name: "a replacement by another version names that version",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy", Version: Devel},
				Deps: []*debug.Module{{Path: caddyModulePath, Version: "v2.11.9", Replace: &debug.Module{Path: "example.com/caddy", Version: "v2.11.10"}},
					{Path: ModulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.3.0"}}}},
			want: Info{Version: "v1.3.0", Caddy: "v2.11.10", Go: "go1.26.8"},
			line: "gatehouse v1.3.0 caddy v2.11.10 go1.26.8",
		},
		{
			name: "the stamp wins over the revision Go recorded; a malformed time is left out",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: Devel},
				Deps: []*debug.Module{caddyDep()}, Settings: vcs("1111111111111111111111111111111111111111", "2026-01-01T00:00:00Z", "true")},
			stamp: Stamp{Revision: "abc123", Time: "yesterday"},
			want:  Info{Version: "v0.0.0-abc123", Revision: "abc123", Caddy: "v2.11.9", Go: "go1.26.8"},
			line:  "gatehouse v0.0.0-abc123 caddy v2.11.9 go1.26.8",
		},
		{
			name: "go test, go run, -buildvcs=false: no version, no revision, no Caddy",
			bi:   debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: Devel}},
			want: Info{Version: Devel, Caddy: "unknown", Go: "go1.26.8"},
			line: "gatehouse (devel) caddy unknown go1.26.8",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromBuildInfo(&tc.bi, tc.stamp)
			if got != tc.want {
				t.Errorf("FromBuildInfo:\n got %+v\nwant %+v", got, tc.want)
			}
			if got.String() != tc.line {
				t.Errorf("String() = %q, want %q", got.String(), tc.line)
			}
		})
	}
}

func TestGetDescribesThisTestBinary(t *testing.T) {
	got := Get()
	// A test binary records the module as (devel) and no revision; Caddy is
	// not linked into this package's tests.
	if got.Version != Devel || got.Revision != "" || got.Caddy != "unknown" {
		t.Errorf("Get() = %+v", got)
	}
	if !regexp.MustCompile(`^go1\.\d+`).MatchString(got.Go) {
		t.Errorf("Go version %q", got.Go)
	}
	if Get() != got {
		t.Error("Get is not stable")
	}
}
