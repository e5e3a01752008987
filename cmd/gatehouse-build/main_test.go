package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRepositoryBuildFilePinsTheCaddyVersionOfGoMod(t *testing.T) {
	cfg, err := readConfig("../../xcaddy.toml")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "github.com/caddyserver/caddy/v2 "+cfg.CaddyVersion) {
		t.Errorf("xcaddy.toml pins Caddy %s but go.mod requires another version", cfg.CaddyVersion)
	}
	got := strings.Join(xcaddyArgs(cfg, "caddy"), " ")
	if !strings.Contains(got, "--with "+module+"@v0.0.0=.") || !strings.HasPrefix(got, "build "+cfg.CaddyVersion) {
		t.Errorf("xcaddy args = %q", got)
	}
}

func TestBuildFileErrors(t *testing.T) {
	cases := map[string]string{
		"missing version":  "plugins = []\n",
		"unquoted plugin":  "caddy_version = \"v2.11.9\"\nplugins = [\n  github.com/x/y\n]\n",
		"unknown key":      "caddy_version = \"v2.11.9\"\nflavour = \"x\"\n",
		"unclosed list":    "caddy_version = \"v2.11.9\"\nplugins = [\n",
		"unquoted version": "caddy_version = v2.11.9\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.toml")
			os.WriteFile(p, []byte(src), 0o600)
			if _, err := readConfig(p); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

func TestPluginsAreAddedAsWith(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.toml")
	os.WriteFile(p, []byte("caddy_version = \"v2.11.9\" # pinned\nplugins = [\n  \"github.com/a/b@v1.0.0\",\n]\n"), 0o600)
	cfg, err := readConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(xcaddyArgs(cfg, "out"), " ")
	if !strings.HasSuffix(got, "--with github.com/a/b@v1.0.0") {
		t.Errorf("args = %q", got)
	}
}

var testStamp = stamp{
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Time:     time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC),
	Modified: true,
}

func TestXcaddyBuildFlagsKeepXcaddysDefaultsAndAddTheStamp(t *testing.T) {
	const v = "github.com/gatehouse-auth/gatehouse/module/internal/version"
	want := "-ldflags '-w -s -X " + v + ".revision=0123456789abcdef0123456789abcdef01234567 -X " + v +
		".revisionTime=2026-12-02T12:00:00Z -X " + v + ".modified=true' -trimpath -tags nobadger,nomysql,nopgx"
	if got := xcaddyBuildFlags(testStamp); got != want {
		t.Errorf("XCADDY_GO_BUILD_FLAGS\n got %s\nwant %s", got, want)
	}
	clean := testStamp
	clean.Modified = false
	if got := ldflags(clean); strings.Contains(got, "modified") {
		t.Errorf("a clean tree is stamped modified: %s", got)
	}
}

// TestStampedCaddyPrintsTheRevision links the development Caddy binary
// (cmd/caddy) with the -ldflags gatehouse-build gives xcaddy and runs
// `caddy gatehouse version`: the stamp must reach the version package
// (a wrong -X path is silently ignored by the linker).
func TestStampedCaddyPrintsTheRevision(t *testing.T) {
	cfg, err := readConfig("../../xcaddy.toml")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	start := time.Now()
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", ldflags(testStamp), "-o", bin, "../../cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	t.Logf("go build ./cmd/caddy took %v", time.Since(start).Round(time.Millisecond))
	out, err := exec.Command(bin, "gatehouse", "version").Output()
	if err != nil {
		t.Fatalf("caddy gatehouse version: %v", err)
	}
	want := regexp.MustCompile(`^gatehouse v0\.0\.0-0123456789ab\+dirty \(2026-12-02T12:00:00Z\) caddy ` +
		regexp.QuoteMeta(cfg.CaddyVersion) + ` go1\.\d+\S*\n$`)
	if !want.Match(out) {
		t.Errorf("caddy gatehouse version printed %q, want %s", out, want)
	}
}

func TestGitStamp(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.test", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-12-02T13:00:00+01:00", "GIT_AUTHOR_DATE=2026-12-01T00:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := gitStamp(dir); err == nil {
		t.Fatal("a folder that is not a git checkout has a revision")
	}
	git("init", "-q")
	if _, err := gitStamp(dir); err == nil {
		t.Fatal("a repository without a commit has a revision")
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o600)
	git("add", "a.txt")
	git("commit", "-q", "-m", "first")
	head := git("rev-parse", "HEAD")
	st, err := gitStamp(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (stamp{Revision: head, Time: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}); st != want {
		t.Errorf("clean checkout: %+v, want %+v (the commit time, not the author time)", st, want)
	}
	for name, change := range map[string]func(){
		"a modified file":   func() { os.WriteFile(filepath.Join(dir, "a.txt"), []byte("b\n"), 0o600) },
		"an untracked file": func() { os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b\n"), 0o600) },
	} {
		git("checkout", "-q", "--", ".")
		os.Remove(filepath.Join(dir, "b.txt"))
		change()
		if st, err := gitStamp(dir); err != nil || !st.Modified || st.Revision != head {
			t.Errorf("%s: %+v, %v; want modified at %s", name, st, err, head)
		}
	}
}
