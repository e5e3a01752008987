package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Limits on argon2id parameters read from a hash, so a hostile or mistyped
// hash cannot make a login allocate gigabytes or spin for minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 64
	maxArgonKeyLen    = 256
	maxArgonSaltLen   = 256
	// MaxPasswordLength bounds what a login form may submit, and a
	// password that may be set.
	MaxPasswordLength = 1024
	// MinPasswordLength is the shortest password that may be set (in
	// characters).
	MinPasswordLength = 8
)

// The argon2id parameters HashPassword uses: those of
// `caddy hash-password --algorithm argon2id` (46 MiB, one pass, one
// thread, a 16-byte salt, a 32-byte key).
const (
	argonMemoryKiB = 47104
	argonTime      = 1
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// CheckNewPassword reports why password cannot be set, or nil: it must have
// MinPasswordLength characters and at most MaxPasswordLength bytes.
func CheckNewPassword(password string) error {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return errors.New("the password is not valid UTF-8")
	case n < MinPasswordLength:
		return fmt.Errorf("the password has %d characters; use at least %d", n, MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("the password is longer than %d bytes", MaxPasswordLength)
	}
	return nil
}

// HashPassword hashes a password (checked with CheckNewPassword) with
// argon2id as `caddy hash-password --algorithm argon2id` does; VerifyPassword
// reads the result.
func HashPassword(password string) (string, error) {
	if err := CheckNewPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// ErrUnknownHashFormat is returned for a hash that is neither bcrypt nor
// argon2id.
var ErrUnknownHashFormat = errors.New("unknown password hash format; generate one with `caddy hash-password` (bcrypt or argon2id)")

// dummyBcrypt is spent when there is no real hash to compare with; it is
// Caddy's own anti-timing hash (cost 14).
const dummyBcrypt = "$2a$14$X3ulqf/iGxnf1k6oMZ.RZeJUoqI9PX2PM4rS5lkIKJXduLGXGPrt6"

// VerifyPassword reports whether password matches hash, a bcrypt
// ($2a$/$2b$/$2y$) or argon2id ($argon2id$v=19$m=..,t=..,p=..$salt$key) hash
// exactly as `caddy hash-password` prints it. The comparison is constant
// time. An error means the hash itself is unusable.
func VerifyPassword(hash, password string) (bool, error) {
	if len(password) > MaxPasswordLength {
		return false, nil
	}
	switch {
	case isBcrypt(hash):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if err == nil {
			return true, nil
		}
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) || errors.Is(err, bcrypt.ErrPasswordTooLong) {
			return false, nil
		}
		return false, fmt.Errorf("bcrypt hash: %w", err)
	case strings.HasPrefix(hash, "$argon2id$"):
		p, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(got, p.key) == 1, nil
	default:
		return false, ErrUnknownHashFormat
	}
}

// ValidatePasswordHash checks that hash is a usable bcrypt or argon2id hash,
// so configuration mistakes surface at load time rather than at sign-in.
func ValidatePasswordHash(hash string) error {
	switch {
	case isBcrypt(hash):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bcrypt hash is malformed (%v); generate it again with `caddy hash-password`", err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2id$"):
		if _, err := parseArgon2id(hash); err != nil {
			return fmt.Errorf("%v; generate it again with `caddy hash-password --algorithm argon2id`", err)
		}
		return nil
	default:
		return ErrUnknownHashFormat
	}
}

// SpendDummyHash costs about as much as one verification of hash (or of a
// default bcrypt hash when hash is empty or unusable) and always fails. Call
// it when there is no user so that response time does not reveal which
// accounts exist.
func SpendDummyHash(hash, password string) {
	if hash == "" || ValidatePasswordHash(hash) != nil {
		hash = dummyBcrypt
	}
	_, _ = VerifyPassword(hash, password)
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

type argonParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseArgon2id parses the PHC string Caddy writes:
// $argon2id$v=19$m=47104,t=1,p=1$<salt b64>$<key b64> (unpadded std base64).
func parseArgon2id(h string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, errors.New("argon2id hash is malformed: want $argon2id$v=19$m=..,t=..,p=..$salt$key")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("argon2id hash has version %q; only v=%d is supported", parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 || !strings.HasPrefix(params[0], "m=") || !strings.HasPrefix(params[1], "t=") || !strings.HasPrefix(params[2], "p=") {
		return p, errors.New("argon2id hash parameters are malformed: want m=<KiB>,t=<iterations>,p=<threads>")
	}
	m, err1 := strconv.ParseUint(params[0][2:], 10, 32)
	t, err2 := strconv.ParseUint(params[1][2:], 10, 32)
	th, err3 := strconv.ParseUint(params[2][2:], 10, 8)
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, fmt.Errorf("argon2id hash parameters are not numbers: %v", err)
	}
	if m < 8 || m > maxArgonMemoryKiB || t < 1 || t > maxArgonTime || th < 1 {
		return p, fmt.Errorf("argon2id hash parameters m=%d,t=%d,p=%d are out of range (m 8..%d KiB, t 1..%d, p >= 1)", m, t, th, maxArgonMemoryKiB, maxArgonTime)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxArgonSaltLen {
		return p, errors.New("argon2id hash salt is malformed (want 8..256 bytes, unpadded base64)")
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxArgonKeyLen {
		return p, errors.New("argon2id hash key is malformed (want 16..256 bytes, unpadded base64)")
	}
	return argonParams{memory: uint32(m), time: uint32(t), threads: uint8(th), salt: salt, key: key}, nil
}
