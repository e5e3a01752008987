package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlstore"
)

// Store is a store.Store in a PostgreSQL database: the SQL store in its
// PostgreSQL dialect. It is safe for concurrent use, and any number of
// Gatehouse instances may share the database.
type Store struct {
	*sqlstore.Store

	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database dsn names (a postgres:// URL or key=value
// string, as pgx accepts; search_path picks the schema) and migrates its
// schema to the current version.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("postgres store: the DSN is malformed (want postgres://user:password@host:port/database or key=value pairs)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if err := migrate(ctx, pool, time.Now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store on %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return on(pool), nil
}

// on returns the Store on pool, which Close closes. database/sql borrows
// pool's connections (it keeps none idle of its own), so the pool's
// settings (pool_max_conns, ...) hold.
func on(pool *pgxpool.Pool) *Store {
	db := stdlib.OpenDBFromPool(pool)
	return &Store{
		Store: sqlstore.New(sqlstore.Postgres, db, db, func() error {
			err := db.Close()
			pool.Close()
			return err
		}),
		pool: pool,
	}
}
