package module

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/version"
)

func TestGatehouseCommandDispatchesPolicyCheckAndEval(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	claims := filepath.Join(dir, "claims.json")
	os.WriteFile(good, []byte("policy:\n  - id: admins\n    all:\n      - rule:\n          claim: groups\n          in: [admins]\n"), 0o600)
	os.WriteFile(bad, []byte("policy:\n  - id: admins\n"), 0o600)
	os.WriteFile(claims, []byte(`{"groups":["dev"]}`), 0o600)
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"policy", "check", good}, 0},
		{[]string{"policy", "check", bad}, 1},
		{[]string{"policy", "eval", good, "--claims", claims}, 2},
		{[]string{"policy", "frobnicate"}, 1},
		{[]string{"keys"}, 1},
		{[]string{"version", "extra"}, 1},
	}
	for _, c := range cases {
		if got := runGatehouseCommand(c.args, io.Discard, io.Discard); got != c.want {
			t.Errorf("caddy gatehouse %v: exit %d, want %d", c.args, got, c.want)
		}
	}
}

func TestGatehouseVersionCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runGatehouseCommand([]string{"version"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("caddy gatehouse version: exit %d, stderr %q", code, stderr.String())
	}
	// A test binary records neither a revision nor its dependencies, so this
	// says "gatehouse (devel) caddy unknown go1.x"; cmd/gatehouse-build's
	// tests run the command in a real, stamped binary.
	want := regexp.MustCompile(`^gatehouse \(devel\) caddy \S+ go1\.\d+\S*\n$`)
	if !want.MatchString(stdout.String()) || stdout.String() != version.Get().String()+"\n" {
		t.Errorf("caddy gatehouse version printed %q", stdout.String())
	}
}
