// Package sqlite opens the embedded store: one SQLite file (pure Go,
// modernc.org/sqlite, so builds need no cgo), the default when no other
// store is configured. The store itself is sqlstore's, in its SQLite dialect;
// this package opens the file, migrates its schema and hands both handles
// over.
//
// The file is created 0600 in WAL mode with synchronous=NORMAL, foreign keys
// on and a busy timeout; its schema is versioned in schema_migrations and
// each migration is applied in its own transaction (retried while another
// process opening the same new file holds it busy). Writes go through a
// single connection and every read-modify-write runs in BEGIN IMMEDIATE, so
// writers queue instead of failing, and several processes may share the file
// (SQLite's file lock is the cross-process lock RotateSigningKeys and the
// directory writes need). Reads use a separate pool of read-only
// connections.
package sqlite
