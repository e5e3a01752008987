package module

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// TestCaddyfileAdapt adapts every testdata/caddyfile_adapt/*.caddyfiletest:
// the part before the line of dashes is a Caddyfile, the part after is the
// expected JSON, or the expected error text when it does not start with {.
// Error cases check that the message names the problem, the line and the fix.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			want = strings.TrimSpace(want)
			out, _, adaptErr := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(strings.TrimSpace(input)+"\n"), map[string]any{"filename": "Caddyfile"})
			var got string
			if adaptErr != nil {
				got = adaptErr.Error()
			} else {
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				got = buf.String()
			}
			if *update {
				if err := os.WriteFile(f, []byte(strings.TrimSpace(input)+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr := !strings.HasPrefix(want, "{")
			switch {
			case wantErr && adaptErr == nil:
				t.Fatalf("expected an error containing %q, got JSON:\n%s", want, got)
			case wantErr && got != want:
				t.Fatalf("error = %q\nwant   %q", got, want)
			case !wantErr && adaptErr != nil:
				t.Fatalf("unexpected error: %v", adaptErr)
			case !wantErr && got != want:
				t.Fatalf("adapted JSON differs (run go test -update to accept):\n%s", got)
			}
		})
	}
}

// TestCaddyfileFilesBesideTheCaddyfile: relative policy_file and claims_map
// paths are resolved against the directory of the Caddyfile that names them
// (as `import` is), so a Caddyfile and its files can be run from anywhere.
func TestCaddyfileFilesBesideTheCaddyfile(t *testing.T) {
	src := `{
	gatehouse {
		domain {
			issuer https://auth.example.com
			policy_file policies.yaml
			policy_file /etc/gatehouse/other.yaml
			claims_map maps/claims.yaml
		}
	}
}
`
	cases := []struct{ filename, policies, claims string }{
		{"/srv/site/Caddyfile", "/srv/site/policies.yaml", "/srv/site/maps/claims.yaml"},
		{"examples/production.Caddyfile", "examples/policies.yaml", "examples/maps/claims.yaml"},
		{"Caddyfile", "policies.yaml", "maps/claims.yaml"},
	}
	for _, c := range cases {
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": c.filename})
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Apps struct {
				Gatehouse App `json:"gatehouse"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		dc := cfg.Apps.Gatehouse.Domains[0]
		if len(dc.PolicyFiles) != 2 || dc.PolicyFiles[0] != c.policies || dc.PolicyFiles[1] != "/etc/gatehouse/other.yaml" || dc.ClaimsMapFile != c.claims {
			t.Errorf("%s: policy files %q, claim map %q; want %q and %q", c.filename, dc.PolicyFiles, dc.ClaimsMapFile, c.policies, c.claims)
		}
	}
}
