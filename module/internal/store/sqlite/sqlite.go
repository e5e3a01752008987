package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlstore"
)

// busyTimeout is how long a writer waits for another process's write lock
// before giving up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store in one SQLite file: the SQL store in its SQLite
// dialect. It is safe for concurrent use, and several Stores (in one process
// or several) may open the same file.
type Store struct {
	*sqlstore.Store

	w *sql.DB // one connection; transactions BEGIN IMMEDIATE
	r *sql.DB // read-only connections
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it 0600, and its directory 0700, if needed) the SQLite
// database at path and migrates its schema to the current version.
func Open(path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite store: path %q must be a file path (an in-memory or URI database cannot be shared between connections)", path)
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite store: path %q must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: creating the directory of %s: %w", path, err)
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives its mode from, are private to this user.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	f.Close()

	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	ctx := context.Background()
	if err := migrate(ctx, w, time.Now); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	r.SetMaxIdleConns(4)
	s := on(w, r)
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	return s, nil
}

// on returns the Store on the write and read handles, which Close closes.
func on(w, r *sql.DB) *Store {
	s := &Store{w: w, r: r}
	s.Store = sqlstore.New(sqlstore.SQLite, w, r, func() error {
		errs := []error{r.Close()}
		if w != r {
			errs = append(errs, w.Close())
		}
		return errors.Join(errs...)
	})
	return s
}
