package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestExamples_Adapt adapts every Caddyfile in caddyfile-examples/: each is
// a real, runnable configuration.
func TestExamples_Adapt(t *testing.T) {
	files, err := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
		})
	}
}

// TestExamples_Quickstart runs the quickstart Caddyfile (on free ports and
// a temporary store) and signs in as the demo account the README names.
func TestExamples_Quickstart(t *testing.T) {
	src, err := os.ReadFile("../caddyfile-examples/quickstart.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	issuerPort, appPort := freePort(t), freePort(t)
	cf := strings.NewReplacer(
		"localhost:9000", fmt.Sprintf("localhost:%d", issuerPort),
		"127.0.0.1:9001", fmt.Sprintf("127.0.0.1:%d", appPort),
		"\tgatehouse {\n\t\t#", fmt.Sprintf("\tgatehouse {\n\t\tstore sqlite %s\n\t\t#", filepath.Join(t.TempDir(), "qs.db")),
	).Replace(string(src))
	if !strings.Contains(cf, "store sqlite") {
		t.Fatal("could not point the quickstart at a temporary store")
	}
	startCaddy(t, cf)
	app := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	b := browser(t)
	resp, _ := do(t, b, "GET", app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("quickstart app did not send the browser to sign in: %d", resp.StatusCode)
	}
	back := signIn(t, b, loc.String(), "alice", "gatehouse-demo")
	do(t, b, "GET", back.String(), nil)
	resp, body := do(t, b, "GET", app+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello alice@example.com (sub alice)") {
		t.Fatalf("quickstart page: %d %q", resp.StatusCode, body)
	}
}
