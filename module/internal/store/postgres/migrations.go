package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlstore"
)

// migrations are the schema versions in order; migrations[i] is version i+1.
// Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: the initial schema. Zero times are NULL, empty lists are NULL.
	`
CREATE TABLE signing_keys (
	domain      text        NOT NULL,
	kid         text        NOT NULL,
	alg         text        NOT NULL,
	private_key bytea,
	created_at  timestamptz,
	not_after   timestamptz,
	expires_at  timestamptz NOT NULL,
	PRIMARY KEY (domain, kid)
);
CREATE INDEX signing_keys_expires_at ON signing_keys (expires_at);

CREATE TABLE secrets (
	name  text  PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE auth_codes (
	id                    text        PRIMARY KEY,
	domain                text        NOT NULL,
	client_id             text        NOT NULL,
	redirect_uri          text        NOT NULL,
	subject               text        NOT NULL,
	scopes                text[],
	audience              text[],
	nonce                 text        NOT NULL,
	code_challenge        text        NOT NULL,
	code_challenge_method text        NOT NULL,
	auth_time             timestamptz,
	session_id            text        NOT NULL,
	family_id             text        NOT NULL,
	created_at            timestamptz,
	expires_at            timestamptz NOT NULL,
	used_at               timestamptz
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
	id         text        PRIMARY KEY,
	family_id  text        NOT NULL,
	domain     text        NOT NULL,
	client_id  text        NOT NULL,
	subject    text        NOT NULL,
	scopes     text[],
	audience   text[],
	auth_time  timestamptz,
	session_id text        NOT NULL,
	created_at timestamptz,
	expires_at timestamptz NOT NULL,
	rotated_at timestamptz
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revocations (
	id         text        PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE sessions (
	id         text        PRIMARY KEY,
	domain     text        NOT NULL,
	subject    text        NOT NULL,
	auth_time  timestamptz,
	amr        text[],
	created_at timestamptz,
	expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
`,
	// 2: when each revocation was recorded, so every instance can poll for
	// new ones (RevokedSince).
	`
ALTER TABLE revocations ADD COLUMN revoked_at timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
`,
	// 3: failed sign-ins per (hashed) throttle key, shared by instances.
	`
CREATE TABLE login_failures (
	key        text        PRIMARY KEY,
	failures   integer     NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX login_failures_expires_at ON login_failures (expires_at);
`,
	// 4: the grants (token families) made under each SSO session, so that
	// signing out at the issuer revokes them.
	`
CREATE TABLE session_grants (
	session_id text        NOT NULL,
	family_id  text        NOT NULL,
	client_id  text        NOT NULL,
	created_at timestamptz,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (session_id, family_id)
);
CREATE INDEX session_grants_expires_at ON session_grants (expires_at);
`,
	// 5: the directory — domains, users (their usernames and e-mails in one
	// namespace per domain, user_logins; their external identities,
	// user_identities), clients, policies — with a change counter every
	// directory write bumps; the management API keys; and session grants
	// filed under their session's domain and subject, so a subject's or a
	// client's token families can be found. *_key columns hold the
	// lower-cased login.
	`
CREATE TABLE directory_version (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint  NOT NULL
);
INSERT INTO directory_version (id, version) VALUES (1, 0);

CREATE TABLE domains (
	name       text        PRIMARY KEY,
	issuer     text        NOT NULL,
	settings   jsonb,
	version    bigint      NOT NULL,
	created_at timestamptz,
	updated_at timestamptz
);
CREATE UNIQUE INDEX domains_issuer ON domains (issuer) WHERE issuer <> '';

CREATE TABLE users (
	domain             text        NOT NULL,
	subject            text        NOT NULL,
	preferred_username text        NOT NULL,
	username_key       text        NOT NULL,
	name               text        NOT NULL,
	given_name         text        NOT NULL,
	family_name        text        NOT NULL,
	email              text        NOT NULL,
	email_key          text        NOT NULL,
	email_verified     boolean     NOT NULL,
	active             boolean     NOT NULL,
	password_hash      text        NOT NULL,
	claims             jsonb,
	version            bigint      NOT NULL,
	created_at         timestamptz,
	updated_at         timestamptz,
	PRIMARY KEY (domain, subject)
);
CREATE INDEX users_username_key ON users (domain, username_key COLLATE "C");

CREATE TABLE user_logins (
	domain  text NOT NULL,
	login   text NOT NULL,
	subject text NOT NULL,
	PRIMARY KEY (domain, login)
);
CREATE INDEX user_logins_subject ON user_logins (domain, subject);

CREATE TABLE user_identities (
	domain           text NOT NULL,
	provider         text NOT NULL,
	external_subject text NOT NULL,
	subject          text NOT NULL,
	PRIMARY KEY (domain, provider, external_subject)
);
CREATE INDEX user_identities_subject ON user_identities (domain, subject);

CREATE TABLE clients (
	domain      text        NOT NULL,
	id          text        NOT NULL,
	data        jsonb,
	secret_hash text        NOT NULL,
	version     bigint      NOT NULL,
	created_at  timestamptz,
	updated_at  timestamptz,
	PRIMARY KEY (domain, id)
);

CREATE TABLE policies (
	domain     text        NOT NULL,
	id         text        NOT NULL,
	source     jsonb,
	version    bigint      NOT NULL,
	created_at timestamptz,
	updated_at timestamptz,
	PRIMARY KEY (domain, id)
);

CREATE TABLE api_keys (
	id           text        PRIMARY KEY,
	name         text        NOT NULL,
	hash         text        NOT NULL CONSTRAINT api_keys_hash UNIQUE,
	domain       text        NOT NULL,
	read_only    boolean     NOT NULL,
	created_by   text        NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	last_used_at timestamptz,
	revoked_at   timestamptz
);
CREATE INDEX api_keys_domain ON api_keys (domain);

ALTER TABLE session_grants ADD COLUMN domain  text NOT NULL DEFAULT '';
ALTER TABLE session_grants ADD COLUMN subject text NOT NULL DEFAULT '';
UPDATE session_grants g SET domain = s.domain, subject = s.subject FROM sessions s WHERE s.id = g.session_id;
CREATE INDEX session_grants_subject ON session_grants (domain, subject);
CREATE INDEX session_grants_client ON session_grants (domain, client_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (domain, subject);
CREATE INDEX refresh_tokens_client ON refresh_tokens (domain, client_id);
CREATE INDEX sessions_subject ON sessions (domain, subject);
`,
}

// migrateLock is the advisory lock key that serialises migrations across
// every Gatehouse instance using the database.
var migrateLock = sqlstore.LockKey("gatehouse:migrations")

// migrate brings the schema up to date under a session advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, now func() time.Time) error {
	return migrateTo(ctx, pool, now, len(migrations))
}

// migrateTo brings the schema up to version target (tests build databases
// of earlier versions with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, now func() time.Time, target int) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even if ctx has ended. If the
		// unlock fails the connection is dropped, which releases it too.
		if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var newest int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	if newest > len(migrations) {
		return fmt.Errorf("the database has schema version %d but this Gatehouse knows only up to %d: upgrade Gatehouse or use another database", newest, len(migrations))
	}
	for i := newest; i < target; i++ {
		version := i + 1
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, now())
			return err
		})
		if err != nil {
			return fmt.Errorf("applying schema migration %d: %w", version, err)
		}
	}
	return nil
}
