package module

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGatehouseCommandDispatchesPolicyCheckAndEval(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	claims := filepath.Join(dir, "claims.json")
	os.WriteFile(good, []byte("policy:\n  - id: admins\n    all:\n      - rule:\n          claim: groups\n          in: [admins]\n"), 0o600)
	os.WriteFile(bad, []byte("policy:\n  - id: admins\n"), 0o600)
	os.WriteFile(claims, []byte(`{"groups":["dev"]}`), 0o600)
	stdout, stderr := os.Stdout, os.Stderr
	null, _ := os.Open(os.DevNull)
	os.Stdout, os.Stderr = null, null
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"policy", "check", good}, 0},
		{[]string{"policy", "check", bad}, 1},
		{[]string{"policy", "eval", good, "--claims", claims}, 2},
		{[]string{"policy", "frobnicate"}, 1},
		{[]string{"keys"}, 1},
	}
	for _, c := range cases {
		if got := runGatehouseCommand(c.args); got != c.want {
			t.Errorf("caddy gatehouse %v: exit %d, want %d", c.args, got, c.want)
		}
	}
}
