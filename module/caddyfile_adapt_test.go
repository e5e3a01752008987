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
