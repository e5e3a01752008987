// Command gatehouse-build reads xcaddy.toml and runs xcaddy to build a
// production Caddy binary with Gatehouse and the pinned plugins:
//
//	go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest
//	go run ./cmd/gatehouse-build [-o caddy] [-print]
//
// xcaddy.toml understands two keys: caddy_version = "vX.Y.Z" and
// plugins = ["module@version", ...].
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

const module = "github.com/gatehouse-auth/gatehouse"

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
	args := xcaddyArgs(cfg, *out)
	if *printOnly {
		fmt.Println("xcaddy " + strings.Join(args, " "))
		return
	}
	cmd := exec.Command("xcaddy", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
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
