package module

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// FuzzCaddyfileAdapt feeds arbitrary Caddyfile text through the adapter
// with Gatehouse's global option and directives registered: parsing must
// return a config or an error, never panic. Seeds are the golden files.
func FuzzCaddyfileAdapt(f *testing.F) {
	files, _ := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		in, _, _ := strings.Cut(string(b), "\n----------\n")
		f.Add(in)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, src string) {
		// import reads files from disk (Caddy's parser, not ours): a fuzzed
		// glob can make it walk the file system.
		if len(src) > 8<<10 || strings.Contains(src, "import") {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _, _ = adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("adapting took more than 3s")
		}
	})
}
