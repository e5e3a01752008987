package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/gorilla/securecookie"
)

// SecretSize is the size in bytes of a secret made by GenerateSecret, and the
// recommended size for secrets passed to NewKeys.
const SecretSize = 64

// MinSecretSize is the smallest secret NewKeys accepts.
const MinSecretSize = 32

// Keys holds the cookie secrets, newest first. The first secret seals new
// cookies; every secret opens cookies, so rotating in a new secret (and keeping
// the previous ones for at least the longest cookie lifetime) logs nobody out.
//
// Each secret is one piece of key material; the HMAC key and the AES-256 key
// of each cookie kind ("purpose") are derived from it with HKDF-SHA256
// (RFC 5869, info "gatehouse cookie v1 <purpose> hmac|aes"). Derivation rather
// than a 32+32 split gives domain separation: a session cookie can never be
// opened as a pending-login cookie or vice versa, even under the same secret,
// and the store keeps a single opaque secret per generation.
//
// Keys bound to an audience (Bind) derive every key with the audience in the
// info as well ("gatehouse cookie v1 <purpose> aud=<quoted audience> hmac|aes"),
// so what one audience sealed never opens under another, whatever the cookie
// is called.
type Keys struct {
	secrets  [][]byte
	audience string
}

// NewKeys returns Keys over secrets, newest first. At least one secret is
// required and each must be at least MinSecretSize bytes (SecretSize random
// bytes recommended). The slices are copied.
func NewKeys(secrets [][]byte) (*Keys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session: at least one cookie secret is required")
	}
	k := &Keys{secrets: make([][]byte, len(secrets))}
	for i, s := range secrets {
		if len(s) < MinSecretSize {
			return nil, fmt.Errorf("session: cookie secret %d is %d bytes, need at least %d (generate %d random bytes)", i, len(s), MinSecretSize, SecretSize)
		}
		k.secrets[i] = append([]byte(nil), s...)
	}
	return k, nil
}

// Bind returns Keys over the same secrets whose derived keys are bound to
// audience (see Keys). An empty audience returns k itself.
func (k *Keys) Bind(audience string) *Keys {
	if audience == "" {
		return k
	}
	return &Keys{secrets: k.secrets, audience: audience}
}

// GenerateSecret returns SecretSize bytes from crypto/rand, suitable as a new
// cookie secret to put first in the list given to NewKeys.
func GenerateSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("session: generating cookie secret: %w", err)
	}
	return b, nil
}

// codecs derives one securecookie codec per secret (newest first) for purpose.
func (k *Keys) codecs(purpose string) ([]*securecookie.SecureCookie, error) {
	out := make([]*securecookie.SecureCookie, 0, len(k.secrets))
	info := "gatehouse cookie v1 " + purpose
	if k.audience != "" {
		info += " aud=" + strconv.Quote(k.audience)
	}
	for _, s := range k.secrets {
		hashKey, err := hkdf.Key(sha256.New, s, nil, info+" hmac", 32)
		if err != nil {
			return nil, fmt.Errorf("session: deriving cookie key: %w", err)
		}
		blockKey, err := hkdf.Key(sha256.New, s, nil, info+" aes", 32)
		if err != nil {
			return nil, fmt.Errorf("session: deriving cookie key: %w", err)
		}
		out = append(out, securecookie.New(hashKey, blockKey))
	}
	return out, nil
}

// MAC returns an HMAC-SHA256 of msg under a key derived (like the cookie
// keys, bound to the audience) from the newest secret for purpose: a token
// only the holders of the secrets can make, e.g. a CSRF token bound to a
// session id.
func (k *Keys) MAC(purpose string, msg []byte) ([]byte, error) {
	return k.mac(k.secrets[0], purpose, msg)
}

// VerifyMAC reports whether mac is MAC(purpose, msg) under any of the
// secrets, comparing in constant time.
func (k *Keys) VerifyMAC(purpose string, msg, mac []byte) bool {
	ok := false
	for _, s := range k.secrets {
		want, err := k.mac(s, purpose, msg)
		if err == nil && hmac.Equal(want, mac) {
			ok = true
		}
	}
	return ok
}

func (k *Keys) mac(secret []byte, purpose string, msg []byte) ([]byte, error) {
	info := "gatehouse mac v1 " + purpose
	if k.audience != "" {
		info += " aud=" + strconv.Quote(k.audience)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return nil, fmt.Errorf("session: deriving a MAC key: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil), nil
}
