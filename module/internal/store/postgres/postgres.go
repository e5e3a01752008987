package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Store is a store.Store in a PostgreSQL database. It is safe for concurrent
// use, and any number of Gatehouse instances may share the database.
type Store struct {
	// Now is the clock SigningKeys, RotateSigningKeys and Revoked judge
	// expiry by (the other methods take now). Open sets time.Now; tests may
	// replace it before the Store is shared.
	Now func() time.Time

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
	s := &Store{pool: pool, Now: time.Now}
	if err := migrate(ctx, pool, time.Now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store on %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// lockKey turns a name into an advisory lock key.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Values in and out of columns.

func timeIn(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func timeOut(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

func listIn(l []string) any {
	if len(l) == 0 {
		return nil
	}
	return l
}

func listOut(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func bytesIn(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func bytesOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// conflict maps a unique violation to store.ErrConflict.
func conflict(err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) && e.Code == "23505" {
		return fmt.Errorf("%w (%s)", store.ErrConflict, e.ConstraintName)
	}
	return err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Signing keys.

const keyCols = `domain, kid, alg, private_key, created_at, not_after, expires_at`

func keys(ctx context.Context, q querier, domain string, now time.Time) ([]store.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT `+keyCols+` FROM signing_keys
		WHERE domain = $1 AND expires_at > $2 ORDER BY created_at ASC NULLS FIRST, kid COLLATE "C"`, domain, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created, notAfter, expires pgtype.Timestamptz
		if err := rows.Scan(&k.Domain, &k.KID, &k.Alg, &k.PrivateKey, &created, &notAfter, &expires); err != nil {
			return nil, err
		}
		k.PrivateKey = bytesOut(k.PrivateKey)
		k.CreatedAt, k.NotAfter, k.ExpiresAt = timeOut(created), timeOut(notAfter), timeOut(expires)
		out = append(out, k)
	}
	return out, rows.Err()
}

// SigningKeys lists the domain's unexpired keys, oldest first.
func (s *Store) SigningKeys(ctx context.Context, domain string) ([]store.SigningKey, error) {
	return keys(ctx, s.pool, domain, s.Now())
}

// RotateSigningKeys runs decide in a transaction holding an advisory lock
// for the domain, after re-reading the domain's keys under that lock.
func (s *Store) RotateSigningKeys(ctx context.Context, domain string, decide func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("gatehouse:signing-keys:"+domain)); err != nil {
			return fmt.Errorf("taking the signing-key lock of domain %q: %w", domain, err)
		}
		now := s.Now()
		current, err := keys(ctx, tx, domain, now)
		if err != nil {
			return err
		}
		add, err := decide(current)
		if err != nil {
			return err
		}
		for _, k := range add {
			if k.Domain == "" {
				k.Domain = domain
			}
			if k.Domain != domain {
				return fmt.Errorf("store: decide returned key %q of domain %q while rotating domain %q", k.KID, k.Domain, domain)
			}
			if err := k.Validate(); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				k.Domain, k.KID, k.Alg, bytesIn(k.PrivateKey), timeIn(k.CreatedAt), timeIn(k.NotAfter), timeIn(k.ExpiresAt)); err != nil {
				return conflict(err)
			}
		}
		if len(add) == 0 {
			out = current
			return nil
		}
		out, err = keys(ctx, tx, domain, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Secret returns the value stored under name, storing value if name is new.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if len(value) == 0 {
		return nil, errors.New("store: refusing to store an empty secret")
	}
	// Two statements, not one: a concurrent first writer's row is visible
	// only to a statement that starts after the INSERT waited for it.
	if _, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return nil, err
	}
	var got []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&got); err != nil {
		return nil, err
	}
	return got, nil
}

// Authorization codes.

const codeCols = `id, domain, client_id, redirect_uri, subject, scopes, audience, nonce,
	code_challenge, code_challenge_method, auth_time, session_id, family_id, created_at, expires_at`

// scanCode scans codeCols and then extra.
func scanCode(row pgx.Row, extra ...any) (store.AuthCode, error) {
	var c store.AuthCode
	var authTime, created, expires pgtype.Timestamptz
	dest := append([]any{&c.ID, &c.Domain, &c.ClientID, &c.RedirectURI, &c.Subject, &c.Scopes, &c.Audience, &c.Nonce,
		&c.CodeChallenge, &c.CodeChallengeMethod, &authTime, &c.SessionID, &c.FamilyID, &created, &expires}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return c, store.ErrNotFound
		}
		return c, err
	}
	c.Scopes, c.Audience = listOut(c.Scopes), listOut(c.Audience)
	c.AuthTime, c.CreatedAt, c.ExpiresAt = timeOut(authTime), timeOut(created), timeOut(expires)
	return c, nil
}

// CreateAuthCode stores a new code.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := c.Validate(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (`+codeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.ID, c.Domain, c.ClientID, c.RedirectURI, c.Subject, listIn(c.Scopes), listIn(c.Audience), c.Nonce,
		c.CodeChallenge, c.CodeChallengeMethod, timeIn(c.AuthTime), c.SessionID, c.FamilyID, timeIn(c.CreatedAt), timeIn(c.ExpiresAt))
	return conflict(err)
}

// ConsumeAuthCode marks the code used and returns it; see store.Store. The
// conditional UPDATE is the single-use guarantee: concurrent consumers queue
// on the row lock and all but the first find used_at set.
func (s *Store) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	c, err := scanCode(s.pool.QueryRow(ctx, `UPDATE auth_codes SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING `+codeCols, id, now))
	if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	var usedAt pgtype.Timestamptz
	c, err = scanCode(s.pool.QueryRow(ctx, `SELECT `+codeCols+`, used_at FROM auth_codes
		WHERE id = $1 AND expires_at > $2`, id, now), &usedAt)
	if err != nil {
		return store.AuthCode{}, err
	}
	if !usedAt.Valid {
		// Not used, yet the UPDATE missed it: it was created after the
		// UPDATE began. It was not consumed, so report it absent.
		return store.AuthCode{}, store.ErrNotFound
	}
	return c, store.ErrAlreadyUsed
}

// Refresh tokens.

const refreshCols = `id, family_id, domain, client_id, subject, scopes, audience, auth_time,
	session_id, created_at, expires_at, rotated_at`

func scanRefresh(row pgx.Row) (store.RefreshToken, error) {
	var t store.RefreshToken
	var authTime, created, expires, rotated pgtype.Timestamptz
	err := row.Scan(&t.ID, &t.FamilyID, &t.Domain, &t.ClientID, &t.Subject, &t.Scopes, &t.Audience, &authTime,
		&t.SessionID, &created, &expires, &rotated)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, err
	}
	t.Scopes, t.Audience = listOut(t.Scopes), listOut(t.Audience)
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.RotatedAt = timeOut(authTime), timeOut(created), timeOut(expires), timeOut(rotated)
	return t, nil
}

func insertRefresh(ctx context.Context, q querier, t store.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.ID, t.FamilyID, t.Domain, t.ClientID, t.Subject, listIn(t.Scopes), listIn(t.Audience), timeIn(t.AuthTime),
		t.SessionID, timeIn(t.CreatedAt), timeIn(t.ExpiresAt), timeIn(t.RotatedAt))
	return conflict(err)
}

// live is the condition for a token t that is unexpired at $2 and whose
// family is not revoked at $2.
const live = `t.expires_at > $2
	AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = t.family_id AND r.expires_at > $2)`

// CreateRefreshToken stores a new refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return insertRefresh(ctx, s.pool, t)
}

// RotateRefreshToken marks oldID rotated and stores next; see store.Store.
// As with codes, a conditional UPDATE picks the one winner; the successor is
// inserted in the same transaction.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		old, err = scanRefresh(tx.QueryRow(ctx, `UPDATE refresh_tokens t SET rotated_at = $2
			WHERE t.id = $1 AND t.rotated_at IS NULL AND `+live+` RETURNING `+refreshCols, oldID, now))
		if err != nil {
			return err
		}
		if next, err = successor(old, next); err != nil {
			return err
		}
		return insertRefresh(ctx, tx, next)
	})
	if err == nil {
		return old, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.RefreshToken{}, err
	}
	old, err = s.RefreshToken(ctx, oldID, now)
	if err != nil {
		return store.RefreshToken{}, err
	}
	if old.RotatedAt.IsZero() {
		// Live and unrotated, yet the UPDATE missed it: it was created after
		// the UPDATE began. Nothing was rotated; report it absent.
		return store.RefreshToken{}, store.ErrNotFound
	}
	return old, store.ErrAlreadyUsed
}

// successor checks next before it replaces old: it inherits old's family
// if it names none and must not name another.
func successor(old, next store.RefreshToken) (store.RefreshToken, error) {
	if next.FamilyID == "" {
		next.FamilyID = old.FamilyID
	}
	if next.FamilyID != old.FamilyID {
		return next, fmt.Errorf("store: the successor of a refresh token of family %q names family %q", old.FamilyID, next.FamilyID)
	}
	return next, next.Validate()
}

// RefreshToken returns a live refresh token.
func (s *Store) RefreshToken(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	return scanRefresh(s.pool.QueryRow(ctx, `SELECT `+refreshCols+` FROM refresh_tokens t WHERE t.id = $1 AND `+live, id, now))
}

// Revocations.

// Revoke records id as revoked until expiresAt and deletes the refresh
// tokens of the family id names, if any.
func (s *Store) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	if id == "" || expiresAt.IsZero() {
		return errors.New("store: a revocation needs an ID and an expiry")
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO revocations (id, expires_at, revoked_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at), revoked_at = EXCLUDED.revoked_at`,
			id, expiresAt, s.Now()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE family_id = $1`, id)
		return err
	})
}

// Revoked reports whether any of ids is revoked now.
func (s *Store) Revoked(ctx context.Context, ids ...string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revocations WHERE id = ANY($1) AND expires_at > $2)`,
		ids, s.Now()).Scan(&revoked)
	return revoked, err
}

// RevokedSince lists the live revocations recorded at or after since.
func (s *Store) RevokedSince(ctx context.Context, since time.Time, limit int) ([]store.Revocation, error) {
	if limit <= 0 {
		return nil, errors.New("store: RevokedSince needs a positive limit")
	}
	rows, err := s.pool.Query(ctx, `SELECT id, revoked_at, expires_at FROM revocations
		WHERE revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at, id LIMIT $3`, since, s.Now(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		if err := rows.Scan(&r.ID, &r.RevokedAt, &r.ExpiresAt); err != nil {
			return nil, err
		}
		r.RevokedAt, r.ExpiresAt = r.RevokedAt.UTC(), r.ExpiresAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// Login failures.

// AddLoginFailures counts one failure for each key.
func (s *Store) AddLoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]int, error) {
	if window <= 0 {
		return nil, errors.New("store: a login-failure window must be positive")
	}
	out := make([]int, len(keys))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Keys in one global order: concurrent callers never wait on each
		// other in a cycle.
		for _, i := range sortedIndexes(keys) {
			k := keys[i]
			if err := tx.QueryRow(ctx, `INSERT INTO login_failures (key, failures, expires_at) VALUES ($1, 1, $2)
				ON CONFLICT (key) DO UPDATE SET
					failures   = CASE WHEN login_failures.expires_at <= $3 THEN 1 ELSE login_failures.failures + 1 END,
					expires_at = CASE WHEN login_failures.expires_at <= $3 THEN EXCLUDED.expires_at ELSE login_failures.expires_at END
				RETURNING failures`, k, now.Add(window), now).Scan(&out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoginFailures returns each key's count in its current window.
func (s *Store) LoginFailures(ctx context.Context, keys []string, now time.Time) ([]int, error) {
	if len(keys) == 0 {
		return []int{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT key, failures FROM login_failures WHERE key = ANY($1) AND expires_at > $2`, keys, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[string]int, len(keys))
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		found[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return store.InOrder(keys, found), nil
}

// ClearLoginFailures forgets key's count.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE key = $1`, key)
	return err
}

// Sessions.

// CreateSession stores a new SSO session.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	if err := se.Validate(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, domain, subject, auth_time, amr, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		se.ID, se.Domain, se.Subject, timeIn(se.AuthTime), listIn(se.AMR), timeIn(se.CreatedAt), timeIn(se.ExpiresAt))
	return conflict(err)
}

// Session returns a live SSO session.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	var se store.Session
	var authTime, created, expires pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, `SELECT id, domain, subject, auth_time, amr, created_at, expires_at
		FROM sessions WHERE id = $1 AND expires_at > $2`, id, now).Scan(
		&se.ID, &se.Domain, &se.Subject, &authTime, &se.AMR, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, err
	}
	se.AMR = listOut(se.AMR)
	se.AuthTime, se.CreatedAt, se.ExpiresAt = timeOut(authTime), timeOut(created), timeOut(expires)
	return se, nil
}

// DeleteSession deletes an SSO session (if it exists).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return err
}

// Session grants.

// AddSessionGrant records a grant made under an SSO session; recording it
// again keeps the later expiry.
func (s *Store) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO session_grants (session_id, family_id, client_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (session_id, family_id) DO UPDATE SET expires_at = GREATEST(session_grants.expires_at, EXCLUDED.expires_at)`,
		g.SessionID, g.FamilyID, g.ClientID, timeIn(g.CreatedAt), timeIn(g.ExpiresAt))
	return err
}

// SessionGrants lists a session's live grants, oldest first.
func (s *Store) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	rows, err := s.pool.Query(ctx, `SELECT session_id, family_id, client_id, created_at, expires_at FROM session_grants
		WHERE session_id = $1 AND expires_at > $2 ORDER BY created_at ASC NULLS FIRST, family_id COLLATE "C"`, sessionID, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.SessionGrant{}
	for rows.Next() {
		var g store.SessionGrant
		var created, expires pgtype.Timestamptz
		if err := rows.Scan(&g.SessionID, &g.FamilyID, &g.ClientID, &created, &expires); err != nil {
			return nil, err
		}
		g.CreatedAt, g.ExpiresAt = timeOut(created), timeOut(expires)
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteExpired removes every record expired at now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, table := range []string{"auth_codes", "refresh_tokens", "revocations", "sessions", "session_grants", "signing_keys", "login_failures"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE expires_at <= $1`, now); err != nil {
				return fmt.Errorf("deleting expired %s: %w", table, err)
			}
		}
		return nil
	})
}

// sortedIndexes returns the indexes of keys in the keys' sorted order.
func sortedIndexes(keys []string) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	return idx
}
