package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// The directory: domains, users (with their logins and external
// identities), clients and policies.
//
// Every write runs in one transaction that first bumps directory_version.
// That row is also the writers' lock: on PostgreSQL the UPDATE holds its row
// lock to the end of the transaction, so directory writes run one at a time
// and each sees every earlier one (read committed); on SQLite the write
// transaction is exclusive anyway. The uniqueness checks below can therefore
// read before they write and name the field that collides; the unique
// constraints of the schema stay as the backstop.

var (
	qBumpDirectory    = q(`UPDATE directory_version SET version = version + 1 WHERE id = 1`)
	qDirectoryVersion = q(`SELECT version FROM directory_version WHERE id = 1`)
)

// DirectoryVersion returns the directory's change counter.
func (s *Store) DirectoryVersion(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, s.sql(qDirectoryVersion)).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the directory version: %w", err)
	}
	return uint64(v), nil
}

// dirTx runs fn in a write transaction that has bumped the directory
// version, with the instant to stamp rows with.
func (s *Store) dirTx(ctx context.Context, fn func(tx *sql.Tx, now time.Time) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.sql(qBumpDirectory))
		if err != nil {
			return fmt.Errorf("bumping the directory version: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("bumping the directory version: the directory_version row is missing (%d rows, %v)", n, err)
		}
		return fn(tx, time.UnixMicro(s.Now().UnixMicro()).UTC())
	})
}

// stored reads a row's version with sel (SELECT version ...), inside tx.
func stored(ctx context.Context, tx *sql.Tx, sel string, args ...any) (version int64, exists bool, err error) {
	err = tx.QueryRowContext(ctx, sel, args...).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return version, err == nil, err
}

// expect checks a write's expected version against the stored row; taken is
// the error of a create that finds the row.
func expect(exists bool, version, expected int64, taken error) error {
	switch {
	case expected == store.AnyVersion:
		return nil
	case expected == store.Absent:
		if exists {
			return taken
		}
		return nil
	case !exists:
		return store.ErrNotFound
	case version != expected:
		return fmt.Errorf("%w (stored version %d, expected %d)", store.ErrStale, version, expected)
	}
	return nil
}

// expectDelete is expect for a delete, which needs the row.
func expectDelete(exists bool, version, expected int64) error {
	if !exists {
		return store.ErrNotFound
	}
	return expect(true, version, expected, nil)
}

// exists reports whether sel finds a row, inside tx.
func exists(ctx context.Context, tx *sql.Tx, sel string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, sel, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Domains.

const domainCols = `name, issuer, settings, version, created_at, updated_at`

var (
	qDomain        = q(`SELECT ` + domainCols + ` FROM domains WHERE name = $1`)
	qDomains       = q(`SELECT ` + domainCols + ` FROM domains ORDER BY name COLLATE "C"`)
	qDomainVersion = q(`SELECT version FROM domains WHERE name = $1`)
	qIssuerTaken   = q(`SELECT 1 FROM domains WHERE issuer = $1 AND issuer <> '' AND name <> $2`) // the partial index's condition, so it is used
	qAddDomain     = q(`INSERT INTO domains (` + domainCols + `) VALUES ($1, $2, $3, 1, $4, $4)`)
	qSetDomain     = q(`UPDATE domains SET issuer = $2, settings = $3, version = version + 1, updated_at = $4 WHERE name = $1`)
	// Deleting a domain: every directory table, then its API keys revoked.
	qDeleteDomain = []query{
		q(`DELETE FROM domains WHERE name = $1`),
		q(`DELETE FROM users WHERE domain = $1`),
		q(`DELETE FROM user_logins WHERE domain = $1`),
		q(`DELETE FROM user_identities WHERE domain = $1`),
		q(`DELETE FROM clients WHERE domain = $1`),
		q(`DELETE FROM policies WHERE domain = $1`),
	}
	qRevokeDomainKeys = q(`UPDATE api_keys SET revoked_at = $2 WHERE domain = $1 AND revoked_at IS NULL`)
)

func scanDomain(row interface{ Scan(...any) error }) (store.Domain, error) {
	var d store.Domain
	err := row.Scan(&d.Name, &d.Issuer, jsonCol{&d.Settings}, &d.Version, timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return d, store.ErrNotFound
	}
	return d, err
}

// Domain returns a stored domain.
func (s *Store) Domain(ctx context.Context, name string) (store.Domain, error) {
	return scanDomain(s.r.QueryRowContext(ctx, s.sql(qDomain), name))
}

// Domains lists the stored domains by name.
func (s *Store) Domains(ctx context.Context) ([]store.Domain, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(qDomains))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PutDomain creates or updates a domain; see store.Directory.
func (s *Store) PutDomain(ctx context.Context, d store.Domain, expected int64) (store.Domain, error) {
	if err := d.Validate(); err != nil {
		return store.Domain{}, err
	}
	if err := store.CheckExpected(expected); err != nil {
		return store.Domain{}, err
	}
	var out store.Domain
	err := s.dirTx(ctx, func(tx *sql.Tx, now time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(qDomainVersion), d.Name)
		if err != nil {
			return err
		}
		if err := expect(ok, version, expected, &store.ConflictError{Field: store.FieldName, Value: d.Name}); err != nil {
			return err
		}
		if d.Issuer != "" {
			taken, err := exists(ctx, tx, s.sql(qIssuerTaken), d.Issuer, d.Name)
			if err != nil {
				return err
			}
			if taken {
				return &store.ConflictError{Field: store.FieldIssuer, Value: d.Issuer}
			}
		}
		write := qAddDomain
		if ok {
			write = qSetDomain
		}
		if _, err := tx.ExecContext(ctx, s.sql(write), d.Name, d.Issuer, jsonArg(d.Settings), s.d.instant(now)); err != nil {
			return s.conflict(err)
		}
		out, err = scanDomain(tx.QueryRowContext(ctx, s.sql(qDomain), d.Name))
		return err
	})
	return out, err
}

// DeleteDomain deletes a domain and everything in it; see store.Directory.
func (s *Store) DeleteDomain(ctx context.Context, name string, expected int64) error {
	if err := store.CheckDeleteExpected(expected); err != nil {
		return err
	}
	return s.dirTx(ctx, func(tx *sql.Tx, now time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(qDomainVersion), name)
		if err != nil {
			return err
		}
		if err := expectDelete(ok, version, expected); err != nil {
			return err
		}
		for _, del := range qDeleteDomain {
			if _, err := tx.ExecContext(ctx, s.sql(del), name); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.sql(qRevokeDomainKeys), name, s.d.instant(now))
		return err
	})
}

// Users.

const userCols = `u.domain, u.subject, u.preferred_username, u.name, u.given_name, u.family_name, u.email,
	u.email_verified, u.active, u.password_hash, u.claims, u.version, u.created_at, u.updated_at`

var (
	qUser           = q(`SELECT ` + userCols + ` FROM users AS u WHERE u.domain = $1 AND u.subject = $2`)
	qUserByLogin    = q(`SELECT ` + userCols + ` FROM user_logins AS l JOIN users AS u ON u.domain = l.domain AND u.subject = l.subject WHERE l.domain = $1 AND l.login = $2`)
	qUserByExternal = q(`SELECT ` + userCols + ` FROM user_identities AS i JOIN users AS u ON u.domain = i.domain AND u.subject = i.subject
		WHERE i.domain = $1 AND i.provider = $2 AND i.external_subject = $3`)
	// Identities are sorted here, not by the query: ordering by the
	// primary key would tempt SQLite's planner into scanning the domain.
	qIdentities   = q(`SELECT provider, external_subject FROM user_identities WHERE domain = $1 AND subject = $2`)
	qUserVersion  = q(`SELECT version FROM users WHERE domain = $1 AND subject = $2`)
	qLoginOwner   = q(`SELECT subject FROM user_logins WHERE domain = $1 AND login = $2`)
	qIdentityUser = q(`SELECT subject FROM user_identities WHERE domain = $1 AND provider = $2 AND external_subject = $3`)
	qAddUser      = q(`INSERT INTO users (domain, subject, preferred_username, username_key, name, given_name, family_name,
			email, email_key, email_verified, active, password_hash, claims, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14)`)
	qSetUser = q(`UPDATE users SET preferred_username = $3, username_key = $4, name = $5, given_name = $6, family_name = $7,
			email = $8, email_key = $9, email_verified = $10, active = $11, password_hash = $12, claims = $13,
			version = version + 1, updated_at = $14
		WHERE domain = $1 AND subject = $2`)
	qDeleteUser = []query{
		q(`DELETE FROM users WHERE domain = $1 AND subject = $2`),
		q(`DELETE FROM user_logins WHERE domain = $1 AND subject = $2`),
		q(`DELETE FROM user_identities WHERE domain = $1 AND subject = $2`),
	}
	qAddLogin    = q(`INSERT INTO user_logins (domain, login, subject) VALUES ($1, $2, $3)`)
	qAddIdentity = q(`INSERT INTO user_identities (domain, provider, external_subject, subject) VALUES ($1, $2, $3, $4)`)
)

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	err := row.Scan(&u.Domain, &u.Subject, &u.PreferredUsername, &u.Name, &u.GivenName, &u.FamilyName, &u.Email,
		&u.EmailVerified, &u.Active, &u.PasswordHash, jsonCol{&u.Claims}, &u.Version, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return u, store.ErrNotFound
	}
	return u, err
}

// user reads one user (sel and args select it) with its identities.
func (s *Store) user(ctx context.Context, db querier, sel query, args ...any) (store.User, error) {
	u, err := scanUser(db.QueryRowContext(ctx, s.sql(sel), args...))
	if err != nil {
		return store.User{}, err
	}
	rows, err := db.QueryContext(ctx, s.sql(qIdentities), u.Domain, u.Subject)
	if err != nil {
		return store.User{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var id store.ExternalIdentity
		if err := rows.Scan(&id.Provider, &id.Subject); err != nil {
			return store.User{}, err
		}
		u.Identities = append(u.Identities, id)
	}
	sortIdentities(u.Identities)
	return u, rows.Err()
}

// sortIdentities puts a user's identities in their order: by provider, then
// subject (bytewise).
func sortIdentities(ids []store.ExternalIdentity) {
	slices.SortFunc(ids, func(a, b store.ExternalIdentity) int {
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

// User returns a user by subject.
func (s *Store) User(ctx context.Context, domain, subject string) (store.User, error) {
	return s.user(ctx, s.r, qUser, domain, subject)
}

// UserByLogin returns the user whose username or e-mail is login
// (compared with store.LoginKey).
func (s *Store) UserByLogin(ctx context.Context, domain, login string) (store.User, error) {
	if login == "" {
		return store.User{}, store.ErrNotFound
	}
	return s.user(ctx, s.r, qUserByLogin, domain, store.LoginKey(login))
}

// UserByExternal returns the user linked to an external identity.
func (s *Store) UserByExternal(ctx context.Context, domain, provider, externalSubject string) (store.User, error) {
	return s.user(ctx, s.r, qUserByExternal, domain, provider, externalSubject)
}

// likeEscaper makes a string match itself in LIKE ... ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Users lists a domain's users matching search; see store.Directory.
func (s *Store) Users(ctx context.Context, domain, search string, offset, limit int) ([]store.User, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, fmt.Errorf("store: listing users needs a non-negative offset and limit (got %d, %d)", offset, limit)
	}
	where := `u.domain = $1`
	args := []any{domain}
	if search != "" {
		where += ` AND (u.username_key LIKE $2 ESCAPE '\' OR u.email_key LIKE $2 ESCAPE '\')`
		args = append(args, "%"+likeEscaper.Replace(store.LoginKey(search))+"%")
	}
	// One read transaction: the count and the page agree.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: s.snapshot()})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, s.d.render(`SELECT COUNT(*) FROM users AS u WHERE `+where), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	n := len(args)
	rows, err := tx.QueryContext(ctx, s.d.render(fmt.Sprintf(`SELECT %s FROM users AS u WHERE %s
		ORDER BY u.username_key COLLATE "C", u.subject COLLATE "C" LIMIT $%d OFFSET $%d`, userCols, where, n+1, n+2)),
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(users) == 0 {
		return users, total, nil
	}
	// Their identities, in one query.
	idArgs := []any{domain}
	index := make(map[string]int, len(users))
	for i, u := range users {
		idArgs = append(idArgs, u.Subject)
		index[u.Subject] = i
	}
	rows, err = tx.QueryContext(ctx, s.d.render(`SELECT subject, provider, external_subject FROM user_identities
		WHERE domain = $1 AND subject IN (`+in(2, len(users))+`)`), idArgs...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var sub string
		var id store.ExternalIdentity
		if err := rows.Scan(&sub, &id.Provider, &id.Subject); err != nil {
			return nil, 0, err
		}
		u := &users[index[sub]]
		u.Identities = append(u.Identities, id)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	for _, u := range users {
		sortIdentities(u.Identities)
	}
	return users, total, nil
}

// snapshot is the isolation level of a read transaction that must see one
// state: SQLite's read transactions always do (LevelDefault); PostgreSQL
// needs repeatable read.
func (s *Store) snapshot() sql.IsolationLevel {
	if s.d == SQLite {
		return sql.LevelDefault
	}
	return sql.LevelRepeatableRead
}

// PutUser creates or updates a user; see store.Directory.
func (s *Store) PutUser(ctx context.Context, u store.User, expected int64) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, err
	}
	if err := store.CheckExpected(expected); err != nil {
		return store.User{}, err
	}
	usernameKey, emailKey := store.LoginKey(u.PreferredUsername), store.LoginKey(u.Email)
	var out store.User
	err := s.dirTx(ctx, func(tx *sql.Tx, now time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(qUserVersion), u.Domain, u.Subject)
		if err != nil {
			return err
		}
		if err := expect(ok, version, expected, &store.ConflictError{Field: store.FieldSubject, Value: u.Subject}); err != nil {
			return err
		}
		// Username and e-mail share one namespace per domain (user_logins):
		// neither may be another user's username or e-mail.
		var logins []string
		for _, l := range []struct{ key, field, value string }{
			{usernameKey, store.FieldPreferredUsername, u.PreferredUsername},
			{emailKey, store.FieldEmail, u.Email},
		} {
			if l.key == "" || (len(logins) > 0 && logins[0] == l.key) {
				continue
			}
			var owner string
			err := tx.QueryRowContext(ctx, s.sql(qLoginOwner), u.Domain, l.key).Scan(&owner)
			switch {
			case err == nil && owner != u.Subject:
				return &store.ConflictError{Field: l.field, Value: l.value}
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			logins = append(logins, l.key)
		}
		for _, id := range u.Identities {
			var owner string
			err := tx.QueryRowContext(ctx, s.sql(qIdentityUser), u.Domain, id.Provider, id.Subject).Scan(&owner)
			switch {
			case err == nil && owner != u.Subject:
				return &store.ConflictError{Field: store.FieldExternalIdentity, Value: id.Provider + ":" + id.Subject}
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		write := qAddUser
		if ok {
			write = qSetUser
		}
		if _, err := tx.ExecContext(ctx, s.sql(write), u.Domain, u.Subject, u.PreferredUsername, usernameKey, u.Name, u.GivenName, u.FamilyName,
			u.Email, emailKey, u.EmailVerified, u.Active, u.PasswordHash, jsonArg(u.Claims), s.d.instant(now)); err != nil {
			return s.conflict(err)
		}
		// Logins and identities: replaced.
		for _, del := range qDeleteUser[1:] {
			if _, err := tx.ExecContext(ctx, s.sql(del), u.Domain, u.Subject); err != nil {
				return err
			}
		}
		for _, l := range logins {
			if _, err := tx.ExecContext(ctx, s.sql(qAddLogin), u.Domain, l, u.Subject); err != nil {
				return s.conflict(err)
			}
		}
		for _, id := range u.Identities {
			if _, err := tx.ExecContext(ctx, s.sql(qAddIdentity), u.Domain, id.Provider, id.Subject, u.Subject); err != nil {
				return s.conflict(err)
			}
		}
		out, err = s.user(ctx, tx, qUser, u.Domain, u.Subject)
		return err
	})
	return out, err
}

// DeleteUser deletes a user with its logins and identities.
func (s *Store) DeleteUser(ctx context.Context, domain, subject string, expected int64) error {
	if err := store.CheckDeleteExpected(expected); err != nil {
		return err
	}
	return s.dirTx(ctx, func(tx *sql.Tx, _ time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(qUserVersion), domain, subject)
		if err != nil {
			return err
		}
		if err := expectDelete(ok, version, expected); err != nil {
			return err
		}
		for _, del := range qDeleteUser {
			if _, err := tx.ExecContext(ctx, s.sql(del), domain, subject); err != nil {
				return err
			}
		}
		return nil
	})
}

// Clients and policies: rows of (domain, id) with a JSON document.

// docTable describes the table of clients or of policies.
type docTable struct {
	get, list, version, add, set, del query
}

const (
	clientCols = `domain, id, data, secret_hash, version, created_at, updated_at`
	policyCols = `domain, id, source, version, created_at, updated_at`
)

// The writes take $1 domain, $2 id, $3 the document, $4 the instant and
// (clients) $5 the secret hash.
var (
	clients = docTable{
		get:     q(`SELECT ` + clientCols + ` FROM clients WHERE domain = $1 AND id = $2`),
		list:    q(`SELECT ` + clientCols + ` FROM clients WHERE domain = $1 ORDER BY id COLLATE "C"`),
		version: q(`SELECT version FROM clients WHERE domain = $1 AND id = $2`),
		add:     q(`INSERT INTO clients (` + clientCols + `) VALUES ($1, $2, $3, $5, 1, $4, $4)`),
		set:     q(`UPDATE clients SET data = $3, secret_hash = $5, version = version + 1, updated_at = $4 WHERE domain = $1 AND id = $2`),
		del:     q(`DELETE FROM clients WHERE domain = $1 AND id = $2`),
	}
	policies = docTable{
		get:     q(`SELECT ` + policyCols + ` FROM policies WHERE domain = $1 AND id = $2`),
		list:    q(`SELECT ` + policyCols + ` FROM policies WHERE domain = $1 ORDER BY id COLLATE "C"`),
		version: q(`SELECT version FROM policies WHERE domain = $1 AND id = $2`),
		add:     q(`INSERT INTO policies (` + policyCols + `) VALUES ($1, $2, $3, 1, $4, $4)`),
		set:     q(`UPDATE policies SET source = $3, version = version + 1, updated_at = $4 WHERE domain = $1 AND id = $2`),
		del:     q(`DELETE FROM policies WHERE domain = $1 AND id = $2`),
	}
)

// putDoc is the write of a client or policy: args are $3 (and $5).
func (s *Store) putDoc(ctx context.Context, t docTable, domain, id string, expected int64, args []any, read func(querier) error) error {
	if err := store.CheckExpected(expected); err != nil {
		return err
	}
	return s.dirTx(ctx, func(tx *sql.Tx, now time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(t.version), domain, id)
		if err != nil {
			return err
		}
		if err := expect(ok, version, expected, &store.ConflictError{Field: store.FieldID, Value: id}); err != nil {
			return err
		}
		write := t.add
		if ok {
			write = t.set
		}
		all := append([]any{domain, id, args[0], s.d.instant(now)}, args[1:]...)
		if _, err := tx.ExecContext(ctx, s.sql(write), all...); err != nil {
			return s.conflict(err)
		}
		return read(tx)
	})
}

func (s *Store) deleteDoc(ctx context.Context, t docTable, domain, id string, expected int64) error {
	if err := store.CheckDeleteExpected(expected); err != nil {
		return err
	}
	return s.dirTx(ctx, func(tx *sql.Tx, _ time.Time) error {
		version, ok, err := stored(ctx, tx, s.sql(t.version), domain, id)
		if err != nil {
			return err
		}
		if err := expectDelete(ok, version, expected); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.sql(t.del), domain, id)
		return err
	})
}

func scanClient(row interface{ Scan(...any) error }) (store.Client, error) {
	var c store.Client
	err := row.Scan(&c.Domain, &c.ID, jsonCol{&c.Data}, &c.SecretHash, &c.Version, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, err
}

// Client returns a stored client.
func (s *Store) Client(ctx context.Context, domain, id string) (store.Client, error) {
	return scanClient(s.r.QueryRowContext(ctx, s.sql(clients.get), domain, id))
}

// Clients lists a domain's stored clients by ID.
func (s *Store) Clients(ctx context.Context, domain string) ([]store.Client, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(clients.list), domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutClient creates or updates a client; see store.Directory.
func (s *Store) PutClient(ctx context.Context, c store.Client, expected int64) (store.Client, error) {
	if err := c.Validate(); err != nil {
		return store.Client{}, err
	}
	var out store.Client
	err := s.putDoc(ctx, clients, c.Domain, c.ID, expected, []any{jsonArg(c.Data), c.SecretHash}, func(db querier) (err error) {
		out, err = scanClient(db.QueryRowContext(ctx, s.sql(clients.get), c.Domain, c.ID))
		return err
	})
	return out, err
}

// DeleteClient deletes a stored client.
func (s *Store) DeleteClient(ctx context.Context, domain, id string, expected int64) error {
	return s.deleteDoc(ctx, clients, domain, id, expected)
}

func scanPolicy(row interface{ Scan(...any) error }) (store.Policy, error) {
	var p store.Policy
	err := row.Scan(&p.Domain, &p.ID, jsonCol{&p.Source}, &p.Version, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return p, store.ErrNotFound
	}
	return p, err
}

// Policy returns a stored policy.
func (s *Store) Policy(ctx context.Context, domain, id string) (store.Policy, error) {
	return scanPolicy(s.r.QueryRowContext(ctx, s.sql(policies.get), domain, id))
}

// Policies lists a domain's stored policies by ID.
func (s *Store) Policies(ctx context.Context, domain string) ([]store.Policy, error) {
	rows, err := s.r.QueryContext(ctx, s.sql(policies.list), domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutPolicy creates or updates a policy; see store.Directory.
func (s *Store) PutPolicy(ctx context.Context, p store.Policy, expected int64) (store.Policy, error) {
	if err := p.Validate(); err != nil {
		return store.Policy{}, err
	}
	var out store.Policy
	err := s.putDoc(ctx, policies, p.Domain, p.ID, expected, []any{jsonArg(p.Source)}, func(db querier) (err error) {
		out, err = scanPolicy(db.QueryRowContext(ctx, s.sql(policies.get), p.Domain, p.ID))
		return err
	})
	return out, err
}

// DeletePolicy deletes a stored policy.
func (s *Store) DeletePolicy(ctx context.Context, domain, id string, expected int64) error {
	return s.deleteDoc(ctx, policies, domain, id, expected)
}
