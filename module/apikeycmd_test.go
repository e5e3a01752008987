package module

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/mgmtapi"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// TestAPIKeyCommands: create prints the key alone on stdout's first line
// and stores only its hash; list shows the key's record, never the key;
// revoke revokes it. Nothing but the store and the logs is opened: no
// signing key is made. Each action is in the configuration's audit log,
// the key never.
func TestAPIKeyCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "gatehouse.db")
	auditLog := filepath.Join(dir, "audit.log")
	cf := writeTemp(t, "Caddyfile", `{
	log audit {
		output file `+auditLog+`
		include gatehouse.audit
		format json
	}
	gatehouse {
		store sqlite `+db+`
		domain acme {
			issuer https://auth.example.com/acme
		}
	}
}
`)
	code, stdout, stderr := runCLI(t, "apikey", "create", "--config", cf, "--domain", "acme", "--read-only", "--name", "ci", "--expires", "720h")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	key := lines[0]
	id, ok := mgmtapi.ParseKeyID(key)
	if !ok || len(lines) != 1 || !strings.Contains(stderr, "API key "+id+` created: "ci", domain "acme", read-only, expires`) {
		t.Fatalf("create printed\nstdout: %q\nstderr: %q", stdout, stderr)
	}

	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	rec, err := st.APIKey(ctx, id)
	if err != nil || rec.Hash != mgmtapi.HashKey(key) || rec.Domain != "acme" || !rec.ReadOnly || rec.CreatedBy != "cli" || rec.ExpiresAt.Sub(rec.CreatedAt).Hours() != 720 {
		t.Fatalf("stored %+v (%v)", rec, err)
	}
	if keys, _ := st.SigningKeys(ctx, "acme"); len(keys) != 0 {
		t.Fatal("the command made a signing key")
	}

	code, stdout, _ = runCLI(t, "apikey", "list", "--config", cf)
	if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, "read-only") || strings.Contains(stdout, key) {
		t.Fatalf("list: exit %d\n%s", code, stdout)
	}
	// A global key that never expires.
	code, stdout, stderr = runCLI(t, "apikey", "create", "--config", cf, "--expires", "0")
	if code != 0 || !strings.Contains(stderr, "global, read-write, never expires") {
		t.Fatalf("global key: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "apikey", "revoke", id, "--config", cf)
	if code != 0 || !strings.Contains(stdout, "API key "+id+" revoked") {
		t.Fatalf("revoke: exit %d\n%s%s", code, stdout, stderr)
	}
	if rec, _ := st.APIKey(ctx, id); rec.RevokedAt.IsZero() {
		t.Fatal("the key is not revoked")
	}

	// Mistakes, each with status 1 and nothing stored.
	before, _ := st.APIKeys(ctx)
	for _, args := range [][]string{
		{"apikey", "create", "--config", cf, "--domain", "nope"},
		{"apikey", "create", "--config", cf, "--expires", "-1h"},
		{"apikey", "create"},
		{"apikey", "revoke", key, "--config", cf},
		{"apikey", "revoke", "aaaaaaaaaaaaaaaa", "--config", cf},
	} {
		if code, stdout, _ := runCLI(t, args...); code != 1 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
	if after, _ := st.APIKeys(ctx); len(after) != len(before) {
		t.Fatal("a refused command stored a key")
	}
	var _ store.Credentials = st

	raw, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct{ Logger, Action, Outcome, Via, Object string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Logger != "gatehouse.audit" || e.Via != "cli" {
			t.Fatalf("audit line %q", line)
		}
		if e.Object == id {
			e.Object = "<id>"
		}
		got = append(got, e.Action+" "+e.Outcome+" "+e.Object)
	}
	if len(got) < 3 {
		t.Fatalf("audit log: %q", got)
	}
	want := []string{"apikey.create success <id>", "apikey.list success ", "apikey.create success " + strings.Split(got[2], " ")[2],
		"apikey.revoke success <id>", "apikey.revoke failure aaaaaaaaaaaaaaaa"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || strings.Contains(string(raw), key) {
		t.Fatalf("audit log:\n%s\nwant:\n%s\n(the key must not be in it)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
