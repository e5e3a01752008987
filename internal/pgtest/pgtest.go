// Package pgtest gives a test a PostgreSQL schema of its own in the test
// database named by GATEHOUSE_TEST_POSTGRES_DSN, so that runs and tests never
// see each other's tables. .ci/postgres.sh starts a throwaway cluster and
// prints the variable: eval "$(bash .ci/postgres.sh)".
//
// Outside CI a missing DSN skips the test; in CI (CI=true) it fails it, so a
// PostgreSQL test cannot silently not run there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNEnv names the variable holding the DSN of a PostgreSQL database where
// the tests may create schemas.
const DSNEnv = "GATEHOUSE_TEST_POSTGRES_DSN"

// DSN returns the test database's DSN, or ends t (see the package comment).
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(DSNEnv + " must be set in CI")
		}
		t.Skip(DSNEnv + ` is not set: run (as root) eval "$(bash .ci/postgres.sh)" first, or point it at a database where the tests may create schemas`)
	}
	return dsn
}

var (
	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
)

// Admin returns a pool on the test database (one per test binary), for
// statements outside any test's schema.
func Admin(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := DSN(t)
	adminOnce.Do(func() { admin, adminErr = pgxpool.New(context.Background(), dsn) })
	if adminErr != nil {
		t.Fatalf("connecting to %s: %v", DSNEnv, adminErr)
	}
	return admin
}

// Schema creates a schema named prefix plus 16 random hex digits, dropped
// (with everything in it) when t ends, and returns the test database's DSN
// with search_path set to it, and its name. Cleanups run last-registered
// first: a store or process started after Schema is gone before the drop.
func Schema(t testing.TB, prefix string) (dsn, name string) {
	t.Helper()
	pool := Admin(t)
	b := make([]byte, 8)
	rand.Read(b)
	name = prefix + hex.EncodeToString(b)
	quoted := pgx.Identifier{name}.Sanitize()
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA "+quoted); err != nil {
		t.Fatalf("creating schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+quoted+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	dsn, err := WithSearchPath(DSN(t), name)
	if err != nil {
		t.Fatalf("%s: %v", DSNEnv, err)
	}
	return dsn, name
}

// WithSearchPath returns dsn (a URL or key=value DSN) with its search_path
// set to schema.
func WithSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Not err: it would quote the DSN, password and all.
			return "", errors.New("the DSN is not a valid URL")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}
