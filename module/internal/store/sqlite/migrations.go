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
	// 5: the directory — domains, users (their usernames and e-mails in one
	// namespace per domain, user_logins; their external identities,
	// user_identities), clients, policies — with a change counter every
	// directory write bumps; the management API keys; and session grants
	// filed under their session's domain and subject, so a subject's or a
	// client's token families can be found. Booleans are 0 or 1, JSON
	// documents TEXT; *_key columns hold the lower-cased login.
	`
CREATE TABLE directory_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO directory_version (id, version) VALUES (1, 0);

CREATE TABLE domains (
	name       TEXT    PRIMARY KEY,
	issuer     TEXT    NOT NULL,
	settings   TEXT,
	version    INTEGER NOT NULL,
	created_at INTEGER,
	updated_at INTEGER
);
CREATE UNIQUE INDEX domains_issuer ON domains (issuer) WHERE issuer <> '';

CREATE TABLE users (
	domain             TEXT    NOT NULL,
	subject            TEXT    NOT NULL,
	preferred_username TEXT    NOT NULL,
	username_key       TEXT    NOT NULL,
	name               TEXT    NOT NULL,
	given_name         TEXT    NOT NULL,
	family_name        TEXT    NOT NULL,
	email              TEXT    NOT NULL,
	email_key          TEXT    NOT NULL,
	email_verified     INTEGER NOT NULL,
	active             INTEGER NOT NULL,
	password_hash      TEXT    NOT NULL,
	claims             TEXT,
	version            INTEGER NOT NULL,
	created_at         INTEGER,
	updated_at         INTEGER,
	PRIMARY KEY (domain, subject)
);
CREATE INDEX users_username_key ON users (domain, username_key);

CREATE TABLE user_logins (
	domain  TEXT NOT NULL,
	login   TEXT NOT NULL,
	subject TEXT NOT NULL,
	PRIMARY KEY (domain, login)
);
CREATE INDEX user_logins_subject ON user_logins (domain, subject);

CREATE TABLE user_identities (
	domain           TEXT NOT NULL,
	provider         TEXT NOT NULL,
	external_subject TEXT NOT NULL,
	subject          TEXT NOT NULL,
	PRIMARY KEY (domain, provider, external_subject)
);
CREATE INDEX user_identities_subject ON user_identities (domain, subject);

CREATE TABLE clients (
	domain      TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	data        TEXT,
	secret_hash TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	created_at  INTEGER,
	updated_at  INTEGER,
	PRIMARY KEY (domain, id)
);

CREATE TABLE policies (
	domain     TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	source     TEXT,
	version    INTEGER NOT NULL,
	created_at INTEGER,
	updated_at INTEGER,
	PRIMARY KEY (domain, id)
);

CREATE TABLE api_keys (
	id           TEXT    PRIMARY KEY,
	name         TEXT    NOT NULL,
	hash         TEXT    NOT NULL UNIQUE,
	domain       TEXT    NOT NULL,
	read_only    INTEGER NOT NULL,
	created_by   TEXT    NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER,
	last_used_at INTEGER,
	revoked_at   INTEGER
);
CREATE INDEX api_keys_domain ON api_keys (domain);

ALTER TABLE session_grants ADD COLUMN domain  TEXT NOT NULL DEFAULT '';
ALTER TABLE session_grants ADD COLUMN subject TEXT NOT NULL DEFAULT '';
UPDATE session_grants SET
	domain  = COALESCE((SELECT s.domain  FROM sessions s WHERE s.id = session_grants.session_id), ''),
	subject = COALESCE((SELECT s.subject FROM sessions s WHERE s.id = session_grants.session_id), '');
CREATE INDEX session_grants_subject ON session_grants (domain, subject);
CREATE INDEX session_grants_client ON session_grants (domain, client_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (domain, subject);
CREATE INDEX refresh_tokens_client ON refresh_tokens (domain, client_id);
CREATE INDEX sessions_subject ON sessions (domain, subject);
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

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it, or
// rolls it back if fn fails.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
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
