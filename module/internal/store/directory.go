package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Expected versions of a directory write. Every directory row carries a
// Version that every write of it bumps (a new row has version 1); a write
// names the version its caller read, and fails with ErrStale, changing
// nothing, when the stored one differs.
const (
	// Absent is the expected version of a row that does not exist yet: a Put
	// with it creates the row, and is ErrConflict when the row exists.
	Absent int64 = 0
	// AnyVersion skips the check: a Put with it creates the row or replaces
	// whatever version is stored, a Delete deletes whatever version is stored.
	AnyVersion int64 = -1
)

// Fields a ConflictError names.
const (
	FieldName              = "name"               // a domain's name
	FieldIssuer            = "issuer"             // a domain's issuer URL
	FieldSubject           = "subject"            // a user's subject
	FieldPreferredUsername = "preferred_username" // a user's username: another user's username or e-mail
	FieldEmail             = "email"              // a user's e-mail: another user's username or e-mail
	FieldExternalIdentity  = "external_identity"  // a (provider, subject) linked to another user
	FieldID                = "id"                 // a client's, policy's or API key's ID
	FieldHash              = "hash"               // an API key's hash
)

// ConflictError is the ErrConflict of a directory or credential write: the
// value of Field is another record's. errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Field string // one of the Field constants
	Value string // the value that collides
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: %s %q is taken", strings.ReplaceAll(e.Field, "_", " "), e.Value)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// LoginKey is how a user's preferred username and e-mail are compared: a
// login a user types matches a username or e-mail with the same LoginKey.
func LoginKey(s string) string { return strings.ToLower(s) }

// Domain is a domain (tenant) kept in the store.
type Domain struct {
	Name   string
	Issuer string // unique among stored domains (when not empty)
	// Settings are the domain's other settings as JSON (session lifetime,
	// signing algorithm, key rotation, claims map); nil when none. The
	// store keeps them as they are (PostgreSQL may reorder an object's
	// members and its whitespace).
	Settings  json.RawMessage
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ExternalIdentity links a user to a subject at an external provider.
type ExternalIdentity struct {
	Provider string
	Subject  string
}

// User is a user of a domain kept in the store. Within a domain, no two
// users share a PreferredUsername or an Email, compared with LoginKey, and
// no user's PreferredUsername is another's Email; an ExternalIdentity is
// linked to at most one user.
type User struct {
	Domain            string
	Subject           string
	PreferredUsername string // "" = none (not a login)
	Name              string
	GivenName         string
	FamilyName        string
	Email             string // "" = none
	EmailVerified     bool
	Active            bool
	PasswordHash      string          // "" = no password (magic-link or federated users)
	Claims            json.RawMessage // [{"name","value","in":"access"|"identity"}]; nil when none
	// Identities come back sorted by Provider, then Subject.
	Identities []ExternalIdentity
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Client is a client of a domain kept in the store.
type Client struct {
	Domain string
	ID     string
	// Data holds every client field as JSON (camelCase, as the API).
	Data       json.RawMessage
	SecretHash string // "" = a public client
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Policy is a policy of a domain kept in the store.
type Policy struct {
	Domain    string
	ID        string
	Source    json.RawMessage // the policy model as JSON
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Directory holds the domains, users, clients and policies managed at run
// time (those of the Caddyfile never come here).
//
// Writes: Put creates or updates, with the version the caller expects (see
// Absent and AnyVersion): ErrConflict (a *ConflictError) when an ID or a
// unique value is taken, ErrStale when the stored version is not the
// expected one, ErrNotFound when an update or delete finds no row. A write
// that fails changes nothing. A successful Put returns the stored record: its
// Version bumped, CreatedAt kept, UpdatedAt set (backend clock).
//
// Every write also bumps DirectoryVersion, in the same transaction.
// Listings come back sorted (binary order of their keys).
type Directory interface {
	// DirectoryVersion is a counter that every directory write increases.
	// Reading it before and after reading several records, and reading again
	// when it moved, gives a consistent view of them.
	DirectoryVersion(ctx context.Context) (uint64, error)

	Domain(ctx context.Context, name string) (Domain, error)
	// Domains lists every stored domain, by name.
	Domains(ctx context.Context) ([]Domain, error)
	PutDomain(ctx context.Context, d Domain, expected int64) (Domain, error)
	// DeleteDomain deletes a domain and everything stored in it — users,
	// their identities, clients, policies — in one transaction, and revokes
	// the API keys bound to it (so a domain created again under the name
	// does not inherit them).
	DeleteDomain(ctx context.Context, name string, expected int64) error

	// User returns a user by subject.
	User(ctx context.Context, domain, subject string) (User, error)
	// UserByLogin returns the user whose PreferredUsername or Email has the
	// LoginKey of login.
	UserByLogin(ctx context.Context, domain, login string) (User, error)
	// UserByExternal returns the user linked to an external identity.
	UserByExternal(ctx context.Context, domain, provider, externalSubject string) (User, error)
	// Users lists a domain's users whose PreferredUsername or Email contains
	// search (case-insensitively; "" matches all), ordered by the LoginKey of
	// their PreferredUsername then Subject, skipping offset and returning at
	// most limit (the caller bounds it), with the number of users that
	// match.
	Users(ctx context.Context, domain, search string, offset, limit int) ([]User, int, error)
	PutUser(ctx context.Context, u User, expected int64) (User, error)
	DeleteUser(ctx context.Context, domain, subject string, expected int64) error

	Client(ctx context.Context, domain, id string) (Client, error)
	// Clients lists a domain's clients, by ID.
	Clients(ctx context.Context, domain string) ([]Client, error)
	PutClient(ctx context.Context, c Client, expected int64) (Client, error)
	DeleteClient(ctx context.Context, domain, id string, expected int64) error

	Policy(ctx context.Context, domain, id string) (Policy, error)
	// Policies lists a domain's policies, by ID.
	Policies(ctx context.Context, domain string) ([]Policy, error)
	PutPolicy(ctx context.Context, p Policy, expected int64) (Policy, error)
	DeletePolicy(ctx context.Context, domain, id string, expected int64) error
}

// APIKey is a key to the management API. The key itself is never stored:
// Hash is what the caller derives from it (unique).
type APIKey struct {
	ID        string
	Name      string
	Hash      string
	Domain    string // "" = global: every domain, and may create domains and keys
	ReadOnly  bool
	CreatedBy string // who made it (the ID of the key that did, or "cli")
	CreatedAt time.Time
	// ExpiresAt: the key is refused from this instant; zero = never.
	ExpiresAt time.Time
	// LastUsedAt is when the key was last used, to within
	// APIKeyTouchInterval; zero = never.
	LastUsedAt time.Time
	// RevokedAt: the key is refused after revocation; zero = not revoked.
	RevokedAt time.Time
}

// APIKeyTouchInterval is how coarsely LastUsedAt is kept: TouchAPIKey
// writes at most once per interval per key, and a caller holding a key whose
// LastUsedAt is more recent than this need not call it.
const APIKeyTouchInterval = time.Minute

// Credentials holds the credentials that are not part of a user record:
// today the management API keys.
type Credentials interface {
	// CreateAPIKey stores a new key; an ID or Hash that exists is a
	// *ConflictError.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKey returns a key by ID, revoked or expired or not.
	APIKey(ctx context.Context, id string) (APIKey, error)
	// APIKeyByHash returns the key with that Hash, revoked or expired or not
	// (the caller decides, and says why it refuses one).
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	// APIKeys lists every key; DomainAPIKeys those bound to domain ("": the
	// global ones). Both order by CreatedAt, then ID.
	APIKeys(ctx context.Context) ([]APIKey, error)
	DomainAPIKeys(ctx context.Context, domain string) ([]APIKey, error)
	// RevokeAPIKey sets a key's RevokedAt to now (a revoked key keeps its
	// first RevokedAt) and returns the key.
	RevokeAPIKey(ctx context.Context, id string, now time.Time) (APIKey, error)
	// TouchAPIKey records that the key was used at now, unless it was
	// recorded less than APIKeyTouchInterval before. An unknown key is not
	// an error.
	TouchAPIKey(ctx context.Context, id string, now time.Time) error
}

// Validation of directory and credential records, before any database work.

func checkJSON(what string, raw json.RawMessage) error {
	if len(raw) > 0 && !json.Valid(raw) {
		return fmt.Errorf("store: %s is not valid JSON", what)
	}
	return nil
}

// CheckExpected reports whether expected is a valid expected version for a
// Put (Absent, AnyVersion or a version read).
func CheckExpected(expected int64) error {
	if expected < AnyVersion {
		return fmt.Errorf("store: expected version %d is neither a version read, Absent nor AnyVersion", expected)
	}
	return nil
}

// CheckDeleteExpected is CheckExpected for a Delete, where Absent makes no
// sense.
func CheckDeleteExpected(expected int64) error {
	if expected == Absent {
		return errors.New("store: a delete needs the version read or AnyVersion, not Absent")
	}
	return CheckExpected(expected)
}

// Validate reports whether d can be stored: it needs a Name, and Settings
// must be JSON.
func (d Domain) Validate() error {
	if d.Name == "" {
		return errors.New("store: domain has no name")
	}
	return checkJSON("domain settings", d.Settings)
}

// Validate reports whether u can be stored: it needs a Domain and a
// Subject, Claims must be JSON, and its identities need a provider and a
// subject each and must differ.
func (u User) Validate() error {
	if u.Domain == "" || u.Subject == "" {
		return errors.New("store: user has no domain or subject")
	}
	seen := make(map[ExternalIdentity]bool, len(u.Identities))
	for _, id := range u.Identities {
		if id.Provider == "" || id.Subject == "" {
			return errors.New("store: external identity without provider or subject")
		}
		if seen[id] {
			return fmt.Errorf("store: external identity %s/%s is listed twice", id.Provider, id.Subject)
		}
		seen[id] = true
	}
	return checkJSON("user claims", u.Claims)
}

// Validate reports whether c can be stored: it needs a Domain and an ID,
// and Data must be JSON.
func (c Client) Validate() error {
	if c.Domain == "" || c.ID == "" {
		return errors.New("store: client has no domain or ID")
	}
	return checkJSON("client data", c.Data)
}

// Validate reports whether p can be stored: it needs a Domain and an ID,
// and Source must be JSON.
func (p Policy) Validate() error {
	if p.Domain == "" || p.ID == "" {
		return errors.New("store: policy has no domain or ID")
	}
	return checkJSON("policy source", p.Source)
}

// Validate reports whether k can be stored: it needs an ID and a Hash.
func (k APIKey) Validate() error {
	if k.ID == "" || k.Hash == "" {
		return errors.New("store: API key has no ID or hash")
	}
	return nil
}
