package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// logEntries reads a JSON log file.
func logEntries(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, entry)
	}
	return out
}

// TestStartupLogSaysWhereThingsAre: the gatehouse app's start-up lines name
// the store, every domain's issuer (with its discovery and health URLs) and
// the sites the gates protect; the first signing key of a domain is audited
// as created, not rotated.
func TestStartupLogSaysWhereThingsAre(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "gatehouse.log")
	db := filepath.Join(dir, "gatehouse.db")
	issuer := fmt.Sprintf("http://localhost:%d", freePort(t))
	app := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	api := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	startCaddy(t, fmt.Sprintf(`{
	log gatehouse {
		output file %s
		include gatehouse gatehouse.audit
		format json
	}
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
			client webapp {
				redirect_uris %s/.gatehouse/callback
			}
		}
	}
}

%s {
	gatehouse_issuer
}

%s {
	gatehouse {
		login webapp
	}
	respond ok
}

%s {
	gatehouse {
		bearer {
			audience api
		}
	}
	respond ok
}
`, logFile, db, issuer, app, issuer, app, api))
	entries := logEntries(t, logFile)
	var started, issuers, keys []map[string]any
	for _, e := range entries {
		switch {
		case e["logger"] == "gatehouse" && e["msg"] == "started":
			started = append(started, e)
		case e["logger"] == "gatehouse" && e["msg"] == "issuer":
			issuers = append(issuers, e)
		case e["event"] == "key_rotation":
			keys = append(keys, e)
		}
	}
	if len(started) != 1 || len(issuers) != 1 {
		t.Fatalf("%d started and %d issuer lines:\n%v", len(started), len(issuers), entries)
	}
	if started[0]["store"] != "sqlite "+db {
		t.Errorf("store %v, want %q", started[0]["store"], "sqlite "+db)
	}
	var sites []string
	for _, s := range started[0]["protected_sites"].([]any) {
		sites = append(sites, s.(string))
	}
	slices.Sort(sites)
	if want := []string{app, api}; !slices.Equal(sites, slices.Sorted(slices.Values(want))) {
		t.Errorf("protected sites %v, want %v", sites, want)
	}
	if issuers[0]["issuer"] != issuer || issuers[0]["discovery"] != issuer+"/.well-known/openid-configuration" || issuers[0]["health"] != issuer+"/healthz" {
		t.Errorf("issuer line %v", issuers[0])
	}
	if len(keys) != 1 || keys[0]["msg"] != "signing key created" || keys[0]["old_kid"] != "" || keys[0]["kid"] == "" {
		t.Errorf("key audit lines %v, want one \"signing key created\"", keys)
	}
}
