package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Authorization codes.

const codeCols = `id, domain, client_id, redirect_uri, subject, scopes, audience, nonce,
	code_challenge, code_challenge_method, auth_time, session_id, family_id, created_at, expires_at`

var (
	qAddCode = q(`INSERT INTO auth_codes (` + codeCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`)
	// The conditional UPDATE is the single-use guarantee: concurrent
	// consumers queue on the row (SQLite: on the write lock) and all but
	// the first find used_at set.
	qConsumeCode = q(`UPDATE auth_codes SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING ` + codeCols)
	qUsedCode = q(`SELECT ` + codeCols + `, used_at FROM auth_codes WHERE id = $1 AND expires_at > $2`)
)

// scanCode scans codeCols and then extra.
func (s *Store) scanCode(row *sql.Row, extra ...any) (store.AuthCode, error) {
	var c store.AuthCode
	dest := append([]any{&c.ID, &c.Domain, &c.ClientID, &c.RedirectURI, &c.Subject, s.d.scanList(&c.Scopes), s.d.scanList(&c.Audience), &c.Nonce,
		&c.CodeChallenge, &c.CodeChallengeMethod, timeCol{&c.AuthTime}, &c.SessionID, &c.FamilyID, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return c, store.ErrNotFound
		}
		return c, err
	}
	return c, nil
}

// CreateAuthCode stores a new code.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := c.Validate(); err != nil {
		return err
	}
	scopes, err := s.d.list(c.Scopes)
	if err != nil {
		return err
	}
	aud, err := s.d.list(c.Audience)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, s.sql(qAddCode),
		c.ID, c.Domain, c.ClientID, c.RedirectURI, c.Subject, scopes, aud, c.Nonce,
		c.CodeChallenge, c.CodeChallengeMethod, s.d.nullTime(c.AuthTime), c.SessionID, c.FamilyID, s.d.nullTime(c.CreatedAt), s.d.nullTime(c.ExpiresAt))
	return s.conflict(err)
}

// ConsumeAuthCode marks the code used and returns it; see store.Grants.
func (s *Store) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	at := s.d.instant(now)
	c, err := s.scanCode(s.w.QueryRowContext(ctx, s.sql(qConsumeCode), id, at))
	if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	var usedAt time.Time
	c, err = s.scanCode(s.r.QueryRowContext(ctx, s.sql(qUsedCode), id, at), timeCol{&usedAt})
	if err != nil {
		return store.AuthCode{}, err
	}
	if usedAt.IsZero() {
		// Not used, yet the UPDATE missed it: it was created after the
		// UPDATE began. It was not consumed, so report it absent.
		return store.AuthCode{}, store.ErrNotFound
	}
	return c, store.ErrAlreadyUsed
}

// Refresh tokens.

const refreshCols = `id, family_id, domain, client_id, subject, scopes, audience, auth_time,
	session_id, created_at, expires_at, rotated_at`

// live is the condition for a token t that is unexpired at $2 and whose
// family is not revoked at $2.
const live = `t.expires_at > $2
	AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = t.family_id AND r.expires_at > $2)`

var (
	qAddRefresh = q(`INSERT INTO refresh_tokens (` + refreshCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`)
	qRefresh = q(`SELECT ` + refreshCols + ` FROM refresh_tokens AS t WHERE t.id = $1 AND ` + live)
	// As with codes, a conditional UPDATE picks the one winner.
	qRotateRefresh = q(`UPDATE refresh_tokens AS t SET rotated_at = $2
		WHERE t.id = $1 AND t.rotated_at IS NULL AND ` + live + ` RETURNING ` + refreshCols)
)

func (s *Store) scanRefresh(row *sql.Row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := row.Scan(&t.ID, &t.FamilyID, &t.Domain, &t.ClientID, &t.Subject, s.d.scanList(&t.Scopes), s.d.scanList(&t.Audience), timeCol{&t.AuthTime},
		&t.SessionID, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RotatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	return t, err
}

func (s *Store) insertRefresh(ctx context.Context, db querier, t store.RefreshToken) error {
	scopes, err := s.d.list(t.Scopes)
	if err != nil {
		return err
	}
	aud, err := s.d.list(t.Audience)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, s.sql(qAddRefresh),
		t.ID, t.FamilyID, t.Domain, t.ClientID, t.Subject, scopes, aud, s.d.nullTime(t.AuthTime),
		t.SessionID, s.d.nullTime(t.CreatedAt), s.d.nullTime(t.ExpiresAt), s.d.nullTime(t.RotatedAt))
	return s.conflict(err)
}

// CreateRefreshToken stores a new refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return s.insertRefresh(ctx, s.w, t)
}

// RotateRefreshToken marks oldID rotated and stores next, in one
// transaction; see store.Grants.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = s.scanRefresh(tx.QueryRowContext(ctx, s.sql(qRotateRefresh), oldID, s.d.instant(now)))
		if err != nil {
			return err
		}
		if next, err = successor(old, next); err != nil {
			return err
		}
		return s.insertRefresh(ctx, tx, next)
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
	return s.scanRefresh(s.r.QueryRowContext(ctx, s.sql(qRefresh), id, s.d.instant(now)))
}

// Session grants.

var (
	// The grant is filed under its session's domain and subject (empty
	// when the session is unknown).
	qAddGrant = q(`INSERT INTO session_grants (session_id, family_id, client_id, created_at, expires_at, domain, subject)
		VALUES ($1, $2, $3, $4, $5,
			COALESCE((SELECT domain FROM sessions WHERE id = $1), ''),
			COALESCE((SELECT subject FROM sessions WHERE id = $1), ''))
		ON CONFLICT (session_id, family_id) DO UPDATE SET expires_at = GREATEST(session_grants.expires_at, EXCLUDED.expires_at)`)
	qGrants = q(`SELECT session_id, family_id, client_id, created_at, expires_at FROM session_grants
		WHERE session_id = $1 AND expires_at > $2 ORDER BY created_at ASC NULLS FIRST, family_id COLLATE "C"`)
)

// AddSessionGrant records a grant made under an SSO session; recording it
// again keeps the later expiry.
func (s *Store) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.sql(qAddGrant),
		g.SessionID, g.FamilyID, g.ClientID, s.d.nullTime(g.CreatedAt), s.d.nullTime(g.ExpiresAt))
	return err
}

// SessionGrants lists a session's live grants, oldest first.
func (s *Store) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(qGrants), sessionID, s.d.instant(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.SessionGrant{}
	for rows.Next() {
		var g store.SessionGrant
		if err := rows.Scan(&g.SessionID, &g.FamilyID, &g.ClientID, timeCol{&g.CreatedAt}, timeCol{&g.ExpiresAt}); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Token families of a subject or a client.

// families is a query for the live, unrevoked families whose refresh
// tokens or session grants match $1 (domain), col = $2, at $3.
func families(col string) query {
	return q(`SELECT family_id, MIN(client_id), MIN(subject), MAX(expires_at) FROM (
			SELECT family_id, client_id, subject, expires_at FROM refresh_tokens
				WHERE domain = $1 AND ` + col + ` = $2 AND expires_at > $3
			UNION ALL
			SELECT family_id, client_id, subject, expires_at FROM session_grants
				WHERE domain = $1 AND ` + col + ` = $2 AND expires_at > $3
		) f
		WHERE NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = f.family_id AND r.expires_at > $3)
		GROUP BY family_id ORDER BY family_id COLLATE "C"`)
}

var (
	qSubjectFamilies = families("subject")
	qClientFamilies  = families("client_id")
)

func (s *Store) families(ctx context.Context, qu query, domain, value string, now time.Time) ([]store.Family, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(qu), domain, value, s.d.instant(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Family
	for rows.Next() {
		var f store.Family
		if err := rows.Scan(&f.ID, &f.ClientID, &f.Subject, timeCol{&f.ExpiresAt}); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// SubjectFamilies lists the live token families of a subject.
func (s *Store) SubjectFamilies(ctx context.Context, domain, subject string, now time.Time) ([]store.Family, error) {
	return s.families(ctx, qSubjectFamilies, domain, subject, now)
}

// ClientFamilies lists the live token families of a client.
func (s *Store) ClientFamilies(ctx context.Context, domain, clientID string, now time.Time) ([]store.Family, error) {
	return s.families(ctx, qClientFamilies, domain, clientID, now)
}
