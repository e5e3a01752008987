package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/gatehouse-auth/gatehouse/module"
)

// A store that exists only in this test build: it proves that a store
// outside the module, registered as a guest module in gatehouse.stores, is
// named in the Caddyfile like the built-in ones (`store <backend> ...`, read
// by its own UnmarshalCaddyfile) and runs.
func init() {
	caddy.RegisterModule(DirStore{})
}

// DirStore (gatehouse.stores.dirstore) keeps the SQLite store as state.db in
// a folder: `store dirstore <dir>`.
type DirStore struct {
	Dir string `json:"dir,omitempty"`

	module.SQLiteStore `json:"-"`
}

func (DirStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "gatehouse.stores.dirstore", New: func() caddy.Module { return new(DirStore) }}
}

func (s *DirStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.Err("store dirstore needs a folder")
	}
	s.Dir = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func (*DirStore) CaddyfileUsage() string { return "store dirstore <dir>" }

func (s *DirStore) Provision(caddy.Context) error {
	s.Path = filepath.Join(s.Dir, "state.db")
	return nil
}

func TestStore_AGuestModuleIsNamedInTheCaddyfile(t *testing.T) {
	dir := t.TempDir()
	issuer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cf := fmt.Sprintf(`{
	gatehouse {
		store dirstore %s
		domain {
			issuer %s
		}
	}
}

%s {
	gatehouse_issuer
}
`, dir, issuer, issuer)

	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(withTestGlobals(cf, "")), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Gatehouse struct {
				Store map[string]any `json:"store"`
			} `json:"gatehouse"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if st := cfg.Apps.Gatehouse.Store; st["backend"] != "dirstore" || st["dir"] != dir || len(st) != 2 {
		t.Fatalf("store JSON %v, want the dirstore module with its folder", st)
	}

	// The stores' list in errors names it too.
	bad := strings.Replace(cf, "store dirstore "+dir, "store mysql x", 1)
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(bad), map[string]any{"filename": "Caddyfile"}); err == nil ||
		!strings.Contains(err.Error(), "unknown store \"mysql\"; use `store sqlite [path]`, `store dirstore <dir>` or `store postgres <dsn>`") {
		t.Fatalf("unknown store: %v", err)
	}

	startCaddy(t, cf)
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Fatalf("the guest store did not keep the state in its folder: %v", err)
	}
}
