// Package postgres owns the PostgreSQL store.Store backend (`store postgres
// <dsn>`), for several Gatehouse instances sharing one database.
//
// It uses a pgx connection pool. The schema is versioned in
// schema_migrations in the schema the DSN's search_path selects; migrations
// run under a session advisory lock, each in its own transaction, so
// instances starting together apply each exactly once. Single-use records
// are consumed by conditional UPDATEs (row locks pick one winner), and
// RotateSigningKeys takes a transaction-scoped advisory lock per domain and
// re-reads the keys after taking it.
package postgres
