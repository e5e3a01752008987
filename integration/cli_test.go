package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs the Caddy binary ./cmd/caddy builds with args and returns
// its exit status and output.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(caddyBinary(t), args...)
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running caddy %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestCLI_GatehouseCommandsExitWithTheirStatus: the real binary's
// `caddy gatehouse` commands: full help with status 0, policy check and eval
// of a Caddyfile's policies and users with 0 / 1 / 2.
func TestCLI_GatehouseCommandsExitWithTheirStatus(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "policies.yaml", "policy:\n  - id: admins\n    all:\n      - rule:\n          claim: groups\n          in: [admins]\n")
	cf := writeFile(t, dir, "Caddyfile", `{
	gatehouse {
		domain {
			issuer https://auth.example.com
			policy_file policies.yaml
			user alice {
				password_hash {env.ALICE_HASH}
				claims {
					groups admins
				}
			}
			user bob {
				password_hash {env.BOB_HASH}
				claims {
					groups dev
				}
			}
		}
	}
}
`)
	bad := writeFile(t, dir, "Bad.Caddyfile", strings.Replace(string(mustRead(t, cf)), "policy_file policies.yaml", "policy_file policies.yaml\n\t\t\tpolicy_file missing.yaml", 1))
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"gatehouse", "--help"}, 0, "policy eval --config Caddyfile --user NAME"},
		{[]string{"gatehouse"}, 0, "policy check --config Caddyfile"},
		{[]string{"gatehouse", "frobnicate"}, 1, ""},
		{[]string{"gatehouse", "policy", "check", "--config", cf}, 0, "ok: default domain: 1 policy (admins)"},
		{[]string{"gatehouse", "policy", "check", "--config", bad, "--adapter", "caddyfile"}, 1, ""},
		{[]string{"gatehouse", "policy", "eval", "--config", cf, "--user", "alice"}, 0, `allow: policy "admins"`},
		{[]string{"gatehouse", "policy", "eval", "--config", cf, "--user", "bob"}, 2, "deny"},
		{[]string{"gatehouse", "policy", "eval", "--config", cf, "--user", "carol"}, 1, ""},
		{[]string{"gatehouse", "policy", "check", filepath.Join(dir, "policies.yaml")}, 0, "ok: 1 policy (admins)"},
	}
	for _, c := range cases {
		code, stdout, stderr := runBinary(t, c.args...)
		if code != c.code || !strings.Contains(stdout, c.out) {
			t.Errorf("caddy %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), code, c.code, stdout, stderr)
		}
		if c.code == 1 && c.args[1] == "policy" && c.args[2] == "check" && !strings.Contains(stderr, filepath.Join(dir, "missing.yaml")) {
			t.Errorf("caddy %s: stderr does not name the missing file:\n%s", strings.Join(c.args, " "), stderr)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
