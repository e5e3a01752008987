package module

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/postgres"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func init() {
	caddy.RegisterModule(SQLiteStore{})
	caddy.RegisterModule(PostgresStore{})
}

// StoreOpener is implemented by the guest modules in the gatehouse.stores
// namespace.
type StoreOpener interface {
	// StoreKey identifies the database, so that every configuration that
	// names the same database shares one open store across reloads.
	StoreKey() string
	// OpenStore opens (and migrates) the store.
	OpenStore(ctx context.Context) (store.Store, error)
}

// SQLiteStore keeps Gatehouse's run-time state in an embedded SQLite file.
// It is the default store; nothing needs to be installed.
type SQLiteStore struct {
	// Path of the database file. Default: gatehouse/gatehouse.db in Caddy's
	// data directory. Relative paths are relative to Caddy's working directory.
	Path string `json:"path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (SQLiteStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "gatehouse.stores.sqlite",
		New: func() caddy.Module { return new(SQLiteStore) },
	}
}

// Provision fills in the default path.
func (s *SQLiteStore) Provision(caddy.Context) error {
	if s.Path == "" {
		s.Path = filepath.Join(caddy.AppDataDir(), "gatehouse", "gatehouse.db")
	}
	return nil
}

// StoreKey implements StoreOpener.
func (s *SQLiteStore) StoreKey() string {
	p, err := filepath.Abs(s.Path)
	if err != nil {
		p = s.Path
	}
	return "sqlite:" + p
}

// OpenStore implements StoreOpener.
func (s *SQLiteStore) OpenStore(context.Context) (store.Store, error) {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of the SQLite store: %w", err)
	}
	st, err := sqlite.Open(s.Path)
	if err != nil {
		return nil, fmt.Errorf("opening the SQLite store %s: %w", s.Path, err)
	}
	return st, nil
}

// PostgresStore keeps Gatehouse's run-time state in PostgreSQL, so several
// Caddy instances behind a load balancer share keys, sessions, codes and
// tokens.
type PostgresStore struct {
	// DSN is the connection string (URL or key=value form), usually given as
	// {env.DATABASE_URL}. Required.
	DSN string `json:"dsn,omitempty"`

	dsn string // with placeholders replaced
}

// CaddyModule returns the Caddy module information.
func (PostgresStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "gatehouse.stores.postgres",
		New: func() caddy.Module { return new(PostgresStore) },
	}
}

// Provision replaces placeholders in the DSN.
func (s *PostgresStore) Provision(caddy.Context) error {
	s.dsn = caddy.NewReplacer().ReplaceKnown(s.DSN, "")
	if s.dsn == "" {
		return fmt.Errorf("store postgres: the connection string is empty; give one, e.g. `store postgres {env.DATABASE_URL}`")
	}
	return nil
}

// StoreKey implements StoreOpener.
func (s *PostgresStore) StoreKey() string { return "postgres:" + s.dsn }

// OpenStore implements StoreOpener.
func (s *PostgresStore) OpenStore(ctx context.Context) (store.Store, error) {
	st, err := postgres.Open(ctx, s.dsn)
	if err != nil {
		// The DSN may hold a password: never print it.
		return nil, fmt.Errorf("opening the PostgreSQL store: %w", err)
	}
	return st, nil
}

// Interface guards
var (
	_ StoreOpener       = (*SQLiteStore)(nil)
	_ StoreOpener       = (*PostgresStore)(nil)
	_ caddy.Provisioner = (*SQLiteStore)(nil)
	_ caddy.Provisioner = (*PostgresStore)(nil)
)
