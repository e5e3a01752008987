package module

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/postgres"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func init() {
	caddy.RegisterModule(SQLiteStore{})
	caddy.RegisterModule(PostgresStore{})
}

// storeNamespace is the guest-module namespace of the stores.
const storeNamespace = "gatehouse.stores"

// StoreOpener is implemented by the guest modules in the gatehouse.stores
// namespace. A store that also implements caddyfile.Unmarshaler can be
// named in the Caddyfile's `store <backend> ...` (its UnmarshalCaddyfile
// reads the line from the backend's name on); one with a method
// `CaddyfileUsage() string` shows that syntax in the errors that list the
// stores.
type StoreOpener interface {
	// StoreKey identifies the database, so that every configuration that
	// names the same database shares one open store across reloads.
	StoreKey() string
	// OpenStore opens (and migrates) the store. A store on a server must
	// give up within seconds when the server cannot be reached, so that
	// start-up or a reload fails with a message instead of stalling.
	OpenStore(ctx context.Context) (store.Store, error)
}

// StoreChecker is implemented by stores that can be checked without
// writing anything (reaching a database server): a configuration whose
// store cannot be reached is refused when it is provisioned, `caddy
// validate` included, though the store is opened only when the app starts.
type StoreChecker interface {
	CheckStore(ctx context.Context) error
}

// storeUsager is what a store may implement to show its Caddyfile syntax
// in errors.
type storeUsager interface {
	CaddyfileUsage() string
}

// storeUsages lists the registered stores' Caddyfile syntax, the default
// (sqlite) first: "`store sqlite [path]` or `store postgres <dsn>`".
func storeUsages() string {
	mods := caddy.GetModules(storeNamespace)
	rank := func(m caddy.ModuleInfo) int {
		if m.ID.Name() == "sqlite" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(mods, func(a, b caddy.ModuleInfo) int { return cmp.Compare(rank(a), rank(b)) })
	var uses []string
	for _, m := range mods {
		use := "store " + m.ID.Name() + " ..."
		if u, ok := m.New().(storeUsager); ok {
			use = u.CaddyfileUsage()
		}
		uses = append(uses, "`"+use+"`")
	}
	switch len(uses) {
	case 0:
		return "a store module"
	case 1:
		return uses[0]
	}
	return strings.Join(uses[:len(uses)-1], ", ") + " or " + uses[len(uses)-1]
}

// describeStore names the store for the start-up log: its backend and
// where it is, never a password.
func describeStore(o StoreOpener) string {
	switch s := o.(type) {
	case *SQLiteStore:
		p, err := filepath.Abs(s.Path)
		if err != nil {
			p = s.Path
		}
		return "sqlite " + p
	case *PostgresStore:
		cfg, err := pgxpool.ParseConfig(s.dsn)
		if err != nil {
			return "postgres"
		}
		c := cfg.ConnConfig
		return fmt.Sprintf("postgres %s/%s", net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
	}
	return fmt.Sprintf("%T", o)
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

// UnmarshalCaddyfile reads `sqlite [<path>]`.
func (s *SQLiteStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the backend's name
	if d.NextArg() {
		s.Path = d.Val()
	}
	if d.NextArg() {
		return d.Errf("unexpected %q after the SQLite path; write `store sqlite [path]`", d.Val())
	}
	if d.NextBlock(0) {
		return d.Err("store sqlite takes no block; write `store sqlite [path]`")
	}
	return nil
}

// CaddyfileUsage is the store's Caddyfile syntax, for errors.
func (*SQLiteStore) CaddyfileUsage() string { return "store sqlite [path]" }

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
	// {env.DATABASE_URL}. Required. Opening the store waits at most 10 s for
	// the database to answer (less when the DSN sets a smaller
	// connect_timeout); then start-up or the reload fails, naming the
	// host:port it could not reach.
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

// UnmarshalCaddyfile reads `postgres <dsn>`.
func (s *PostgresStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the backend's name
	if !d.NextArg() {
		return d.Err("store postgres needs a connection string, e.g. `store postgres {env.DATABASE_URL}`")
	}
	s.DSN = d.Val()
	if d.NextArg() {
		return d.Errf("unexpected %q after the PostgreSQL connection string; quote it if it contains spaces", d.Val())
	}
	if d.NextBlock(0) {
		return d.Err("store postgres takes no block; write `store postgres <dsn>`")
	}
	return nil
}

// CaddyfileUsage is the store's Caddyfile syntax, for errors.
func (*PostgresStore) CaddyfileUsage() string { return "store postgres <dsn>" }

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

// postgresReachTimeout bounds how long opening the PostgreSQL store waits for
// the database to answer. Without it an unreachable host stalls start-up or a
// reload for the operating system's TCP connect timeout (minutes), and a host
// that accepts connections but never answers stalls it for good.
const postgresReachTimeout = 10 * time.Second

// OpenStore implements StoreOpener.
func (s *PostgresStore) OpenStore(ctx context.Context) (store.Store, error) {
	if err := s.reach(ctx); err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, s.dsn)
	if err != nil {
		// The DSN may hold a password: never print it.
		return nil, fmt.Errorf("opening the PostgreSQL store: %w", err)
	}
	return st, nil
}

// CheckStore implements StoreChecker: the database answers (nothing is
// created or changed).
func (s *PostgresStore) CheckStore(ctx context.Context) error { return s.reach(ctx) }

// reach connects to the database once, within postgresReachTimeout or the
// DSN's connect_timeout when that is smaller. Only reaching the database is
// bounded: the schema migrations that postgres.Open runs next take as long as
// they need. The error names the address, never the DSN (it may hold a
// password).
func (s *PostgresStore) reach(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		return nil // postgres.Open reports a malformed DSN without quoting it
	}
	timeout := postgresReachTimeout
	if ct := cfg.ConnConfig.ConnectTimeout; ct > 0 && ct < timeout {
		timeout = ct
	}
	addr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(rctx, cfg.ConnConfig)
	if err != nil {
		if rctx.Err() != nil {
			return fmt.Errorf("opening the PostgreSQL store: no answer from %s within %s; check that PostgreSQL runs there and accepts connections from this host", addr, timeout)
		}
		return fmt.Errorf("opening the PostgreSQL store: connecting to %s: %w", addr, err)
	}
	conn.Close(rctx) // only reaching the server mattered
	return nil
}

// Interface guards
var (
	_ StoreOpener       = (*SQLiteStore)(nil)
	_ StoreOpener       = (*PostgresStore)(nil)
	_ StoreChecker      = (*PostgresStore)(nil)
	_ caddy.Provisioner = (*SQLiteStore)(nil)
	_ caddy.Provisioner = (*PostgresStore)(nil)

	_ caddyfile.Unmarshaler = (*SQLiteStore)(nil)
	_ caddyfile.Unmarshaler = (*PostgresStore)(nil)
)
