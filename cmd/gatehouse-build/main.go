// Command gatehouse-build reads xcaddy.toml and runs xcaddy to build a
// production Caddy binary with Gatehouse and the pinned plugins:
//
//	go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest
//	go run ./cmd/gatehouse-build [-o caddy] [-print]
//
// xcaddy.toml understands two keys: caddy_version = "vX.Y.Z" and
// plugins = ["module@version", ...].
//
// xcaddy includes this checkout as a replaced v0.0.0 dependency, which carries
// no revision in the binary's build information, so gatehouse-build stamps
// the checkout's git revision, commit time and dirty flag into the binary with
// -ldflags -X (through xcaddy's XCADDY_GO_BUILD_FLAGS, keeping xcaddy's default
// flags); `caddy gatehouse version` prints them.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

const (
	module = "github.com/gatehouse-auth/gatehouse"
	// stampPackage holds the variables the stamp sets
	// (module/internal/version; its StampPackage).
	stampPackage = module + "/module/internal/version"
	// xcaddyDefaultFlags are the go build flags xcaddy uses when
	// XCADDY_GO_BUILD_FLAGS is empty (xcaddy replaces them all when it is
	// set), less its -ldflags, which ldflags repeats.
	xcaddyDefaultFlags = "-trimpath -tags nobadger,nomysql,nopgx"
)

type buildConfig struct {
	CaddyVersion string
	Plugins      []string
}

func main() {
	cfgPath := flag.String("config", "xcaddy.toml", "the build file")
	out := flag.String("o", "caddy", "output binary")
	printOnly := flag.Bool("print", false, "print the xcaddy command instead of running it")
	flag.Parse()

	cfg, err := readConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("XCADDY_GO_BUILD_FLAGS") != "" {
		fmt.Fprintln(os.Stderr, "XCADDY_GO_BUILD_FLAGS is set; gatehouse-build sets it itself (to stamp the revision into the binary): unset it, or run xcaddy yourself")
		os.Exit(1)
	}
	args := xcaddyArgs(cfg, *out)
	var env []string
	if st, err := gitStamp("."); err != nil {
		fmt.Fprintf(os.Stderr, "gatehouse-build: building without a revision (caddy gatehouse version will say (devel)): %v\n", err)
	} else {
		env = append(env, "XCADDY_GO_BUILD_FLAGS="+xcaddyBuildFlags(st))
	}
	if *printOnly {
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			fmt.Printf("%s=%q ", k, v)
		}
		fmt.Println("xcaddy " + strings.Join(args, " "))
		return
	}
	cmd := exec.Command("xcaddy", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "xcaddy:", err)
		os.Exit(1)
	}
}

func xcaddyArgs(cfg buildConfig, out string) []string {
	args := []string{"build", cfg.CaddyVersion, "--output", out, "--with", module + "@v0.0.0=."}
	for _, p := range cfg.Plugins {
		args = append(args, "--with", p)
	}
	return args
}

// stamp is the revision a build is made from.
type stamp struct {
	Revision string    // full commit hash
	Time     time.Time // commit time
	Modified bool      // the working tree has uncommitted changes
}

// gitStamp reads the revision of the git checkout dir: HEAD, its commit time,
// and whether tracked or untracked files differ from it.
func gitStamp(dir string) (stamp, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			err = fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(string(exit.Stderr)))
		}
		return strings.TrimSpace(string(out)), err
	}
	var st stamp
	rev, err := git("rev-parse", "--verify", "HEAD")
	if err != nil {
		return st, err
	}
	secs, err := git("show", "-s", "--format=%ct", rev)
	if err != nil {
		return st, err
	}
	unix, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return st, fmt.Errorf("commit time of %s: %q is not a number", rev, secs)
	}
	status, err := git("status", "--porcelain")
	if err != nil {
		return st, err
	}
	return stamp{Revision: rev, Time: time.Unix(unix, 0).UTC(), Modified: status != ""}, nil
}

// ldflags are xcaddy's default linker flags plus the -X flags that set the
// stamp in module/internal/version.
func ldflags(st stamp) string {
	f := "-w -s -X " + stampPackage + ".revision=" + st.Revision +
		" -X " + stampPackage + ".revisionTime=" + st.Time.UTC().Format(time.RFC3339)
	if st.Modified {
		f += " -X " + stampPackage + ".modified=true"
	}
	return f
}

// xcaddyBuildFlags is XCADDY_GO_BUILD_FLAGS (split by xcaddy like a shell
// would): xcaddy's defaults with the stamp.
func xcaddyBuildFlags(st stamp) string {
	return "-ldflags '" + ldflags(st) + "' " + xcaddyDefaultFlags
}

// readConfig parses the small TOML subset xcaddy.toml uses.
func readConfig(path string) (buildConfig, error) {
	var cfg buildConfig
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	inPlugins := false
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		s = stripComment(s)
		if s == "" {
			continue
		}
		if inPlugins {
			if s == "]" {
				inPlugins = false
				continue
			}
			v, err := strconv.Unquote(strings.TrimSuffix(s, ","))
			if err != nil {
				return cfg, fmt.Errorf("%s:%d: a plugin must be a quoted string, e.g. \"github.com/x/y@v1.2.3\",", path, line)
			}
			cfg.Plugins = append(cfg.Plugins, v)
			continue
		}
		key, val, ok := strings.Cut(s, "=")
		if !ok {
			return cfg, fmt.Errorf("%s:%d: expected key = value", path, line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "caddy_version":
			v, err := strconv.Unquote(val)
			if err != nil || !strings.HasPrefix(v, "v") {
				return cfg, fmt.Errorf("%s:%d: caddy_version must be a quoted version like \"v2.11.9\"", path, line)
			}
			cfg.CaddyVersion = v
		case "plugins":
			if val == "[]" {
				continue
			}
			if val != "[" {
				return cfg, fmt.Errorf("%s:%d: write plugins = [ on its own line, one quoted plugin per line, then ]", path, line)
			}
			inPlugins = true
		default:
			return cfg, fmt.Errorf("%s:%d: unknown key %q; xcaddy.toml knows caddy_version and plugins", path, line, key)
		}
	}
	if inPlugins {
		return cfg, fmt.Errorf("%s: the plugins list is not closed with ]", path)
	}
	if cfg.CaddyVersion == "" {
		return cfg, fmt.Errorf("%s: caddy_version is missing", path)
	}
	return cfg, sc.Err()
}

// stripComment removes a # comment that is not inside a quoted string.
func stripComment(s string) string {
	quoted := false
	for i, r := range s {
		switch {
		case r == '"' && (i == 0 || s[i-1] != '\\'):
			quoted = !quoted
		case r == '#' && !quoted:
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}
