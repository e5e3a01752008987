package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/storetest"
)

// freshSchema returns the DSN of a schema of the test database of t's
// own, dropped when t ends (internal/pgtest).
func freshSchema(t testing.TB) string {
	t.Helper()
	dsn, _ := pgtest.Schema(t, "gatehouse_test_")
	return dsn
}

// open opens a Store, closed (before its schema is dropped) when t ends.
func open(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tables are every table the suite writes, emptied between its subtests.
var tables = []string{"signing_keys", "secrets", "auth_codes", "refresh_tokens", "revocations", "sessions", "session_grants", "login_failures",
	"domains", "users", "user_logins", "user_identities", "clients", "policies", "api_keys"}

// reusing returns a newStore for storetest.Run that hands every subtest the
// same store, emptied first. Schema creation and migration (DDL) cost far
// more than the tests themselves, so each top-level test makes one schema.
func reusing(s *Store, handle store.Store) func(t *testing.T) store.Store {
	return func(t *testing.T) store.Store {
		for _, table := range tables {
			if _, err := s.pool.Exec(context.Background(), "DELETE FROM "+table); err != nil {
				t.Fatalf("emptying %s: %v", table, err)
			}
		}
		return handle
	}
}

func TestConformance(t *testing.T) {
	s := open(t, freshSchema(t))
	storetest.Run(t, reusing(s, s))
}

// Two pools on one schema stand for two Gatehouse instances sharing the
// database: calls alternate between them.
func TestConformanceTwoInstances(t *testing.T) {
	d := freshSchema(t)
	a, b := open(t, d), open(t, d)
	storetest.Run(t, reusing(a, storetest.RoundRobin(a, b)))
}

func TestOpenMalformedDSN(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:s3cret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("got %v, want an error that does not contain the password", err)
	}
}

func TestOpen(t *testing.T) {
	pgtest.DSN(t)
	ctx := context.Background()
	t.Run("concurrent first opens migrate once", func(t *testing.T) {
		d := freshSchema(t)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(ctx, d)
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		s := open(t, d)
		var n int
		if err := s.pool.QueryRow(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(migrations))
		}
	})
	t.Run("database from a newer Gatehouse is refused", func(t *testing.T) {
		d := freshSchema(t)
		s := open(t, d)
		if _, err := s.pool.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, now())"); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ctx, d)
		if err == nil || !strings.Contains(err.Error(), "schema version 999") {
			t.Fatalf("got %v, want an error naming schema version 999", err)
		}
	})
}

func BenchmarkCreateConsumeAuthCode(b *testing.B) {
	storetest.BenchmarkCreateConsumeAuthCode(b, open(b, freshSchema(b)))
}

func BenchmarkRotateRefreshToken(b *testing.B) {
	storetest.BenchmarkRotateRefreshToken(b, open(b, freshSchema(b)))
}

func BenchmarkUserRead(b *testing.B) {
	storetest.BenchmarkUserRead(b, open(b, freshSchema(b)))
}

func TestClock(t *testing.T) {
	s := open(t, freshSchema(t))
	storetest.TestClock(t, s, func(now func() time.Time) { s.Now = now })
}

// TestMigrateFromVersion3 upgrades a schema of version 3 (as the previous
// release left it, with data in every table) to the current one: the data
// survives, and the session grants of version 4 work.
func TestMigrateFromVersion3(t *testing.T) {
	ctx := context.Background()
	d := freshSchema(t)
	pool, err := pgxpool.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, pool, time.Now, 3); err != nil {
		pool.Close()
		t.Fatal(err)
	}
	old := on(pool)
	data := storetest.FillVersion3(t, old)
	old.Close()

	s := open(t, d)
	var version int
	if err := s.pool.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version != len(migrations) || version != 5 {
		t.Fatalf("schema version %d (%v), want 5", version, err)
	}
	data.Check(t, s)
}

// TestMigrateFromVersion4 upgrades a schema of version 4, with data in every
// table, to the current one: the data survives, the session grants are
// filed under their sessions' domain and subject, and the directory and
// API-key tables of version 5 work.
func TestMigrateFromVersion4(t *testing.T) {
	ctx := context.Background()
	d := freshSchema(t)
	pool, err := pgxpool.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, pool, time.Now, 4); err != nil {
		pool.Close()
		t.Fatal(err)
	}
	old := on(pool)
	data := storetest.FillVersion4(t, old, func(g store.SessionGrant) error {
		_, err := pool.Exec(ctx, `INSERT INTO session_grants (session_id, family_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			g.SessionID, g.FamilyID, g.ClientID, g.CreatedAt, g.ExpiresAt)
		return err
	})
	old.Close()

	s := open(t, d)
	var version int
	if err := s.pool.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version != len(migrations) || version != 5 {
		t.Fatalf("schema version %d (%v), want 5", version, err)
	}
	data.Check(t, s)
}
