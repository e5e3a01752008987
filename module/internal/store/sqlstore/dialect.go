package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is what differs between the databases the store runs on: how a
// query is written, how values are encoded, how RotateSigningKeys locks a
// domain, and how a unique violation is reported. The columns keep the types
// each database's schema has always had: SQLite stores times as Unix
// microseconds in INTEGER and lists as JSON arrays in TEXT; PostgreSQL uses
// timestamptz, text[], boolean and jsonb. Zero times and empty lists are
// NULL in both.
type Dialect struct {
	name string
	id   int // index into query.text

	// instant encodes a time compared against (never NULL, even when zero).
	instant func(time.Time) any
	// list encodes a string list (nil or empty: NULL).
	list func([]string) (any, error)
	// scanList decodes a list column.
	scanList func(*[]string) sql.Scanner
	// lockDomain takes the exclusive lock RotateSigningKeys runs decide
	// under, for the rest of tx.
	lockDomain func(ctx context.Context, tx *sql.Tx, domain string) error
	// unique reports whether err is a unique or primary-key violation, with
	// a description (the constraint).
	unique func(err error) (string, bool)
}

func (d *Dialect) String() string { return d.name }

// SQLite is the dialect of SQLite (modernc.org/sqlite). Write transactions
// must begin IMMEDIATE (the opener's DSN sets _txlock=immediate): that,
// SQLite's one writer at a time, is the lock RotateSigningKeys and the
// directory writes rely on.
var SQLite = &Dialect{
	name:    "sqlite",
	id:      1,
	instant: func(t time.Time) any { return t.UnixMicro() },
	list: func(l []string) (any, error) {
		if len(l) == 0 {
			return nil, nil
		}
		b, err := json.Marshal(l)
		return string(b), err
	},
	scanList:   func(p *[]string) sql.Scanner { return jsonList{p} },
	lockDomain: func(context.Context, *sql.Tx, string) error { return nil },
	unique: func(err error) (string, bool) {
		var e *sqlite.Error
		if errors.As(err, &e) {
			switch e.Code() {
			case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
				return e.Error(), true
			}
		}
		return "", false
	},
}

// Postgres is the dialect of PostgreSQL through pgx's database/sql driver
// (github.com/jackc/pgx/v5/stdlib). RotateSigningKeys takes a
// transaction-scoped advisory lock per domain; the directory writes
// serialise on the row of directory_version they bump first.
var Postgres = &Dialect{
	name:    "postgres",
	id:      0,
	instant: func(t time.Time) any { return t },
	list: func(l []string) (any, error) {
		if len(l) == 0 {
			return nil, nil
		}
		return l, nil
	},
	scanList: func(p *[]string) sql.Scanner { return pgList{p} },
	lockDomain: func(ctx context.Context, tx *sql.Tx, domain string) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, LockKey("gatehouse:signing-keys:"+domain)); err != nil {
			return fmt.Errorf("taking the signing-key lock of domain %q: %w", domain, err)
		}
		return nil
	},
	unique: func(err error) (string, bool) {
		var e *pgconn.PgError
		if errors.As(err, &e) && e.Code == "23505" {
			return e.ConstraintName, true
		}
		return "", false
	},
}

// LockKey turns a name into a PostgreSQL advisory lock key.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Queries are written once, for PostgreSQL ($1 placeholders, GREATEST,
// COLLATE "C"), and rendered for SQLite when the package loads (?1,
// two-argument MAX, COLLATE BINARY).
type query struct{ text [2]string }

func q(pg string) query { return query{[2]string{pg, toSQLite(pg)}} }

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

func toSQLite(pg string) string {
	s := placeholder.ReplaceAllString(pg, "?$1")
	s = strings.ReplaceAll(s, "GREATEST(", "MAX(")
	return strings.ReplaceAll(s, `COLLATE "C"`, "COLLATE BINARY")
}

// render turns a query built at run time (written as for q) into d's.
func (d *Dialect) render(pg string) string {
	if d.id == SQLite.id {
		return toSQLite(pg)
	}
	return pg
}

// Values in and out of columns.

// nullTime encodes a time column: NULL for the zero time.
func (d *Dialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.instant(t)
}

// timeCol decodes a time column of either dialect: NULL is the zero time,
// an integer is Unix microseconds; times come back in UTC.
type timeCol struct{ p *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = time.Time{}
	case int64:
		*c.p = time.UnixMicro(v).UTC()
	case time.Time:
		*c.p = v.UTC()
	default:
		return fmt.Errorf("sqlstore: a time column holds %T", src)
	}
	return nil
}

// jsonList decodes a SQLite list column (a JSON array, or NULL).
type jsonList struct{ p *[]string }

func (c jsonList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*c.p = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("sqlstore: a list column holds %T", src)
	}
	var l []string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("sqlstore: corrupt list column: %w", err)
		}
	}
	if len(l) == 0 {
		l = nil
	}
	*c.p = l
	return nil
}

// pgList decodes a PostgreSQL text[] column, which pgx's database/sql driver
// hands over in PostgreSQL's text form: {a,"b c","d\"e"}.
type pgList struct{ p *[]string }

func (c pgList) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*c.p = nil
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("sqlstore: a list column holds %T", src)
	}
	l, err := parsePGArray(s)
	if err != nil {
		return err
	}
	*c.p = l
	return nil
}

// parsePGArray parses the text form of a one-dimensional text[] without
// NULL elements (the store never writes one). An empty array is nil.
func parsePGArray(s string) ([]string, error) {
	bad := func(why string) error { return fmt.Errorf("sqlstore: corrupt text[] value (%s)", why) }
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, bad("not in braces")
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return nil, nil
	}
	var out []string
	for i := 0; ; {
		var elem strings.Builder
		if i < len(body) && body[i] == '"' {
			i++
			for {
				if i >= len(body) {
					return nil, bad("unterminated quote")
				}
				ch := body[i]
				if ch == '"' {
					i++
					break
				}
				if ch == '\\' {
					i++
					if i >= len(body) {
						return nil, bad("dangling backslash")
					}
					ch = body[i]
				}
				elem.WriteByte(ch)
				i++
			}
		} else {
			j := strings.IndexByte(body[i:], ',')
			if j < 0 {
				j = len(body) - i
			}
			raw := body[i : i+j]
			if raw == "NULL" {
				return nil, bad("NULL element")
			}
			if raw == "" || strings.ContainsAny(raw, `{}"\`) {
				return nil, bad("malformed element")
			}
			elem.WriteString(raw)
			i += j
		}
		out = append(out, elem.String())
		if i == len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, bad("element not followed by a comma")
		}
		i++
	}
}

// bytesArg encodes a byte column: NULL when empty.
func bytesArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// bytesOut is what an empty byte column comes back as: nil.
func bytesOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// jsonArg encodes a JSON column: NULL when empty.
func jsonArg(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// jsonCol decodes a JSON column (TEXT or jsonb), copying the bytes.
type jsonCol struct{ p *json.RawMessage }

func (c jsonCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case string:
		*c.p = json.RawMessage(v)
	case []byte:
		*c.p = json.RawMessage(append([]byte(nil), v...))
	default:
		return fmt.Errorf("sqlstore: a JSON column holds %T", src)
	}
	if len(*c.p) == 0 {
		*c.p = nil
	}
	return nil
}
