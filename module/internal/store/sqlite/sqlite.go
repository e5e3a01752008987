package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// busyTimeout is how long a writer waits for another process's write lock
// before giving up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store in one SQLite file. It is safe for concurrent use,
// and several Stores (in one process or several) may open the same file.
type Store struct {
	// Now is the clock SigningKeys, RotateSigningKeys and Revoked judge
	// expiry by (the other methods take now). Open sets time.Now; tests may
	// replace it before the Store is shared.
	Now func() time.Time

	w *sql.DB // one connection; transactions BEGIN IMMEDIATE
	r *sql.DB // read-only connections
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it 0600, and its directory 0700, if needed) the SQLite
// database at path and migrates its schema to the current version.
func Open(path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite store: path %q must be a file path (an in-memory or URI database cannot be shared between connections)", path)
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite store: path %q must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: creating the directory of %s: %w", path, err)
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives its mode from, are private to this user.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	f.Close()

	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, Now: time.Now}
	ctx := context.Background()
	if err := migrate(ctx, w, time.Now); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	r.SetMaxIdleConns(4)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
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

// Values in and out of columns.

func timeIn(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func timeOut(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func listIn(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

func listOut(v sql.NullString) ([]string, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(v.String), &l); err != nil {
		return nil, fmt.Errorf("corrupt list column: %w", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func bytesOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// conflict maps a primary-key or unique violation to store.ErrConflict.
func conflict(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("%w (%v)", store.ErrConflict, err)
		}
	}
	return err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Signing keys.

const keyCols = `domain, kid, alg, private_key, created_at, not_after, expires_at`

func (s *Store) keys(ctx context.Context, q querier, domain string, now time.Time) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyCols+` FROM signing_keys
		WHERE domain = ? AND expires_at > ? ORDER BY created_at, kid`, domain, now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created, notAfter, expires sql.NullInt64
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
	return s.keys(ctx, s.r, domain, s.Now())
}

// RotateSigningKeys runs decide inside a write transaction, which SQLite
// makes exclusive across every connection and process using the file.
func (s *Store) RotateSigningKeys(ctx context.Context, domain string, decide func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		now := s.Now()
		current, err := s.keys(ctx, tx, domain, now)
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
			if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				k.Domain, k.KID, k.Alg, k.PrivateKey, timeIn(k.CreatedAt), timeIn(k.NotAfter), timeIn(k.ExpiresAt)); err != nil {
				return conflict(err)
			}
		}
		if len(add) == 0 {
			out = current
			return nil
		}
		out, err = s.keys(ctx, tx, domain, now)
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
	var got []byte
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&got)
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// Authorization codes.

const codeCols = `id, domain, client_id, redirect_uri, subject, scopes, audience, nonce,
	code_challenge, code_challenge_method, auth_time, session_id, family_id, created_at, expires_at`

// CreateAuthCode stores a new code.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := c.Validate(); err != nil {
		return err
	}
	scopes, err := listIn(c.Scopes)
	if err != nil {
		return err
	}
	aud, err := listIn(c.Audience)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO auth_codes (`+codeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Domain, c.ClientID, c.RedirectURI, c.Subject, scopes, aud, c.Nonce,
		c.CodeChallenge, c.CodeChallengeMethod, timeIn(c.AuthTime), c.SessionID, c.FamilyID, timeIn(c.CreatedAt), timeIn(c.ExpiresAt))
	return conflict(err)
}

// ConsumeAuthCode marks the code used and returns it; see store.Store.
func (s *Store) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	var c store.AuthCode
	var used bool
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		var scopes, aud sql.NullString
		var authTime, created, expires, usedAt sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT `+codeCols+`, used_at FROM auth_codes WHERE id = ?`, id).Scan(
			&c.ID, &c.Domain, &c.ClientID, &c.RedirectURI, &c.Subject, &scopes, &aud, &c.Nonce,
			&c.CodeChallenge, &c.CodeChallengeMethod, &authTime, &c.SessionID, &c.FamilyID, &created, &expires, &usedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if expires.Int64 <= now.UnixMicro() {
			return store.ErrNotFound
		}
		if c.Scopes, err = listOut(scopes); err != nil {
			return err
		}
		if c.Audience, err = listOut(aud); err != nil {
			return err
		}
		c.AuthTime, c.CreatedAt, c.ExpiresAt = timeOut(authTime), timeOut(created), timeOut(expires)
		if usedAt.Valid {
			used = true
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = ? WHERE id = ?`, now.UnixMicro(), id)
		return err
	})
	if err != nil {
		return store.AuthCode{}, err
	}
	if used {
		return c, store.ErrAlreadyUsed
	}
	return c, nil
}

// Refresh tokens.

const refreshCols = `id, family_id, domain, client_id, subject, scopes, audience, auth_time,
	session_id, created_at, expires_at, rotated_at`

func scanRefresh(row interface{ Scan(...any) error }) (store.RefreshToken, error) {
	var t store.RefreshToken
	var scopes, aud sql.NullString
	var authTime, created, expires, rotated sql.NullInt64
	err := row.Scan(&t.ID, &t.FamilyID, &t.Domain, &t.ClientID, &t.Subject, &scopes, &aud, &authTime,
		&t.SessionID, &created, &expires, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, err
	}
	if t.Scopes, err = listOut(scopes); err != nil {
		return t, err
	}
	if t.Audience, err = listOut(aud); err != nil {
		return t, err
	}
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.RotatedAt = timeOut(authTime), timeOut(created), timeOut(expires), timeOut(rotated)
	return t, nil
}

func insertRefresh(ctx context.Context, q querier, t store.RefreshToken) error {
	scopes, err := listIn(t.Scopes)
	if err != nil {
		return err
	}
	aud, err := listIn(t.Audience)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.FamilyID, t.Domain, t.ClientID, t.Subject, scopes, aud, timeIn(t.AuthTime),
		t.SessionID, timeIn(t.CreatedAt), timeIn(t.ExpiresAt), timeIn(t.RotatedAt))
	return conflict(err)
}

// liveRefresh selects a token that is unexpired at ?2 and whose family is
// not revoked at ?2.
const liveRefresh = `SELECT ` + refreshCols + ` FROM refresh_tokens t
	WHERE t.id = ?1 AND t.expires_at > ?2
	AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = t.family_id AND r.expires_at > ?2)`

// CreateRefreshToken stores a new refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return insertRefresh(ctx, s.w, t)
}

// RotateRefreshToken marks oldID rotated and stores next; see store.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	var old store.RefreshToken
	var used bool
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		var err error
		old, err = scanRefresh(tx.QueryRowContext(ctx, liveRefresh, oldID, now.UnixMicro()))
		if err != nil {
			return err
		}
		if !old.RotatedAt.IsZero() {
			used = true
			return nil
		}
		if next, err = successor(old, next); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET rotated_at = ? WHERE id = ?`, now.UnixMicro(), oldID); err != nil {
			return err
		}
		old.RotatedAt = time.UnixMicro(now.UnixMicro()).UTC()
		return insertRefresh(ctx, tx, next)
	})
	if err != nil {
		return store.RefreshToken{}, err
	}
	if used {
		return old, store.ErrAlreadyUsed
	}
	return old, nil
}

// RefreshToken returns a live refresh token.
func (s *Store) RefreshToken(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	return scanRefresh(s.r.QueryRowContext(ctx, liveRefresh, id, now.UnixMicro()))
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

// Revocations.

// Revoke records id as revoked until expiresAt and deletes the refresh
// tokens of the family id names, if any.
func (s *Store) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	if id == "" || expiresAt.IsZero() {
		return errors.New("store: a revocation needs an ID and an expiry")
	}
	return inTx(ctx, s.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (id, expires_at, revoked_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at), revoked_at = excluded.revoked_at`,
			id, expiresAt.UnixMicro(), s.Now().UnixMicro()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE family_id = ?`, id)
		return err
	})
}

// Revoked reports whether any of ids is revoked now.
func (s *Store) Revoked(ctx context.Context, ids ...string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, s.Now().UnixMicro())
	for _, id := range ids {
		args = append(args, id)
	}
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM revocations WHERE expires_at > ? AND id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`) LIMIT 1`, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// RevokedSince lists the live revocations recorded at or after since.
func (s *Store) RevokedSince(ctx context.Context, since time.Time, limit int) ([]store.Revocation, error) {
	if limit <= 0 {
		return nil, errors.New("store: RevokedSince needs a positive limit")
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, revoked_at, expires_at FROM revocations
		WHERE revoked_at >= ? AND expires_at > ? ORDER BY revoked_at, id LIMIT ?`,
		since.UnixMicro(), s.Now().UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		var at, exp int64
		if err := rows.Scan(&r.ID, &at, &exp); err != nil {
			return nil, err
		}
		r.RevokedAt, r.ExpiresAt = time.UnixMicro(at).UTC(), time.UnixMicro(exp).UTC()
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
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		// Keys in one global order: concurrent callers never wait on each
		// other in a cycle.
		for _, i := range sortedIndexes(keys) {
			k := keys[i]
			if err := tx.QueryRowContext(ctx, `INSERT INTO login_failures (key, failures, expires_at) VALUES (?1, 1, ?2)
				ON CONFLICT (key) DO UPDATE SET
					failures   = CASE WHEN login_failures.expires_at <= ?3 THEN 1 ELSE login_failures.failures + 1 END,
					expires_at = CASE WHEN login_failures.expires_at <= ?3 THEN excluded.expires_at ELSE login_failures.expires_at END
				RETURNING failures`, k, now.Add(window).UnixMicro(), now.UnixMicro()).Scan(&out[i]); err != nil {
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
	args := make([]any, 0, len(keys)+1)
	args = append(args, now.UnixMicro())
	for _, k := range keys {
		args = append(args, k)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT key, failures FROM login_failures WHERE expires_at > ? AND key IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`)`, args...)
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
	_, err := s.w.ExecContext(ctx, `DELETE FROM login_failures WHERE key = ?`, key)
	return err
}

// Sessions.

// CreateSession stores a new SSO session.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	if err := se.Validate(); err != nil {
		return err
	}
	amr, err := listIn(se.AMR)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO sessions (id, domain, subject, auth_time, amr, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.Domain, se.Subject, timeIn(se.AuthTime), amr, timeIn(se.CreatedAt), timeIn(se.ExpiresAt))
	return conflict(err)
}

// Session returns a live SSO session.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	var se store.Session
	var amr sql.NullString
	var authTime, created, expires sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT id, domain, subject, auth_time, amr, created_at, expires_at
		FROM sessions WHERE id = ? AND expires_at > ?`, id, now.UnixMicro()).Scan(
		&se.ID, &se.Domain, &se.Subject, &authTime, &amr, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, err
	}
	if se.AMR, err = listOut(amr); err != nil {
		return store.Session{}, err
	}
	se.AuthTime, se.CreatedAt, se.ExpiresAt = timeOut(authTime), timeOut(created), timeOut(expires)
	return se, nil
}

// DeleteSession deletes an SSO session (if it exists).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return err
}

// Session grants.

// AddSessionGrant records a grant made under an SSO session; recording it
// again keeps the later expiry.
func (s *Store) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO session_grants (session_id, family_id, client_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (session_id, family_id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
		g.SessionID, g.FamilyID, g.ClientID, timeIn(g.CreatedAt), timeIn(g.ExpiresAt))
	return err
}

// SessionGrants lists a session's live grants, oldest first.
func (s *Store) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT session_id, family_id, client_id, created_at, expires_at FROM session_grants
		WHERE session_id = ? AND expires_at > ? ORDER BY created_at, family_id`, sessionID, now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.SessionGrant{}
	for rows.Next() {
		var g store.SessionGrant
		var created, expires sql.NullInt64
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
	return inTx(ctx, s.w, func(tx *sql.Tx) error {
		for _, table := range []string{"auth_codes", "refresh_tokens", "revocations", "sessions", "session_grants", "signing_keys", "login_failures"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at <= ?`, now.UnixMicro()); err != nil {
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
