package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Signing keys.

const keyCols = `domain, kid, alg, private_key, created_at, not_after, expires_at`

var (
	qKeys = q(`SELECT ` + keyCols + ` FROM signing_keys
		WHERE domain = $1 AND expires_at > $2 ORDER BY created_at ASC NULLS FIRST, kid COLLATE "C"`)
	qAddKey = q(`INSERT INTO signing_keys (` + keyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`)
)

func (s *Store) keys(ctx context.Context, db querier, domain string, now time.Time) ([]store.SigningKey, error) {
	rows, err := db.QueryContext(ctx, s.sql(qKeys), domain, s.d.instant(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		if err := rows.Scan(&k.Domain, &k.KID, &k.Alg, &k.PrivateKey, timeCol{&k.CreatedAt}, timeCol{&k.NotAfter}, timeCol{&k.ExpiresAt}); err != nil {
			return nil, err
		}
		k.PrivateKey = bytesOut(k.PrivateKey)
		out = append(out, k)
	}
	return out, rows.Err()
}

// SigningKeys lists the domain's unexpired keys, oldest first.
func (s *Store) SigningKeys(ctx context.Context, domain string) ([]store.SigningKey, error) {
	return s.keys(ctx, s.r, domain, s.Now())
}

// RotateSigningKeys runs decide in a write transaction holding the dialect's
// exclusive lock for the domain, after re-reading the domain's keys under it.
func (s *Store) RotateSigningKeys(ctx context.Context, domain string, decide func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.d.lockDomain(ctx, tx, domain); err != nil {
			return err
		}
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
			if _, err := tx.ExecContext(ctx, s.sql(qAddKey), k.Domain, k.KID, k.Alg, bytesArg(k.PrivateKey),
				s.d.nullTime(k.CreatedAt), s.d.nullTime(k.NotAfter), s.d.nullTime(k.ExpiresAt)); err != nil {
				return s.conflict(err)
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

// Secrets.

var (
	qAddSecret = q(`INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`)
	qSecret    = q(`SELECT value FROM secrets WHERE name = $1`)
)

// Secret returns the value stored under name, storing value if name is new.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if len(value) == 0 {
		return nil, errors.New("store: refusing to store an empty secret")
	}
	// Two statements, not one: on PostgreSQL a concurrent first writer's row
	// is visible only to a statement that starts after the INSERT waited
	// for it.
	if _, err := s.w.ExecContext(ctx, s.sql(qAddSecret), name, value); err != nil {
		return nil, err
	}
	var got []byte
	if err := s.w.QueryRowContext(ctx, s.sql(qSecret), name).Scan(&got); err != nil {
		return nil, err
	}
	return got, nil
}
