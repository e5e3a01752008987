package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// API keys.

const apiKeyCols = `id, name, hash, domain, read_only, created_by, created_at, expires_at, last_used_at, revoked_at`

var (
	qAddAPIKey = q(`INSERT INTO api_keys (` + apiKeyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`)
	qAPIKey    = q(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE id = $1`)
	qKeyByHash = q(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE hash = $1`)
	qAPIKeys   = q(`SELECT ` + apiKeyCols + ` FROM api_keys ORDER BY created_at ASC NULLS FIRST, id COLLATE "C"`)
	qDomainKey = q(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE domain = $1 ORDER BY created_at ASC NULLS FIRST, id COLLATE "C"`)
	qRevokeKey = q(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING ` + apiKeyCols)
	// Touching writes only when the recorded use is older than the
	// interval ($3), so a busy key costs one write a minute.
	qTouchKey = q(`UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)`)
)

func scanAPIKey(row interface{ Scan(...any) error }) (store.APIKey, error) {
	var k store.APIKey
	err := row.Scan(&k.ID, &k.Name, &k.Hash, &k.Domain, &k.ReadOnly, &k.CreatedBy,
		timeCol{&k.CreatedAt}, timeCol{&k.ExpiresAt}, timeCol{&k.LastUsedAt}, timeCol{&k.RevokedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	return k, err
}

// CreateAPIKey stores a new API key.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.sql(qAddAPIKey), k.ID, k.Name, k.Hash, k.Domain, k.ReadOnly, k.CreatedBy,
		s.d.nullTime(k.CreatedAt), s.d.nullTime(k.ExpiresAt), s.d.nullTime(k.LastUsedAt), s.d.nullTime(k.RevokedAt))
	if detail, ok := s.d.unique(err); ok {
		// The constraint (PostgreSQL) or column (SQLite) names which.
		if strings.Contains(detail, "hash") {
			return &store.ConflictError{Field: store.FieldHash, Value: k.Hash}
		}
		return &store.ConflictError{Field: store.FieldID, Value: k.ID}
	}
	return err
}

// APIKey returns a key by ID.
func (s *Store) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	return scanAPIKey(s.r.QueryRowContext(ctx, s.sql(qAPIKey), id))
}

// APIKeyByHash returns the key with that hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	if hash == "" {
		return store.APIKey{}, store.ErrNotFound
	}
	return scanAPIKey(s.r.QueryRowContext(ctx, s.sql(qKeyByHash), hash))
}

func (s *Store) apiKeys(ctx context.Context, qu query, args ...any) ([]store.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(qu), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// APIKeys lists every key.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	return s.apiKeys(ctx, qAPIKeys)
}

// DomainAPIKeys lists the keys bound to domain ("": the global ones).
func (s *Store) DomainAPIKeys(ctx context.Context, domain string) ([]store.APIKey, error) {
	return s.apiKeys(ctx, qDomainKey, domain)
}

// RevokeAPIKey revokes a key (keeping an earlier revocation's instant).
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) (store.APIKey, error) {
	return scanAPIKey(s.w.QueryRowContext(ctx, s.sql(qRevokeKey), id, s.d.instant(now)))
}

// TouchAPIKey records a key's use, at most once per
// store.APIKeyTouchInterval.
func (s *Store) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, s.sql(qTouchKey), id, s.d.instant(now), s.d.instant(now.Add(-store.APIKeyTouchInterval)))
	return err
}
