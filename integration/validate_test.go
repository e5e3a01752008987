package integration

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_ValidateIsADryRun: the real binary's `caddy validate` on a
// configuration with an issuer, a gate with browser sessions and embedded
// bearer tokens, the wildcard issuer and the management API leaves an
// empty data directory empty — no SQLite file, no signing key — with the
// default store and with a key-encryption key. A configuration with a
// problem still fails validation.
func TestCLI_ValidateIsADryRun(t *testing.T) {
	bin := caddyBinary(t)
	for name, option := range map[string]string{
		"default store":          "",
		"key-encryption key set": "key_encryption_key {env.GATEHOUSE_TEST_KEK}",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			data, config, home := filepath.Join(root, "data"), filepath.Join(root, "config"), filepath.Join(root, "home")
			for _, d := range []string{data, config, home} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cf := writeFile(t, root, "Caddyfile", `{
	admin off
	gatehouse {
		`+option+`
		domain {
			issuer https://auth.example.com
			user alice {
				password_hash $2a$14$ajq8Q7fbtFRQvXpdCq7Jcuy.Rx1h/L4J60Otx.gyNLbAYctGMJ9tK
			}
			client webapp {
				redirect_uris https://app.example.com/.gatehouse/callback
			}
		}
	}
}

auth.example.com {
	gatehouse_issuer
}

tenants.example.com {
	gatehouse_issuer *
}

app.example.com {
	gatehouse {
		login webapp
		bearer {
			audience api
		}
	}
	respond ok
}

:9445 {
	gatehouse_api
}
`)
			run := func(args ...string) (int, string) {
				cmd := exec.Command(bin, args...)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+config, "HOME="+home,
					"GATEHOUSE_TEST_KEK="+strings.Repeat("k", 40))
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				if ee, ok := err.(*exec.ExitError); ok {
					return ee.ExitCode(), out.String()
				} else if err != nil {
					t.Fatal(err)
				}
				return 0, out.String()
			}
			if code, out := run("validate", "--config", cf, "--adapter", "caddyfile"); code != 0 || !strings.Contains(out, "Valid configuration") {
				t.Fatalf("validate: exit %d\n%s", code, out)
			}
			for _, d := range []string{data, config, home} {
				if got := tree(t, d); len(got) > 0 {
					t.Errorf("caddy validate created %v in %s", got, d)
				}
			}
			if got := tree(t, root); len(got) != 4 { // Caddyfile, data, config, home
				t.Errorf("caddy validate created files beside the Caddyfile: %v", got)
			}
			bad := writeFile(t, root, "Bad.Caddyfile", strings.Replace(string(mustRead(t, cf)), "redirect_uris https://app.example.com/.gatehouse/callback", "redirect_uris https://other.example.com/.gatehouse/callback", 1))
			if code, out := run("validate", "--config", bad, "--adapter", "caddyfile"); code == 0 || !strings.Contains(out, "has no redirect URI for the gate's site app.example.com") {
				t.Fatalf("validate of a broken configuration: exit %d\n%s", code, out)
			}
		})
	}
}

// tree lists what is under dir, relative to it.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
