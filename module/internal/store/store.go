package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// Errors every backend returns (wrapped or not; test with errors.Is).
var (
	// ErrNotFound: no record with that ID (or it has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyUsed: a single-use record (code, refresh token) was consumed before.
	// The call still returns the record so the caller can revoke what it issued.
	ErrAlreadyUsed = errors.New("store: already used")
	// ErrConflict: a record with that ID already exists (a directory write
	// returns a *ConflictError, which names the field that collides).
	ErrConflict = errors.New("store: already exists")
	// ErrStale: a directory write named an expected version that is not the
	// stored one (someone else wrote in between). Nothing was changed.
	ErrStale = errors.New("store: the record has changed since it was read")
)

// HashID turns a secret handed to a client (code, refresh token, session ID)
// into the ID it is stored under: base64url(SHA-256(secret)).
func HashID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SigningKey is one of a domain's token signing keys.
type SigningKey struct {
	Domain string
	KID    string
	Alg    string // RS256, ES256, EdDSA
	// PrivateKey is the PKCS#8 DER encoding of the private key.
	PrivateKey []byte
	CreatedAt  time.Time
	// NotAfter: the key signs nothing after this instant (it is rotated out).
	NotAfter time.Time
	// ExpiresAt: the key leaves the JWKS after this instant (NotAfter plus the
	// longest lifetime of a token it may have signed).
	ExpiresAt time.Time
}

// AuthCode is an authorization code, stored under HashID(code).
type AuthCode struct {
	ID                  string
	Domain              string
	ClientID            string
	RedirectURI         string
	Subject             string
	Scopes              []string
	Audience            []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	AuthTime            time.Time
	SessionID           string // the SSO session (HashID) that approved it
	// FamilyID names the grant: every token issued from this code carries it,
	// so a replayed code can revoke them all.
	FamilyID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Revocation is one revoked ID (an access-token jti or a family ID).
type Revocation struct {
	ID        string
	RevokedAt time.Time
	ExpiresAt time.Time
}

// RefreshToken is one refresh token of a family, stored under HashID(token).
type RefreshToken struct {
	ID string
	// FamilyID names the grant (the auth code's FamilyID); required. Revoking
	// it revokes every token of the family.
	FamilyID  string
	Domain    string
	ClientID  string
	Subject   string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RotatedAt is set when the token was exchanged for its successor.
	RotatedAt time.Time
}

// Session is an SSO session at the issuer, stored under HashID(cookie value).
type Session struct {
	ID        string
	Domain    string
	Subject   string
	AuthTime  time.Time
	AMR       []string // authentication methods: "pwd", "otp", "fed", ...
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionGrant records that a grant — a token family — was made under an
// SSO session, so that ending the session can revoke what it started (the
// access tokens of a code-only client included, which no refresh token
// records).
type SessionGrant struct {
	SessionID string // the SSO session (HashID of its cookie)
	FamilyID  string // the grant's token family (AuthCode.FamilyID)
	ClientID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Family is a token family (one grant) someone holds, as SubjectFamilies
// and ClientFamilies list it.
type Family struct {
	ID       string
	ClientID string
	Subject  string
	// ExpiresAt is the latest expiry of the family's live refresh tokens and
	// session grants: a revocation of the family must last at least until
	// then (and as long as the access tokens it may have issued).
	ExpiresAt time.Time
}

// The roles. A consumer takes the one it uses (the key manager Keys, the
// revocation watcher Revocations, ...); Store composes them all.
//
// Expiry: a record is live at instant t while t is before its ExpiresAt, so a
// record whose ExpiresAt equals now has expired. Every record of the run-time
// roles must carry a non-zero ExpiresAt; the Create methods and
// RotateSigningKeys refuse one without. Methods that take now judge expiry by
// it; methods that take none (SigningKeys, RotateSigningKeys, Revoked,
// RevokedSince and the directory writes' timestamps) use the backend's clock
// (the wall clock; each backend's Store has a Now field tests may set).
//
// Round trip: times come back in UTC at microsecond precision, zero times
// (AuthTime, RotatedAt, ...) come back zero, and empty and nil slices both
// come back nil.

// Keys holds each domain's token signing keys.
type Keys interface {
	// SigningKeys lists a domain's keys that have not yet expired, oldest first
	// (by CreatedAt, then KID).
	SigningKeys(ctx context.Context, domain string) ([]SigningKey, error)
	// RotateSigningKeys runs decide under an exclusive, cross-process lock for
	// the domain, with the domain's current (unexpired) keys read inside the
	// lock, and stores the keys decide returns. It returns the keys after the
	// change. decide must be idempotent: several instances may race to rotate,
	// and the loser sees the winner's keys.
	//
	// A key from decide with an empty Domain gets the domain; another domain
	// is an error. A KID the domain already has is ErrConflict. If decide or
	// storing fails, nothing is stored and the error is returned (decide's
	// error wrapped, for errors.Is). decide must not call the Store (the lock
	// is held) and should be quick: other writers wait while it runs.
	RotateSigningKeys(ctx context.Context, domain string, decide func(current []SigningKey) (add []SigningKey, err error)) ([]SigningKey, error)
}

// Secrets holds named secrets shared by every instance (cookie keys, the
// issuer's request key).
type Secrets interface {
	// Secret returns the value stored under name, storing value first if the
	// name is new (first writer wins; everyone gets the same value).
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// Grants holds what the token endpoint redeems — authorization codes and
// refresh-token families — and the grants made under each SSO session.
type Grants interface {
	// CreateAuthCode stores a new code.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// ConsumeAuthCode marks the code used and returns it. Exactly one caller
	// wins; every later call returns the code with ErrAlreadyUsed. An unknown
	// or expired code is ErrNotFound (expired wins over used).
	ConsumeAuthCode(ctx context.Context, id string, now time.Time) (AuthCode, error)

	// CreateRefreshToken stores a new refresh token.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken marks old as rotated (at now) and stores next, in one
	// transaction, and returns the old token with RotatedAt set. Exactly one
	// caller wins; every later call returns the old token (RotatedAt = the
	// winner's now, for a reuse grace window) with ErrAlreadyUsed and stores
	// nothing. Unknown, expired or revoked (family revoked) is ErrNotFound.
	// An empty next.FamilyID becomes the old token's family; a different one is
	// an error. A next.ID that exists is ErrConflict and leaves old unrotated.
	RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next RefreshToken) (RefreshToken, error)
	// RefreshToken returns a live (unexpired, family not revoked) token,
	// rotated or not (see RotatedAt); otherwise ErrNotFound.
	RefreshToken(ctx context.Context, id string, now time.Time) (RefreshToken, error)

	// AddSessionGrant records a grant made under an SSO session. Recording
	// the same (SessionID, FamilyID) again keeps one record, with the later
	// ExpiresAt. The grant is filed under the domain and subject of its
	// session as it is when the grant is recorded, so SubjectFamilies and
	// ClientFamilies find it after the session has ended.
	AddSessionGrant(ctx context.Context, g SessionGrant) error
	// SessionGrants lists the grants recorded under a session that are live
	// at now, oldest first (by CreatedAt, then FamilyID). A session without
	// any has an empty list, not an error.
	SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]SessionGrant, error)

	// SubjectFamilies lists the token families a subject holds in a domain
	// at now: those of its live refresh tokens and of the live grants made
	// under its SSO sessions, families already revoked left out, ordered by
	// FamilyID. Revoking them (Revoke) ends every token the subject holds.
	SubjectFamilies(ctx context.Context, domain, subject string, now time.Time) ([]Family, error)
	// ClientFamilies is SubjectFamilies for a client of a domain.
	ClientFamilies(ctx context.Context, domain, clientID string, now time.Time) ([]Family, error)
}

// Sessions holds the SSO sessions at the issuer.
type Sessions interface {
	// CreateSession, Session and DeleteSession manage SSO sessions. Session of
	// an unknown or expired ID is ErrNotFound; deleting an unknown session is
	// not an error.
	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, id string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteSubjectSessions deletes every SSO session of a subject in a
	// domain and returns their IDs (sorted), so the caller can revoke the
	// grants made under them (SessionGrants still lists those).
	DeleteSubjectSessions(ctx context.Context, domain, subject string) ([]string, error)
}

// Revocations holds revoked access-token IDs and token families, shared by
// every instance.
type Revocations interface {
	// Revoke records that id (an access-token jti or a family ID) is revoked
	// until expiresAt. Revoking a family also makes its refresh tokens unusable
	// (they are deleted). Revoking an id again keeps the later expiry.
	Revoke(ctx context.Context, id string, expiresAt time.Time) error
	// Revoked reports whether any of ids is revoked now (wall clock). No ids
	// is false.
	Revoked(ctx context.Context, ids ...string) (bool, error)
	// RevokedSince lists the live revocations recorded (by Revoke, at the
	// backend's clock) at or after since, oldest first, at most limit. Every
	// instance sharing the database polls it, so a revocation made on one
	// reaches the gates of all.
	RevokedSince(ctx context.Context, since time.Time, limit int) ([]Revocation, error)
}

// Throttle counts failed sign-ins, shared by every instance.
type Throttle interface {
	// AddLoginFailures counts one failed sign-in for each key (opaque; the
	// issuer hashes them) and returns each key's count in its window. A
	// window starts at a key's first failure and lasts window; a failure
	// after it starts a new one. Instances sharing the database share the
	// counts, so spreading guesses over instances gains nothing.
	AddLoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]int, error)
	// LoginFailures returns each key's count in its current window at now
	// (0 for an unknown key or a window that has passed).
	LoginFailures(ctx context.Context, keys []string, now time.Time) ([]int, error)
	// ClearLoginFailures forgets key's count.
	ClearLoginFailures(ctx context.Context, key string) error
}

// Store is everything Gatehouse persists: every role. Implementations are
// safe for concurrent use by several goroutines and several processes sharing
// one database.
type Store interface {
	Keys
	Secrets
	Grants
	Sessions
	Revocations
	Throttle
	Directory
	Credentials

	// DeleteExpired removes every record expired at now (ExpiresAt not after
	// now): codes, refresh tokens, revocations, sessions, session grants,
	// signing keys and login-failure windows. Live records are untouched, and
	// so are the directory and the API keys (an expired key stays listed).
	DeleteExpired(ctx context.Context, now time.Time) error

	// Close releases the backend's resources.
	Close() error
}

// InOrder returns counts[k] for each of keys, in keys' order (0 when absent):
// how backends answer LoginFailures from the rows they found.
func InOrder(keys []string, counts map[string]int) []int {
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = counts[k]
	}
	return out
}
