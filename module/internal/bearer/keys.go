package bearer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySet returns the candidate public keys for a key id: the keys whose kid equals kid
// (plus keys that carry no kid), or every key when kid is empty. It returns (nil, nil)
// when no key matches and an error only when keys are unavailable.
type KeySet interface {
	Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// Generational is implemented by key sets whose content can change. Generation
// increases whenever a key that was served before is removed or replaced; the
// Validator's token cache drops entries verified under an older generation.
type Generational interface {
	Generation() uint64
}

// Limits on keys accepted for verification.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// maxKeyFileBytes bounds key files and key documents read from disk.
const maxKeyFileBytes = 1 << 20

// asymmetric is the set of JWS algorithms the package can verify, in preference order.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// AsymmetricAlgorithms returns every algorithm the validator supports (RS*, PS*, ES*,
// EdDSA). Because a key only ever verifies algorithms of its own family (and its own
// alg, when the key names one), this list is a safe default allow-list: it means "the
// asymmetric algorithms of the issuer's keys". HS* and none are never supported.
func AsymmetricAlgorithms() []string { return slices.Clone(asymmetric) }

func supportedAlg(alg string) bool { return slices.Contains(asymmetric, alg) }

// algHash returns the hash for an RS/PS/ES algorithm.
func algHash(alg string) crypto.Hash {
	switch alg[2:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return 0
}

// publicKeyFor returns the public key usable for alg from k.Key, or a reason why the
// key cannot verify alg. Private keys are reduced to their public half.
func publicKeyFor(alg string, k *jose.JSONWebKey) (any, string) {
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Sprintf("key use %q is not sig", k.Use)
	}
	if k.Algorithm != "" && k.Algorithm != alg {
		return nil, fmt.Sprintf("key alg %q does not match token alg %q", k.Algorithm, alg)
	}
	pub := publicOf(k.Key)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' && alg[0] != 'P' {
			return nil, "RSA key cannot verify " + alg
		}
		if n := p.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return nil, fmt.Sprintf("RSA key size %d outside [%d, %d]", n, MinRSABits, MaxRSABits)
		}
		return p, ""
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || p.Curve != want {
			return nil, "EC key cannot verify " + alg
		}
		return p, ""
	case ed25519.PublicKey:
		if alg != "EdDSA" || len(p) != ed25519.PublicKeySize {
			return nil, "Ed25519 key cannot verify " + alg
		}
		return p, ""
	case nil:
		return nil, "no key material"
	default:
		return nil, fmt.Sprintf("key type %T cannot verify signatures", k.Key)
	}
}

func publicOf(k any) any {
	switch p := k.(type) {
	case *rsa.PrivateKey:
		return &p.PublicKey
	case *ecdsa.PrivateKey:
		return &p.PublicKey
	case ed25519.PrivateKey:
		return p.Public()
	case rsa.PublicKey:
		return &p
	case ecdsa.PublicKey:
		return &p
	}
	return k
}

// checkPublicKey validates a verification key at load time: supported type, strength,
// valid point, no ROCA fingerprint, and an alg (when given) that is a supported
// asymmetric algorithm of the key's family.
func checkPublicKey(key any, alg string) error {
	switch p := key.(type) {
	case *rsa.PublicKey:
		if p.N == nil {
			return errors.New("RSA key without modulus")
		}
		if n := p.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("RSA key size %d bits is outside [%d, %d]", n, MinRSABits, MaxRSABits)
		}
		if p.E < 3 || p.E%2 == 0 {
			return fmt.Errorf("RSA public exponent %d is invalid", p.E)
		}
		if rocaVulnerable(p.N) {
			return errors.New("RSA key has the ROCA fingerprint (CVE-2017-15361)")
		}
		if alg != "" && !(supportedAlg(alg) && (alg[0] == 'R' || alg[0] == 'P')) {
			return fmt.Errorf("alg %q is not an RSA signature algorithm", alg)
		}
	case *ecdsa.PublicKey:
		var want string
		switch p.Curve {
		case elliptic.P256():
			want = "ES256"
		case elliptic.P384():
			want = "ES384"
		case elliptic.P521():
			want = "ES512"
		default:
			return errors.New("unsupported elliptic curve")
		}
		if _, err := p.ECDH(); err != nil {
			return errors.New("EC point is not on the curve")
		}
		if alg != "" && alg != want {
			return fmt.Errorf("alg %q does not match curve %s", alg, p.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return errors.New("invalid Ed25519 key length")
		}
		if alg != "" && alg != "EdDSA" {
			return fmt.Errorf("alg %q is not EdDSA", alg)
		}
	case []byte:
		return errors.New("symmetric keys are never accepted")
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// rocaPrimes and rocaGroups implement the ROCA fingerprint test (Nemec et al., CCS
// 2017): a vulnerable modulus N satisfies, for each small prime p, that N mod p lies in
// the multiplicative subgroup generated by 65537 modulo p.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

var rocaGroups = func() []map[int64]bool {
	gs := make([]map[int64]bool, len(rocaPrimes))
	for i, p := range rocaPrimes {
		g := map[int64]bool{}
		x := int64(1)
		for !g[x] {
			g[x] = true
			x = x * (65537 % p) % p
		}
		gs[i] = g
	}
	return gs
}()

func rocaVulnerable(n *big.Int) bool {
	var m, pb big.Int
	for i, p := range rocaPrimes {
		m.Mod(n, pb.SetInt64(p))
		if !rocaGroups[i][m.Int64()] {
			return false
		}
	}
	return true
}

// ParseJWKS parses a JSON Web Key Set and returns the keys usable to verify
// signatures. Keys are skipped (with a reason in skipped, naming only the kid) when
// they are symmetric or carry private material, are meant for encryption (use/key_ops),
// fail checkPublicKey, or share a kid with another key (ambiguous: all of them are
// dropped). err is set only when data is not a JWK Set.
func ParseJWKS(data []byte) (keys []jose.JSONWebKey, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("bearer: JWK Set is not valid JSON: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`bearer: JWK Set has no "keys" array`)
	}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		keys = append(keys, k)
	}
	// Duplicate kids make key selection ambiguous: drop every key sharing a kid.
	count := map[string]int{}
	for _, k := range keys {
		if k.KeyID != "" {
			count[k.KeyID]++
		}
	}
	out := keys[:0]
	for _, k := range keys {
		if count[k.KeyID] > 1 {
			skipped = append(skipped, fmt.Sprintf("key %q: duplicate kid", k.KeyID))
			continue
		}
		out = append(out, k)
	}
	return out, skipped, nil
}

// parseJWK parses and checks one public verification key.
func parseJWK(raw []byte) (jose.JSONWebKey, error) {
	var meta struct {
		Kty    string   `json:"kty"`
		Kid    string   `json:"kid"`
		Use    string   `json:"use"`
		Alg    string   `json:"alg"`
		KeyOps []string `json:"key_ops"`
		D      any      `json:"d"`
		K      any      `json:"k"`
		P      any      `json:"p"`
		Q      any      `json:"q"`
		Priv   any      `json:"priv"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("not a JSON object: %v", err)
	}
	name := fmt.Sprintf("kid %q", meta.Kid)
	if len(name) > 80 {
		name = name[:80] + `…"`
	}
	switch {
	case meta.Kty == "oct" || meta.K != nil:
		return jose.JSONWebKey{}, fmt.Errorf("%s: symmetric keys are never accepted", name)
	case meta.D != nil || meta.P != nil || meta.Q != nil || meta.Priv != nil:
		return jose.JSONWebKey{}, fmt.Errorf("%s: contains private key material", name)
	case meta.Use != "" && meta.Use != "sig":
		return jose.JSONWebKey{}, fmt.Errorf("%s: use %q is not sig", name, meta.Use)
	case meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify"):
		return jose.JSONWebKey{}, fmt.Errorf("%s: key_ops does not include verify", name)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%s: %v", name, err)
	}
	if err := checkPublicKey(k.Key, k.Algorithm); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%s: %v", name, err)
	}
	// Certificates and URLs inside a key are never used; drop them.
	k.Certificates, k.CertificatesURL = nil, nil
	return k, nil
}

// StaticKeys is an immutable KeySet.
type StaticKeys struct {
	keys    []jose.JSONWebKey
	skipped []string
}

// ParseStaticKeys builds a KeySet from a JWK Set, a single JWK, or PEM data ("PUBLIC
// KEY", "RSA PUBLIC KEY" or "CERTIFICATE" blocks; PEM keys have no kid and match any
// token kid). It fails when no usable key remains; keys skipped along the way are
// reported by Skipped.
func ParseStaticKeys(data []byte) (*StaticKeys, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var probe struct {
			Keys json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return nil, fmt.Errorf("bearer: key document is not valid JSON: %w", err)
		}
		doc := trimmed
		if probe.Keys == nil { // a single JWK
			doc = append(append([]byte(`{"keys":[`), trimmed...), "]}"...)
		}
		keys, skipped, err := ParseJWKS(doc)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("bearer: no usable verification key (%s)", strings.Join(skipped, "; "))
		}
		return &StaticKeys{keys: keys, skipped: skipped}, nil
	}
	var keys []jose.JSONWebKey
	rest := trimmed
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("bearer: unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("bearer: PEM block %q: %v", block.Type, err)
		}
		if err := checkPublicKey(pub, ""); err != nil {
			return nil, fmt.Errorf("bearer: PEM block %q: %v", block.Type, err)
		}
		keys = append(keys, jose.JSONWebKey{Key: pub, Use: "sig"})
	}
	if len(keys) == 0 {
		return nil, errors.New("bearer: no JWK Set, JWK or PEM public key found")
	}
	return &StaticKeys{keys: keys}, nil
}

// LoadPublicKeyFile reads a JWK Set, JWK or PEM public key file (at most 1 MiB) with
// ParseStaticKeys.
func LoadPublicKeyFile(path string) (*StaticKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bearer: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bearer: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("bearer: %s is larger than %d bytes", path, maxKeyFileBytes)
	}
	ks, err := ParseStaticKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return ks, nil
}

// Keys implements KeySet.
func (s *StaticKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	return selectKeys(s.keys, kid), nil
}

// All returns a copy of every key in the set.
func (s *StaticKeys) All() []jose.JSONWebKey { return slices.Clone(s.keys) }

// Skipped lists the keys that were ignored while parsing, with reasons.
func (s *StaticKeys) Skipped() []string { return slices.Clone(s.skipped) }

// selectKeys returns the keys matching kid (keys without a kid match every kid); with
// an empty kid, all keys. With an empty kid the result aliases keys; callers must not
// modify it.
func selectKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for i := range keys {
		if keys[i].KeyID == kid || keys[i].KeyID == "" {
			out = append(out, keys[i])
		}
	}
	return out
}
