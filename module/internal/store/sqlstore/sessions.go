package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Sessions.

var (
	qAddSession = q(`INSERT INTO sessions (id, domain, subject, auth_time, amr, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`)
	qSession = q(`SELECT id, domain, subject, auth_time, amr, created_at, expires_at
		FROM sessions WHERE id = $1 AND expires_at > $2`)
	qDeleteSession         = q(`DELETE FROM sessions WHERE id = $1`)
	qDeleteSubjectSessions = q(`DELETE FROM sessions WHERE domain = $1 AND subject = $2 RETURNING id`)
)

// CreateSession stores a new SSO session.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	if err := se.Validate(); err != nil {
		return err
	}
	amr, err := s.d.list(se.AMR)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, s.sql(qAddSession),
		se.ID, se.Domain, se.Subject, s.d.nullTime(se.AuthTime), amr, s.d.nullTime(se.CreatedAt), s.d.nullTime(se.ExpiresAt))
	return s.conflict(err)
}

// Session returns a live SSO session.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	var se store.Session
	err := s.r.QueryRowContext(ctx, s.sql(qSession), id, s.d.instant(now)).Scan(
		&se.ID, &se.Domain, &se.Subject, timeCol{&se.AuthTime}, s.d.scanList(&se.AMR), timeCol{&se.CreatedAt}, timeCol{&se.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, err
	}
	return se, nil
}

// DeleteSession deletes an SSO session (if it exists).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, s.sql(qDeleteSession), id)
	return err
}

// DeleteSubjectSessions deletes a subject's SSO sessions and returns their
// IDs, sorted.
func (s *Store) DeleteSubjectSessions(ctx context.Context, domain, subject string) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, s.sql(qDeleteSubjectSessions), domain, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(ids, strings.Compare)
	return ids, nil
}

// Revocations.

var (
	qRevoke = q(`INSERT INTO revocations (id, expires_at, revoked_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at), revoked_at = EXCLUDED.revoked_at`)
	qDeleteFamily = q(`DELETE FROM refresh_tokens WHERE family_id = $1`)
	qRevokedSince = q(`SELECT id, revoked_at, expires_at FROM revocations
		WHERE revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at, id COLLATE "C" LIMIT $3`)
)

// Revoke records id as revoked until expiresAt and deletes the refresh
// tokens of the family id names, if any.
func (s *Store) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	if id == "" || expiresAt.IsZero() {
		return errors.New("store: a revocation needs an ID and an expiry")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.sql(qRevoke), id, s.d.instant(expiresAt), s.d.instant(s.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.sql(qDeleteFamily), id)
		return err
	})
}

// revokedQueries are the Revoked queries for 1..4 IDs, rendered once.
var revokedQueries = func() []query {
	out := make([]query, 5)
	for n := 1; n < len(out); n++ {
		out[n] = q(revokedQuery(n))
	}
	return out
}()

func revokedQuery(n int) string {
	return `SELECT 1 FROM revocations WHERE expires_at > $1 AND id IN (` + in(2, n) + `) LIMIT 1`
}

// Revoked reports whether any of ids is revoked now.
func (s *Store) Revoked(ctx context.Context, ids ...string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	text := ""
	if len(ids) < len(revokedQueries) {
		text = s.sql(revokedQueries[len(ids)])
	} else {
		text = s.d.render(revokedQuery(len(ids)))
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, s.d.instant(s.Now()))
	for _, id := range ids {
		args = append(args, id)
	}
	var one int
	err := s.r.QueryRowContext(ctx, text, args...).Scan(&one)
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
	rows, err := s.r.QueryContext(ctx, s.sql(qRevokedSince), s.d.instant(since), s.d.instant(s.Now()), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		if err := rows.Scan(&r.ID, timeCol{&r.RevokedAt}, timeCol{&r.ExpiresAt}); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Login failures.

var qAddFailure = q(`INSERT INTO login_failures (key, failures, expires_at) VALUES ($1, 1, $2)
	ON CONFLICT (key) DO UPDATE SET
		failures   = CASE WHEN login_failures.expires_at <= $3 THEN 1 ELSE login_failures.failures + 1 END,
		expires_at = CASE WHEN login_failures.expires_at <= $3 THEN EXCLUDED.expires_at ELSE login_failures.expires_at END
	RETURNING failures`)

// AddLoginFailures counts one failure for each key.
func (s *Store) AddLoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]int, error) {
	if window <= 0 {
		return nil, errors.New("store: a login-failure window must be positive")
	}
	out := make([]int, len(keys))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Keys in one global order: concurrent callers never wait on each
		// other in a cycle.
		for _, i := range sortedIndexes(keys) {
			if err := tx.QueryRowContext(ctx, s.sql(qAddFailure), keys[i], s.d.instant(now.Add(window)), s.d.instant(now)).Scan(&out[i]); err != nil {
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
	args = append(args, s.d.instant(now))
	for _, k := range keys {
		args = append(args, k)
	}
	rows, err := s.r.QueryContext(ctx, s.d.render(`SELECT key, failures FROM login_failures
		WHERE expires_at > $1 AND key IN (`+in(2, len(keys))+`)`), args...)
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

var qClearFailures = q(`DELETE FROM login_failures WHERE key = $1`)

// ClearLoginFailures forgets key's count.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := s.w.ExecContext(ctx, s.sql(qClearFailures), key)
	return err
}
