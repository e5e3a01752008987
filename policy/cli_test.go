package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const cliPolicies = `policy:
  - id: admins-only
    all:
      - rule: {claim: groups, in: [admins]}
  - id: adults
    all:
      - rule: {claim: age, minValue: 18}
`

func TestRunCheck(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.yaml":  cliPolicies,
		"other.yaml": "policy:\n  - id: extra\n    any: [{rule: {claim: x}}]\n",
		"dup.yaml":   "policy:\n  - id: adults\n    any: [{rule: {claim: x}}]\n",
		"bad.yaml":   "policy:\n  - id: a\n    all:\n      - rule: {claim: x, minValue: 9, maxValue: 1}\n",
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{"valid file is ok", []string{p("good.yaml")}, ExitOK, "ok: 2 policies (admins-only, adults)\n", ""},
		{"several files are checked together", []string{p("good.yaml"), p("other.yaml")}, ExitOK, "ok: 3 policies (admins-only, adults, extra)\n", ""},
		{"duplicate id across files is an error", []string{p("good.yaml"), p("dup.yaml")}, ExitError, "", `policy "adults": duplicate policy id "adults"`},
		{"errors are printed with their position", []string{p("bad.yaml")}, ExitError, "", p("bad.yaml") + `:4:26: minValue "9" is greater than maxValue "1"`},
		{"missing file is an error", []string{p("nope.yaml")}, ExitError, "", "no such file"},
		{"no file is a usage error", nil, ExitError, "", "usage: policy check FILE..."},
		{"unknown flag is a usage error", []string{"--bogus", p("good.yaml")}, ExitError, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := RunCheck(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.stdout)
			}
			if !strings.Contains(errOut.String(), tt.stderrHas) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderrHas)
			}
		})
	}
}

func TestRunEval(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"p.yaml":      cliPolicies,
		"bad.yaml":    "policy: []\n",
		"admin.json":  `{"groups": ["admins"], "age": 12}`,
		"kid.json":    `{"groups": ["dev"], "age": 12}`,
		"big.json":    `{"groups": ["dev"], "age": 123456789012345678901234567890}`,
		"array.json":  `["not", "an", "object"]`,
		"null.json":   `null`,
		"trail.json":  `{"a": 1} {"b": 2}`,
		"broken.json": `{"a": `,
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{"allow prints the policy", []string{p("p.yaml"), "--claims", p("admin.json")}, ExitOK, "allow: policy \"admins-only\"\n", ""},
		{"flags may come first", []string{"--claims", p("admin.json"), "--policy", "admins-only", p("p.yaml")}, ExitOK, "allow: policy \"admins-only\"\n", ""},
		{"deny prints every failure", []string{p("p.yaml"), "--claims", p("kid.json")}, ExitDeny,
			"deny\n  policy \"admins-only\" all[0]: claim \"groups\" = [\"dev\"], not in [admins]\n  policy \"adults\" all[0]: claim \"age\" = 12, less than minValue 18\n", ""},
		{"only the named policies are evaluated", []string{p("p.yaml"), "--claims", p("admin.json"), "--policy", "adults"}, ExitDeny,
			"deny\n  policy \"adults\" all[0]: claim \"age\" = 12, less than minValue 18\n", ""},
		{"numbers keep their precision", []string{p("p.yaml"), "--claims", p("big.json"), "--policy", "adults"}, ExitOK, "allow: policy \"adults\"\n", ""},
		{"unknown policy id is an error, not a denial", []string{p("p.yaml"), "--claims", p("admin.json"), "--policy", "nope"}, ExitError, "", `unknown policy "nope" (defined: "admins-only", "adults")`},
		{"invalid policy file is an error", []string{p("bad.yaml"), "--claims", p("admin.json")}, ExitError, "", p("bad.yaml") + ":1:9: policy list is empty"},
		{"claims must be an object", []string{p("p.yaml"), "--claims", p("array.json")}, ExitError, "", "claims must be a JSON object"},
		{"null claims are rejected", []string{p("p.yaml"), "--claims", p("null.json")}, ExitError, "", "claims must be a JSON object, not null"},
		{"trailing data is rejected", []string{p("p.yaml"), "--claims", p("trail.json")}, ExitError, "", "unexpected data after the claims object"},
		{"broken JSON is rejected", []string{p("p.yaml"), "--claims", p("broken.json")}, ExitError, "", "claims must be a JSON object"},
		{"missing claims flag is a usage error", []string{p("p.yaml")}, ExitError, "", "usage: policy eval FILE --claims CLAIMS.json"},
		{"two files are a usage error", []string{p("p.yaml"), p("p.yaml"), "--claims", p("admin.json")}, ExitError, "", "usage: policy eval"},
		{"missing claims file is an error", []string{p("p.yaml"), "--claims", p("nope.json")}, ExitError, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := RunEval(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.stdout)
			}
			if !strings.Contains(errOut.String(), tt.stderrHas) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderrHas)
			}
		})
	}
}
