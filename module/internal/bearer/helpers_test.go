package bearer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKeys are generated once per test binary (RSA generation is slow).
type testKeyring struct {
	rsa, rsa2 *rsa.PrivateKey
	ec256     *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var (
	keyringOnce sync.Once
	keyring     testKeyring
)

func keysForTest(t testing.TB) *testKeyring {
	t.Helper()
	keyringOnce.Do(func() {
		var err error
		if keyring.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyring.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyring.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keyring.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if _, keyring.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return &keyring
}

// jwk returns the public JWK for a private key.
func jwk(priv crypto.Signer, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
}

// testJWKs are the public keys of testValidator's key set.
func testJWKs(k *testKeyring) []jose.JSONWebKey {
	return []jose.JSONWebKey{
		jwk(k.rsa, "rsa", ""),
		jwk(k.ec256, "ec256", "ES256"),
		jwk(k.ec384, "ec384", ""),
		jwk(k.ed, "ed", "EdDSA"),
		jwk(k.rsa2, "rsa-ps", "PS256"),
	}
}

// jwksJSON renders public keys as a JWK Set document.
func jwksJSON(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw builds a compact JWS with an arbitrary header, signing it with key (a
// crypto.Signer for RS/PS/ES/EdDSA, []byte for HS*). It never consults go-jose, so it
// can produce every malformed or hostile token the tests need.
func signRaw(t testing.TB, header map[string]any, claims any, key any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var pb []byte
	switch c := claims.(type) {
	case []byte:
		pb = c
	default:
		if pb, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
	}
	input := b64url(hb) + "." + b64url(pb)
	alg, _ := header["alg"].(string)
	return input + "." + b64url(signBytes(t, alg, key, []byte(input)))
}

func signBytes(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	var h crypto.Hash
	var hf func() hash.Hash
	switch {
	case alg == "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	case len(alg) == 5 && alg[2:] == "256":
		h, hf = crypto.SHA256, sha256.New
	case len(alg) == 5 && alg[2:] == "384":
		h, hf = crypto.SHA384, sha512.New384
	case len(alg) == 5 && alg[2:] == "512":
		h, hf = crypto.SHA512, sha512.New
	default:
		return []byte("not-a-signature")
	}
	switch alg[:2] {
	case "HS":
		m := hmac.New(hf, key.([]byte))
		m.Write(input)
		return m.Sum(nil)
	}
	d := hf()
	d.Write(input)
	digest := d.Sum(nil)
	var sig []byte
	var err error
	switch alg[:2] {
	case "RS":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), h, digest)
	case "PS":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		k := key.(*ecdsa.PrivateKey)
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, digest); err == nil {
			size := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testIssuer   = "https://issuer.example"
	testAudience = "https://api.example"
)

// claimsAt returns standard valid access-token claims at time now.
func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"aud":       testAudience,
		"sub":       "alice",
		"client_id": "client-1",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "jti-1",
		"scope":     "orders:read orders:write",
	}
}

func hdr(alg, kid string) map[string]any {
	h := map[string]any{"alg": alg, "typ": "at+jwt"}
	if kid != "" {
		h["kid"] = kid
	}
	return h
}

func josePrivate(k *testKeyring) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.ec384, KeyID: "priv", Use: "sig"}
}

// NewStaticKeys builds a KeySet from keys given in code, as the tests need them.
// Private keys are reduced to their public half; every key must pass the same checks
// as a JWKS key (type, strength, alg/family consistency, use).
func NewStaticKeys(keys ...jose.JSONWebKey) (*StaticKeys, error) {
	out := make([]jose.JSONWebKey, 0, len(keys))
	for i, k := range keys {
		k.Key = publicOf(k.Key)
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("bearer: key %d (kid %q): use %q is not sig", i, k.KeyID, k.Use)
		}
		if err := checkPublicKey(k.Key, k.Algorithm); err != nil {
			return nil, fmt.Errorf("bearer: key %d (kid %q): %v", i, k.KeyID, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("bearer: no keys")
	}
	return &StaticKeys{keys: out}, nil
}
