package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
