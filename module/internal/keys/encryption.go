package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Encryption seals private signing keys at rest with AES-256-GCM, so a copy
// of the database (a backup, a replica, a leaked dump) does not hand out the
// keys that sign every token. The AES key is derived (HKDF-SHA256) from a
// key-encryption secret the operator keeps outside the database.
//
// Several secrets may be given: the first seals new keys, every one opens
// keys sealed with it. To change the secret, put the new one first and keep
// the old one until every signing key sealed with it has expired.
//
// A sealed key is "GHK1" || key id (4 bytes) || nonce (12) || ciphertext,
// authenticated together with the domain and kid it belongs to, so a sealed
// key cannot be moved to another row.
type Encryption struct {
	keys []kek
}

type kek struct {
	id   [4]byte
	aead cipher.AEAD
}

// sealedPrefix marks a sealed key; plaintext PKCS#8 starts with 0x30.
var sealedPrefix = []byte("GHK1")

// MinSecretLength is the shortest key-encryption secret accepted.
const MinSecretLength = 32

// NewEncryption derives the key-encryption keys from secrets (each at least
// MinSecretLength bytes, e.g. `openssl rand -base64 32`).
func NewEncryption(secrets []string) (*Encryption, error) {
	if len(secrets) == 0 {
		return nil, errors.New("key encryption needs at least one secret")
	}
	e := &Encryption{}
	seen := map[[4]byte]bool{}
	for i, s := range secrets {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("key-encryption secret %d is %d bytes; use at least %d random bytes, e.g. `openssl rand -base64 32`", i+1, len(s), MinSecretLength)
		}
		key, err := hkdf.Key(sha256.New, []byte(s), nil, "gatehouse signing-key encryption v1", 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		var k kek
		sum := sha256.Sum256(append([]byte("gatehouse signing-key encryption id v1\x00"), key...))
		copy(k.id[:], sum[:4])
		if seen[k.id] {
			return nil, fmt.Errorf("key-encryption secret %d repeats an earlier one", i+1)
		}
		seen[k.id] = true
		k.aead = aead
		e.keys = append(e.keys, k)
	}
	return e, nil
}

// Fingerprint names the secrets (their key ids, not the secrets) so callers
// can tell two configurations apart.
func (e *Encryption) Fingerprint() string {
	if e == nil {
		return "none"
	}
	ids := make([]string, len(e.keys))
	for i, k := range e.keys {
		ids[i] = hex.EncodeToString(k.id[:])
	}
	return strings.Join(ids, ",")
}

func aad(domain, kid string) []byte {
	return []byte("gatehouse signing key\x00" + domain + "\x00" + kid)
}

// seal encrypts a private key for the row (domain, kid).
func (e *Encryption) seal(domain, kid string, der []byte) ([]byte, error) {
	k := e.keys[0]
	out := make([]byte, 0, len(sealedPrefix)+4+k.aead.NonceSize()+len(der)+k.aead.Overhead())
	out = append(out, sealedPrefix...)
	out = append(out, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, der, aad(domain, kid)), nil
}

// isSealed reports whether a stored key is sealed.
func isSealed(blob []byte) bool { return bytes.HasPrefix(blob, sealedPrefix) }

// open decrypts a sealed key of the row (domain, kid).
func (e *Encryption) open(domain, kid string, blob []byte) ([]byte, error) {
	if e == nil {
		return nil, errors.New("the key is encrypted at rest and no key-encryption secret is configured; set key_encryption_key to the secret it was sealed with")
	}
	rest := blob[len(sealedPrefix):]
	if len(rest) < 4 {
		return nil, errors.New("the sealed key is truncated")
	}
	var id [4]byte
	copy(id[:], rest[:4])
	rest = rest[4:]
	for _, k := range e.keys {
		if k.id != id {
			continue
		}
		if len(rest) < k.aead.NonceSize()+k.aead.Overhead() {
			return nil, errors.New("the sealed key is truncated")
		}
		der, err := k.aead.Open(nil, rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():], aad(domain, kid))
		if err != nil {
			return nil, errors.New("the sealed key does not decrypt: it was altered, or moved from another key's row")
		}
		return der, nil
	}
	return nil, fmt.Errorf("the key was sealed with key-encryption secret %s, which is not configured; add it to key_encryption_key (after the current one)", hex.EncodeToString(id[:]))
}
