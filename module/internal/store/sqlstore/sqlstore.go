package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Store is a store.Store on a SQL database of a Dialect. It is safe for
// concurrent use, and several Stores (in one process or several) may share
// the database.
type Store struct {
	// Now is the clock SigningKeys, RotateSigningKeys, Revoked and
	// RevokedSince judge expiry by, and the directory writes stamp
	// CreatedAt and UpdatedAt with (the other methods take now). New sets
	// time.Now; tests may replace it before the Store is shared.
	Now func() time.Time

	d     *Dialect
	w     *sql.DB // writes and read-modify-write transactions
	r     *sql.DB // reads (the same as w, or a read-only pool)
	close func() error
}

var _ store.Store = (*Store)(nil)

// New returns a Store on a database whose schema is migrated (the opener's
// job). Writes and transactions go to w, plain reads to r (which may be w).
// Close calls close.
func New(d *Dialect, w, r *sql.DB, close func() error) *Store {
	return &Store{Now: time.Now, d: d, w: w, r: r, close: close}
}

// Close releases the database handles (through the opener's close).
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// sql returns a query's text in the store's dialect.
func (s *Store) sql(q query) string { return q.text[s.d.id] }

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// inTx runs fn in a write transaction and commits it, or rolls it back if
// fn fails.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// conflict maps a primary-key or unique violation to store.ErrConflict.
func (s *Store) conflict(err error) error {
	if detail, ok := s.d.unique(err); ok {
		return fmt.Errorf("%w (%s)", store.ErrConflict, detail)
	}
	return err
}

// in returns "$first, $first+1, ..." for n values.
func in(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
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

// DeleteExpired removes every record expired at now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"auth_codes", "refresh_tokens", "revocations", "sessions", "session_grants", "signing_keys", "login_failures"} {
			if _, err := tx.ExecContext(ctx, s.d.render(`DELETE FROM `+table+` WHERE expires_at <= $1`), s.d.instant(now)); err != nil {
				return fmt.Errorf("deleting expired %s: %w", table, err)
			}
		}
		return nil
	})
}
