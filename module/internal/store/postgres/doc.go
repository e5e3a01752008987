// Package postgres opens the PostgreSQL store (`store postgres <dsn>`), for
// several Gatehouse instances sharing one database. The store itself is
// sqlstore's, in its PostgreSQL dialect; this package connects, migrates the
// schema and hands the connection pool over.
//
// It uses a pgx connection pool, which sqlstore reaches through pgx's
// database/sql driver. The schema is versioned in schema_migrations in the
// schema the DSN's search_path selects; migrations run under a session
// advisory lock, each in its own transaction, so instances starting together
// apply each exactly once. Single-use records are consumed by conditional
// UPDATEs (row locks pick one winner), RotateSigningKeys takes a
// transaction-scoped advisory lock per domain and re-reads the keys after
// taking it, and directory writes queue on the row of the directory's change
// counter.
package postgres
