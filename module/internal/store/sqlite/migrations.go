package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// migrations are the schema versions in order; migrations[i] is version i+1.
// Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: the initial schema. Times are Unix microseconds (NULL for the zero
	// time), string lists are JSON arrays (NULL when empty).
	`
CREATE TABLE signing_keys (
	domain      TEXT    NOT NULL,
	kid         TEXT    NOT NULL,
	alg         TEXT    NOT NULL,
	private_key BLOB,
	created_at  INTEGER,
	not_after   INTEGER,
	expires_at  INTEGER NOT NULL,
	PRIMARY KEY (domain, kid)
);
CREATE INDEX signing_keys_expires_at ON signing_keys (expires_at);

CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

CREATE TABLE auth_codes (
	id                    TEXT    PRIMARY KEY,
	domain                TEXT    NOT NULL,
	client_id             TEXT    NOT NULL,
	redirect_uri          TEXT    NOT NULL,
	subject               TEXT    NOT NULL,
	scopes                TEXT,
	audience              TEXT,
	nonce                 TEXT    NOT NULL,
	code_challenge        TEXT    NOT NULL,
	code_challenge_method TEXT    NOT NULL,
	auth_time             INTEGER,
	session_id            TEXT    NOT NULL,
	family_id             TEXT    NOT NULL,
	created_at            INTEGER,
	expires_at            INTEGER NOT NULL,
	used_at               INTEGER
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
	id         TEXT    PRIMARY KEY,
	family_id  TEXT    NOT NULL,
	domain     TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	scopes     TEXT,
	audience   TEXT,
	auth_time  INTEGER,
	session_id TEXT    NOT NULL,
	created_at INTEGER,
	expires_at INTEGER NOT NULL,
	rotated_at INTEGER
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revocations (
	id         TEXT    PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY,
	domain     TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	auth_time  INTEGER,
	amr        TEXT,
	created_at INTEGER,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
`,
	// 2: when each revocation was recorded, so instances sharing the file
	// can poll for new ones (RevokedSince).
	`
ALTER TABLE revocations ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
`,
	// 3: failed sign-ins per (hashed) throttle key, shared by instances.
	`
CREATE TABLE login_failures (
	key        TEXT    PRIMARY KEY,
	failures   INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX login_failures_expires_at ON login_failures (expires_at);
`,
	// 4: the grants (token families) made under each SSO session, so that
	// signing out at the issuer revokes them.
	`
CREATE TABLE session_grants (
	session_id TEXT    NOT NULL,
	family_id  TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	created_at INTEGER,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (session_id, family_id)
);
CREATE INDEX session_grants_expires_at ON session_grants (expires_at);
`,
}

// migrate brings the schema up to date. Each version is checked and applied
// inside one BEGIN IMMEDIATE transaction, so processes opening the same file
// at once apply it exactly once.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	return migrateTo(ctx, db, now, len(migrations))
}

// migrateTo brings the schema up to version target (tests build databases
// of earlier versions with it).
func migrateTo(ctx context.Context, db *sql.DB, now func() time.Time, target int) error {
	for i, m := range migrations[:target] {
		version := i + 1
		if err := retryBusy(ctx, func() error {
			return inTx(ctx, db, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER PRIMARY KEY,
				applied_at INTEGER NOT NULL
			)`); err != nil {
					return err
				}
				var newest int
				if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
					return err
				}
				if newest > len(migrations) {
					return fmt.Errorf("the database has schema version %d but this Gatehouse knows only up to %d: upgrade Gatehouse or use another database file", newest, len(migrations))
				}
				if newest >= version {
					return nil
				}
				if _, err := tx.ExecContext(ctx, m); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, now().UnixMicro())
				return err
			})
		}); err != nil {
			return fmt.Errorf("applying schema migration %d: %w", version, err)
		}
	}
	return nil
}

// retryBusy runs fn again while it fails with SQLITE_BUSY, for up to
// busyTimeout. Processes opening a new database file at the same moment can
// get SQLITE_BUSY at once, without the busy handler waiting (one of them is
// switching the file to WAL mode); the migration itself is idempotent, so
// trying again is safe.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := fn()
		var se *msqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
