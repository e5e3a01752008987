package integration

import (
	"os"
	"testing"
)

// TestMain removes what tests built for the whole run (the Caddy binary of
// caddyBinary) once every test has finished.
func TestMain(m *testing.M) {
	code := m.Run()
	if caddyBinDir != "" {
		os.RemoveAll(caddyBinDir)
	}
	os.Exit(code)
}
