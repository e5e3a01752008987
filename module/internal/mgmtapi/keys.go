package mgmtapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// API keys look like
//
//	gatehouse_<id>_<secret>
//
// where id is 16 and secret 52 characters of lower-case base32 (a-z, 2-7):
// 80 random bits name the key (its ID, safe to log and to show), 256
// random bits are the secret. The fixed prefix lets secret scanners and
// people recognise a leaked key; the ID finds its record without a scan.
// Only HashKey(key) is stored.
const (
	// KeyPrefix starts every API key.
	KeyPrefix = "gatehouse_"
	// DefaultKeyLifetime is how long a key lives unless its creator says
	// otherwise (Entrypage's six months).
	DefaultKeyLifetime = 180 * 24 * time.Hour

	keyIDBytes     = 10
	keySecretBytes = 32
	keyIDLen       = 16 // base32 of keyIDBytes
	keySecretLen   = 52 // base32 of keySecretBytes, unpadded
	keyLen         = len(KeyPrefix) + keyIDLen + 1 + keySecretLen
	// maxKeyNameLen bounds a key's name.
	maxKeyNameLen = 128
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// HashKey is the form a key is stored in: "sha256:" and the unpadded
// base64url SHA-256 of the whole key. A key carries 256 random bits, so a
// fast hash cannot be reversed by guessing.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseKeyID returns the ID embedded in a well-formed key.
func ParseKeyID(key string) (string, bool) {
	if len(key) != keyLen || !strings.HasPrefix(key, KeyPrefix) {
		return "", false
	}
	rest := key[len(KeyPrefix):]
	id, secret := rest[:keyIDLen], rest[keyIDLen:]
	if secret[0] != '_' || !isKeyText(id) || !isKeyText(secret[1:]) {
		return "", false
	}
	return id, true
}

// ValidKeyID reports whether id has the form of a key ID.
func ValidKeyID(id string) bool { return len(id) == keyIDLen && isKeyText(id) }

func isKeyText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// KeySpec describes a key to make.
type KeySpec struct {
	// Name is a label for people ("ci", "terraform"); optional.
	Name string
	// Domain binds the key to one domain (its API name); "" makes a global
	// key.
	Domain string
	// ReadOnly keys may only read.
	ReadOnly bool
	// ExpiresAt is when the key stops working; zero: never.
	ExpiresAt time.Time
	// CreatedBy is the ID of the key that made this one, or "cli".
	CreatedBy string
}

// CheckKeyName reports why name cannot name a key, or nil.
func CheckKeyName(name string) error {
	switch {
	case len(name) > maxKeyNameLen:
		return fmt.Errorf("the name is longer than %d bytes", maxKeyNameLen)
	case !utf8.ValidString(name):
		return errors.New("the name is not valid UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("the name contains control characters")
	}
	return nil
}

// NewKey makes a key to spec at now and returns it with the record to
// store (ID, Hash, CreatedAt set). The key is shown once and never kept.
func NewKey(spec KeySpec, now time.Time) (key string, rec store.APIKey, err error) {
	if err := CheckKeyName(spec.Name); err != nil {
		return "", rec, err
	}
	if spec.Domain != "" && !validDomainName(spec.Domain) && spec.Domain != DefaultDomain {
		return "", rec, fmt.Errorf("domain %q is not a domain name", spec.Domain)
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return "", rec, errors.New("the expiry is not in the future")
	}
	b := make([]byte, keyIDBytes+keySecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", rec, err
	}
	id := keyEncoding.EncodeToString(b[:keyIDBytes])
	key = KeyPrefix + id + "_" + keyEncoding.EncodeToString(b[keyIDBytes:])
	rec = store.APIKey{
		ID:        id,
		Name:      spec.Name,
		Hash:      HashKey(key),
		Domain:    spec.Domain,
		ReadOnly:  spec.ReadOnly,
		CreatedBy: spec.CreatedBy,
		CreatedAt: now.UTC().Truncate(time.Microsecond),
		ExpiresAt: spec.ExpiresAt.UTC().Truncate(time.Microsecond),
	}
	return key, rec, nil
}

// CreateKey makes a key to spec and stores it; see NewKey.
func CreateKey(ctx context.Context, st store.Credentials, spec KeySpec, now time.Time) (string, store.APIKey, error) {
	key, rec, err := NewKey(spec, now)
	if err != nil {
		return "", rec, err
	}
	if err := st.CreateAPIKey(ctx, rec); err != nil {
		return "", rec, err
	}
	return key, rec, nil
}

// dummyKeyHash is compared with a presented key when no record was found,
// so that an unknown key costs what a known one does.
var dummyKeyHash = HashKey(KeyPrefix + strings.Repeat("a", keyIDLen) + "_" + strings.Repeat("a", keySecretLen))

// dummyKeyID is looked up for a presented key that has no ID, so that
// every presented key costs one lookup.
const dummyKeyID = "aaaaaaaaaaaaaaaa"

// keyStatus is what checking a presented key found.
type keyStatus int

const (
	keyValid keyStatus = iota
	keyUnknown
	keyExpired
	keyRevoked
)

// checkKey looks a presented key up and compares it: always one lookup,
// one hash and one constant-time comparison, whatever the key. It returns
// the record when the key matches one.
func checkKey(ctx context.Context, st store.Credentials, presented string, now time.Time) (store.APIKey, keyStatus, error) {
	id, wellFormed := ParseKeyID(presented)
	if !wellFormed {
		id = dummyKeyID
	}
	rec, err := st.APIKey(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, keyUnknown, err
	}
	want := dummyKeyHash
	if found {
		want = rec.Hash
	}
	got := HashKey(presented)
	match := subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
	switch {
	case !match || !found || !wellFormed:
		return store.APIKey{}, keyUnknown, nil
	case !rec.RevokedAt.IsZero():
		return rec, keyRevoked, nil
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		return rec, keyExpired, nil
	}
	return rec, keyValid, nil
}
