package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/storetest"
)

func open(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

// Two Stores on one file stand for two Caddy instances sharing it: every
// other call goes to the other handle, so the concurrent tests race across
// connections that only SQLite's file lock keeps apart.
func TestConformanceTwoStoresOneFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		return storetest.RoundRobin(open(t, path), open(t, path))
	})
}

func TestOpen(t *testing.T) {
	t.Run("database file is private to the user", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "dir", "gatehouse.db")
		open(t, path)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s has mode %o, want 600", filepath.Base(p), mode)
			}
		}
		fi, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o700 {
			t.Errorf("created directory has mode %o, want 700", mode)
		}
	})
	t.Run("connection runs in WAL with synchronous NORMAL, foreign keys and a busy timeout", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
		for _, tc := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"synchronous", "1"},
			{"foreign_keys", "1"},
			{"busy_timeout", "10000"},
		} {
			var got string
			if err := s.w.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		}
	})
	t.Run("reopening keeps the data and applies no migration twice", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Secret(context.Background(), "k", []byte("v1")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open(t, path)
		got, err := s.Secret(context.Background(), "k", []byte("v2"))
		if err != nil || string(got) != "v1" {
			t.Fatalf("after reopening, secret = %q, %v; want v1", got, err)
		}
		var n, max int
		if err := s.r.QueryRow("SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) || max != len(migrations) {
			t.Fatalf("schema_migrations has %d rows up to version %d, want %d", n, max, len(migrations))
		}
	})
	t.Run("database from a newer Gatehouse is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		s := open(t, path)
		if _, err := s.w.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), "schema version 999") {
			t.Fatalf("got %v, want an error naming schema version 999", err)
		}
	})
	t.Run("concurrent first opens migrate once", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(path)
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
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(migrations))
		}
	})
	for _, tc := range []struct{ name, path string }{
		{"empty path is refused", ""},
		{"in-memory database is refused", ":memory:"},
		{"URI is refused", "file:x.db?mode=memory"},
		{"path with a query is refused", "/tmp/x.db?_txlock=deferred"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := Open(tc.path); err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
		})
	}
}

// BEGIN IMMEDIATE is what makes read-modify-write safe across processes: the
// write lock is taken before the read, not upgraded to after it (which, in
// WAL mode, fails with SQLITE_BUSY_SNAPSHOT instead of waiting).
func TestWriteTransactionsLockWhenTheyBegin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := open(t, path)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow("SELECT COUNT(*) FROM sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", path+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err == nil {
		conn.ExecContext(ctx, "ROLLBACK")
		t.Fatal("another connection took the write lock while a store transaction that has only read was open")
	}
	if !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
		t.Fatalf("got %v, want SQLITE_BUSY", err)
	}
}

func TestReaderCannotWrite(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	if _, err := s.r.Exec("DELETE FROM sessions"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

func BenchmarkCreateConsumeAuthCode(b *testing.B) {
	storetest.BenchmarkCreateConsumeAuthCode(b, open(b, filepath.Join(b.TempDir(), "gatehouse.db")))
}

func BenchmarkRotateRefreshToken(b *testing.B) {
	storetest.BenchmarkRotateRefreshToken(b, open(b, filepath.Join(b.TempDir(), "gatehouse.db")))
}

func BenchmarkUserRead(b *testing.B) {
	storetest.BenchmarkUserRead(b, open(b, filepath.Join(b.TempDir(), "gatehouse.db")))
}

func TestClock(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	storetest.TestClock(t, s, func(now func() time.Time) { s.Now = now })
}

// TestMigrateFromVersion3 upgrades a database of schema version 3 (as the
// previous release left it, with data in every table) to the current one:
// the data survives, and the session grants of version 4 work.
func TestMigrateFromVersion3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	w, err := sql.Open("sqlite", path+"?_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, w, time.Now, 3); err != nil {
		t.Fatal(err)
	}
	// The previous release's Store on it: every table of version 3 gets a row.
	old := on(w, w)
	data := storetest.FillVersion3(t, old)
	w.Close()

	s := open(t, path)
	var version int
	if err := s.r.QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version != len(migrations) || version != 5 {
		t.Fatalf("schema version %d (%v), want 5", version, err)
	}
	data.Check(t, s)
}

// TestMigrateFromVersion4 upgrades a database of schema version 4, with data
// in every table, to the current one: the data survives, the session grants
// are filed under their sessions' domain and subject, and the directory and
// API-key tables of version 5 work.
func TestMigrateFromVersion4(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	w, err := sql.Open("sqlite", path+"?_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, w, time.Now, 4); err != nil {
		t.Fatal(err)
	}
	data := storetest.FillVersion4(t, on(w, w), func(g store.SessionGrant) error {
		_, err := w.Exec(`INSERT INTO session_grants (session_id, family_id, client_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			g.SessionID, g.FamilyID, g.ClientID, g.CreatedAt.UnixMicro(), g.ExpiresAt.UnixMicro())
		return err
	})
	w.Close()

	s := open(t, path)
	var version int
	if err := s.r.QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version != len(migrations) || version != 5 {
		t.Fatalf("schema version %d (%v), want 5", version, err)
	}
	data.Check(t, s)
}
