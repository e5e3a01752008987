package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartupLogNamesTheVersion: the gatehouse app logs the build's version
// (the line `caddy gatehouse version` prints) when it starts.
func TestStartupLogNamesTheVersion(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "gatehouse.log")
	startCaddy(t, fmt.Sprintf(`{
	log gatehouse {
		output file %s
		include gatehouse
		format json
	}
	gatehouse {
		store sqlite %s
	}
}`, logFile, filepath.Join(dir, "gatehouse.db")))
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var started []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["logger"] == "gatehouse" && entry["msg"] == "started" {
			started = append(started, entry)
		}
	}
	if len(started) != 1 {
		t.Fatalf("%d start-up lines from the gatehouse logger, want 1:\n%s", len(started), b)
	}
	// A test binary records no revision: "gatehouse (devel) caddy unknown go1.x".
	if v, _ := started[0]["version"].(string); !strings.HasPrefix(v, "gatehouse (devel) caddy ") || !strings.Contains(v, " go1.") {
		t.Errorf("start-up line version %q", v)
	}
}
