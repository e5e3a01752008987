package module

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clitest"
	"github.com/gatehouse-auth/gatehouse/module/internal/version"
)

// runCLI runs `caddy gatehouse args...` as Caddy's command line builds it
// and returns the exit status Caddy's main would exit with, and the output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := clitest.Run(args...)
	return exitCode(err), stdout, stderr
}

// exitCode is the status caddycmd.Main exits with after err: 0 without an
// error, the code Caddy's wrapper carries (its exitError), 1 otherwise.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("ExitCode"); f.IsValid() && f.CanInt() {
			return int(f.Int())
		}
	}
	return 1
}

func TestGatehouseHelpPrintsEverythingAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {}} {
		code, stdout, _ := runCLI(t, args...)
		if code != 0 {
			t.Errorf("caddy gatehouse %v: exit %d", args, code)
		}
		for _, want := range []string{"gatehouse version", "policy check --config Caddyfile", "policy eval --config Caddyfile --user NAME", "Exit status 0 on allow, 2 on deny, 1 on error."} {
			if !strings.Contains(stdout, want) {
				t.Errorf("caddy gatehouse %v: the help lacks %q:\n%s", args, want, stdout)
			}
		}
	}
	code, stdout, _ := runCLI(t, "policy", "eval", "--help")
	if code != 0 || !strings.Contains(stdout, "--user string") || !strings.Contains(stdout, "--claims string") {
		t.Errorf("policy eval --help: exit %d\n%s", code, stdout)
	}
}

func TestGatehouseCommandDispatchesPolicyCheckAndEval(t *testing.T) {
	dir := t.TempDir()
	good := writeTemp(t, "good.yaml", "policy:\n  - id: admins\n    all:\n      - rule:\n          claim: groups\n          in: [admins]\n")
	bad := writeTemp(t, "bad.yaml", "policy:\n  - id: admins\n")
	claims := writeTemp(t, "claims.json", `{"groups":["dev"]}`)
	admin := writeTemp(t, "admin.json", `{"groups":["admins"]}`)
	_ = dir
	cases := []struct {
		args []string
		want int
		out  string
	}{
		{[]string{"policy", "check", good}, 0, "ok: 1 policy (admins)"},
		{[]string{"policy", "check", bad}, 1, ""},
		{[]string{"policy", "check"}, 1, ""},
		{[]string{"policy", "eval", good, "--claims", claims}, 2, "deny"},
		{[]string{"policy", "eval", good, "--claims", admin, "--policy", "admins"}, 0, `allow: policy "admins"`},
		{[]string{"policy", "eval", good, "--claims", claims, "--user", "alice"}, 1, ""},
		{[]string{"policy", "frobnicate"}, 1, ""},
		{[]string{"keys"}, 1, ""},
		{[]string{"version", "extra"}, 1, ""},
	}
	for _, c := range cases {
		code, stdout, _ := runCLI(t, c.args...)
		if code != c.want || !strings.Contains(stdout, c.out) {
			t.Errorf("caddy gatehouse %v: exit %d, want %d; output %q", c.args, code, c.want, stdout)
		}
	}
}

func TestGatehouseVersionCommand(t *testing.T) {
	code, stdout, stderr := runCLI(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("caddy gatehouse version: exit %d, stderr %q", code, stderr)
	}
	// A test binary records neither a revision nor its dependencies, so this
	// says "gatehouse (devel) caddy unknown go1.x"; cmd/gatehouse-build's
	// tests run the command in a real, stamped binary.
	want := regexp.MustCompile(`^gatehouse \(devel\) caddy \S+ go1\.\d+\S*\n$`)
	if !want.MatchString(stdout) || stdout != version.Get().String()+"\n" {
		t.Errorf("caddy gatehouse version printed %q", stdout)
	}
}

// cliCaddyfile writes a Caddyfile with inline policies, a policy file and a
// claim map beside it (relative paths: resolved beside the Caddyfile).
func cliCaddyfile(t *testing.T, policyFile, extra string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policies.yaml", policyFile)
	write("claims.yaml", "mode: merge\ntransformations:\n  - source: groups\n    target: roles\n    map: {admins: admin, dev: developer}\n")
	write("Caddyfile", `{
	gatehouse {
		store sqlite `+filepath.Join(dir, "never-created.db")+`
		domain {
			issuer https://auth.example.com
			policy_file policies.yaml
			claims_map claims.yaml
			policy inline-admins {
				all {
					rule {
						claim roles
						in admin
					}
				}
			}
			user alice {
				email alice@example.com
				password_hash {env.GATEHOUSE_TEST_UNSET_HASH}
				claims {
					groups admins dev
				}
			}
			user bob {
				email bob@example.com
				password_hash {env.GATEHOUSE_TEST_UNSET_HASH}
				claims {
					groups dev
				}
			}
			client webapp {
				secret {env.GATEHOUSE_TEST_UNSET_SECRET}
				redirect_uris https://app.example.com/.gatehouse/callback
				scopes openid email orders:read
				audience https://api.example.com
				policies inline-admins
			}
		}
`+extra+`
	}
}
`)
	return filepath.Join(dir, "Caddyfile")
}

const developersPolicy = "policy:\n  - id: developers\n    all:\n      - rule:\n          claim: roles\n          in: [developer]\n"

func TestPolicyCheckConfig(t *testing.T) {
	cf := cliCaddyfile(t, developersPolicy, "")
	code, stdout, stderr := runCLI(t, "policy", "check", "--config", cf)
	if code != 0 || stdout != "ok: default domain: 2 policies (developers, inline-admins), a claim map\n" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cf), "never-created.db")); !os.IsNotExist(err) {
		t.Errorf("checking the policies created the store: %v", err)
	}

	// Every problem of every domain, each on its own line.
	cf = cliCaddyfile(t, "policy:\n  - id: developers\n    all: []\n", `
		domain acme {
			issuer https://acme.example.com
			claims_map missing.yaml
			client spa {
				redirect_uris https://spa.example.com/cb
				policies nobody
			}
		}`)
	code, stdout, stderr = runCLI(t, "policy", "check", "--config", cf)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	want := []string{
		"default domain: " + filepath.Join(filepath.Dir(cf), "policies.yaml") + ":3:",
		`domain "acme": client "spa": names policies [nobody] but the domain defines none`,
		`domain "acme": claims_map ` + filepath.Join(filepath.Dir(cf), "missing.yaml") + ": no such file or directory",
	}
	if len(lines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(want), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q\nwant it to start with %q", i+1, lines[i], w)
		}
	}
	if code, _, _ := runCLI(t, "policy", "check", "--config", filepath.Join(t.TempDir(), "nope")); code != 1 {
		t.Errorf("a missing config: exit %d", code)
	}
}

func TestPolicyEvalConfigUsesTheIssuersClaims(t *testing.T) {
	cf := cliCaddyfile(t, developersPolicy, "")
	// alice signs in to webapp: its policy (inline-admins) reads the roles
	// the claim map made from her groups.
	code, stdout, stderr := runCLI(t, "policy", "eval", "--config", cf, "--user", "alice", "--client", "webapp")
	if code != 0 || !strings.HasPrefix(stdout, "allow: policy \"inline-admins\"\nclaims of user \"alice\" signing in to client \"webapp\":\n") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	_, js, _ := strings.Cut(stdout, ":\n{")
	var claims map[string]any
	if err := json.Unmarshal([]byte("{"+js), &claims); err != nil {
		t.Fatalf("claims: %v\n%s", err, stdout)
	}
	for k, want := range map[string]any{
		"iss": "https://auth.example.com", "sub": "alice", "aud": "https://api.example.com", "azp": "webapp",
		"client_id": "webapp", "scope": "openid email orders:read", "email": "alice@example.com",
	} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if r, _ := json.Marshal(claims["roles"]); string(r) != `["admin","developer"]` || claims["amr"] == nil || claims["auth_time"] == nil {
		t.Errorf("roles %s, amr %v, auth_time %v", r, claims["amr"], claims["auth_time"])
	}
	if _, ok := claims["name"]; ok {
		t.Error("the profile scope was not requested, yet the claims carry name")
	}

	// bob is not an admin: deny, exit 2, with the explanation.
	code, stdout, _ = runCLI(t, "policy", "eval", "--config", cf, "--user", "bob@example.com", "--client", "webapp")
	if code != 2 || !strings.HasPrefix(stdout, "deny\n  policy \"inline-admins\"") {
		t.Fatalf("bob: exit %d\n%s", code, stdout)
	}
	// Named policies, without a client: every claim but the client's.
	code, stdout, _ = runCLI(t, "policy", "eval", "--config", cf, "--user", "bob", "--policy", "developers")
	if code != 0 || !strings.HasPrefix(stdout, "allow: policy \"developers\"\nclaims of user \"bob\":\n") || strings.Contains(stdout, `"client_id"`) {
		t.Fatalf("bob, developers: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{
		{"--user", "carol"},
		{"--user", "alice", "--client", "nope"},
		{"--user", "alice", "--domain", "nope"},
		{"--user", "alice", "--policy", "nope"},
		{},
	} {
		if code, stdout, _ := runCLI(t, append([]string{"policy", "eval", "--config", cf}, args...)...); code != 1 {
			t.Errorf("%v: exit %d\n%s", args, code, stdout)
		}
	}
}
