package module

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
)

// validateCaddyfile is a configuration that uses every part of Gatehouse
// that touched the store when it was provisioned: the issuer (signing keys,
// its request key), a gate with browser sessions (the cookie keys, the
// ended-sessions watcher) and the embedded issuer's bearer tokens (the
// domain's keys), a policy matcher and the management API.
const validateCaddyfile = `{
	gatehouse {
		%s
		domain {
			issuer https://auth.example.com
			policy admins {
				all {
					rule {
						claim groups
						in admins
					}
				}
			}
			user alice {
				password_hash $2a$14$ajq8Q7fbtFRQvXpdCq7Jcuy.Rx1h/L4J60Otx.gyNLbAYctGMJ9tK
			}
			client webapp {
				redirect_uris https://app.example.com/.gatehouse/callback
			}
		}
	}
}

auth.example.com {
	gatehouse_issuer
}

app.example.com {
	gatehouse {
		login webapp
		bearer {
			audience api
		}
	}
	@admins gatehouse_policy admins
	respond @admins "admin"
	respond "ok"
}

tenants.example.com {
	gatehouse_issuer *
}

:9444 {
	gatehouse_api
}
`

// files lists what is under dir (relative paths), nothing for a directory
// that does not exist.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestValidateIsADryRun: `caddy validate` (caddy.Validate on the adapted
// configuration) provisions everything and creates nothing — no SQLite
// file or directory in Caddy's data directory (the default store), with
// or without a key-encryption key: no database, no schema, no signing key,
// no issuer request key, no cookie keys. Before, provisioning opened and
// migrated the store, made each domain's first signing key (sealed with
// whatever secret the validating shell had), the issuer's request key and
// the gates' cookie keys.
func TestValidateIsADryRun(t *testing.T) {
	for name, store := range map[string]string{
		"default SQLite store":             "",
		"SQLite with a key-encryption key": "key_encryption_key {env.GATEHOUSE_TEST_VALIDATE_KEK}",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			data, config := filepath.Join(root, "data"), filepath.Join(root, "config")
			for _, d := range []string{data, config} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("XDG_DATA_HOME", data)
			t.Setenv("XDG_CONFIG_HOME", config)
			t.Setenv("GATEHOUSE_TEST_VALIDATE_KEK", strings.Repeat("k", 40))
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(validateCaddyfile, store)), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if err := caddy.Validate(mustConfig(t, cfg)); err != nil {
				t.Fatalf("validate: %v", err)
			}
			for _, d := range []string{data, config} {
				if got := files(t, d); len(got) > 0 {
					t.Errorf("validate created %v in %s", got, d)
				}
			}
		})
	}
}

// TestValidateCreatesNoTableInPostgres: validating a configuration whose
// store is a fresh PostgreSQL schema reaches the database (an unreachable
// one is still refused: TestProvisionFailsFastWhenPostgresIsUnreachable)
// but creates no table in it.
func TestValidateCreatesNoTableInPostgres(t *testing.T) {
	dsn, name := pgtest.Schema(t, "gatehouse_validate_")
	admin := pgtest.Admin(t)
	ctx := context.Background()

	root := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(root, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "config"))
	t.Setenv("GATEHOUSE_TEST_VALIDATE_DSN", dsn)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(validateCaddyfile, "store postgres {env.GATEHOUSE_TEST_VALIDATE_DSN}")), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if err := caddy.Validate(mustConfig(t, cfg)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	var tables []string
	rows, err := admin.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", name)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tn string
		if err := rows.Scan(&tn); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tn)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) > 0 {
		t.Fatalf("validate created tables %v in a fresh schema", tables)
	}
	if got := files(t, root); len(got) > 0 {
		t.Errorf("validate created %v", got)
	}
}
