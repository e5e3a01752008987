// Package sqlstore is the one implementation of store.Store, on SQLite and
// PostgreSQL through database/sql. What differs between them is a Dialect:
// queries are written once (for PostgreSQL) and rendered for SQLite when the
// package loads; values are encoded in the column types each schema has
// always had (SQLite: Unix microseconds, JSON arrays, 0/1; PostgreSQL:
// timestamptz, text[], boolean, jsonb); RotateSigningKeys locks a domain
// with SQLite's exclusive write transaction or a PostgreSQL advisory lock;
// unique violations are recognised per driver.
//
// Opening a database, its connection settings and its migrations belong to
// the openers (store/sqlite, store/postgres), which hand New their handles:
// a write handle (SQLite: one connection, BEGIN IMMEDIATE) and a read handle
// (SQLite: a read-only pool; PostgreSQL: the same pool).
//
// Single-use records are consumed by conditional UPDATE ... RETURNING, so
// exactly one caller wins on both databases. Directory writes run in one
// transaction that first bumps the directory's change counter; that row is
// the writers' lock on PostgreSQL, so the uniqueness checks that name the
// colliding field see every earlier write (the schema's unique constraints
// stay as the backstop).
package sqlstore
