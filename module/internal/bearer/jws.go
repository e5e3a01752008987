package bearer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"sync"
)

var b64 = base64.RawURLEncoding.Strict()

// jwsHeader holds the protected header members the validator uses.
type jwsHeader struct {
	alg, kid, typ string
}

// compactJWS is a split, decoded compact JWS.
type compactJWS struct {
	hdr          jwsHeader
	h64          string // the encoded protected header (the header cache key)
	cachedHdr    bool   // hdr came from the header cache
	signingInput string // ASCII(BASE64URL(header) || '.' || BASE64URL(payload))
	payload      []byte
	sig          []byte
}

// parseCompactCached splits and decodes a compact JWS, enforcing the strict base64url
// alphabet (no padding, whitespace, line breaks or non-zero trailing bits) and the
// header policy that does not depend on configuration, with an optional cache of
// parsed headers (nil: none). The alphabet is enforced by the strict base64url
// decodes, except for CR and LF, which encoding/base64 skips even in strict mode and
// are therefore refused here.
func parseCompactCached(raw string, hc *headerCache) (*compactJWS, *Error) {
	if raw == "" {
		return nil, invalidToken("the token is malformed", "empty token")
	}
	if raw[0] == '{' {
		return nil, invalidToken("the token is malformed", "JWS JSON serialization is not accepted")
	}
	if strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return nil, invalidToken("the token is malformed", "character outside the base64url alphabet")
	}
	switch dots := strings.Count(raw, "."); dots {
	case 2:
	case 4:
		return nil, invalidToken("encrypted tokens are not accepted", "JWE (5 parts) is not accepted")
	default:
		return nil, invalidToken("the token is malformed", fmt.Sprintf("compact JWS needs 3 parts, got %d", dots+1))
	}
	d1 := strings.IndexByte(raw, '.')
	d2 := d1 + 1 + strings.IndexByte(raw[d1+1:], '.')
	h64, p64, s64 := raw[:d1], raw[d1+1:d2], raw[d2+1:]
	if h64 == "" {
		return nil, invalidToken("the token is malformed", "empty JWS header")
	}
	if s64 == "" {
		return nil, invalidToken("the token is not signed", "empty JWS signature")
	}
	// The cheap base64 checks of all segments come before any JSON parsing, so
	// junk is refused without allocation-heavy work.
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return nil, invalidToken("the token is malformed", "JWS payload is not valid base64url")
	}
	sig, err := b64.DecodeString(s64)
	if err != nil {
		return nil, invalidToken("the token is malformed", "JWS signature is not valid base64url")
	}
	hdr, ok := hc.get(h64)
	if !ok {
		hb, err := b64.DecodeString(h64)
		if err != nil {
			return nil, invalidToken("the token is malformed", "JWS header is not valid base64url")
		}
		var e *Error
		if hdr, e = parseHeader(hb); e != nil {
			return nil, e
		}
	}
	return &compactJWS{hdr: hdr, h64: h64, cachedHdr: ok, signingInput: raw[:d2], payload: payload, sig: sig}, nil
}

// headerCacheSize bounds the parsed-header cache: an issuer uses a handful of
// distinct protected headers (one per signing key and algorithm).
const headerCacheSize = 64

// headerCache maps a raw (base64url) protected header to its parsed form. Headers
// are only added after a signature made with them verified, so unauthenticated
// input cannot fill it; when full, an arbitrary entry is evicted. A nil
// *headerCache is a valid, always-empty cache.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]jwsHeader
}

func newHeaderCache() *headerCache {
	return &headerCache{m: make(map[string]jwsHeader, headerCacheSize)}
}

func (c *headerCache) get(h64 string) (jwsHeader, bool) {
	if c == nil {
		return jwsHeader{}, false
	}
	c.mu.RLock()
	h, ok := c.m[h64]
	c.mu.RUnlock()
	return h, ok
}

func (c *headerCache) put(h64 string, h jwsHeader) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if _, ok := c.m[h64]; !ok {
		if len(c.m) >= headerCacheSize {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		c.m[strings.Clone(h64)] = h // do not pin the whole token
	}
	c.mu.Unlock()
}

// parseHeader parses the protected header: a JSON object without duplicate members,
// string alg/kid/typ, and none of the members that would make the token choose its own
// key (jku, x5u, x5c, jwk), change how it is processed (crit, b64, zip) or mark a JWE
// (enc). Unknown members are ignored as RFC 7515 requires.
func parseHeader(b []byte) (jwsHeader, *Error) {
	var h jwsHeader
	bad := func(reason string) (jwsHeader, *Error) {
		return jwsHeader{}, invalidToken("the token header is not acceptable", reason)
	}
	malformed := func(reason string) (jwsHeader, *Error) {
		return jwsHeader{}, invalidToken("the token is malformed", reason)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return malformed("JWS header is not a JSON object")
	}
	seen := make(map[string]bool, 4)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return malformed("JWS header is not valid JSON")
		}
		name, _ := t.(string)
		if seen[name] {
			return bad("duplicate header member " + quoteShort(name))
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return malformed("JWS header is not valid JSON")
		}
		switch name {
		case "alg", "kid", "typ", "cty":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return bad("header member " + name + " is not a string")
			}
			switch name {
			case "alg":
				h.alg = s
			case "kid":
				h.kid = s
			case "typ":
				h.typ = s
			case "cty":
				if strings.EqualFold(s, "JWT") || strings.EqualFold(s, "application/jwt") {
					return bad("nested JWTs (cty JWT) are not accepted")
				}
			}
		case "jku", "x5u", "x5c", "jwk":
			return bad("header member " + name + " is not accepted (keys never come from the token)")
		case "crit":
			return bad("header member crit is not accepted (no extensions are understood)")
		case "b64", "zip", "enc":
			return bad("header member " + name + " is not accepted")
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return malformed("JWS header is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("trailing data after the JWS header")
	}
	if h.alg == "" {
		return bad("JWS header has no alg")
	}
	return h, nil
}

// verifySignature checks sig over signingInput with pub for alg. PS* use a salt as
// long as the hash (RFC 7518 section 3.5); ES* signatures are the fixed-length R||S
// encoding (RFC 7518 section 3.4).
func verifySignature(alg string, pub any, signingInput string, sig []byte) bool {
	in := []byte(signingInput)
	if alg == "EdDSA" {
		p, ok := pub.(ed25519.PublicKey)
		return ok && len(p) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(p, in, sig)
	}
	h := algHash(alg)
	if h == 0 {
		return false
	}
	digest := hashOf(h, in)
	switch alg[0] {
	case 'R':
		p, ok := pub.(*rsa.PublicKey)
		return ok && len(sig) == p.Size() && rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	case 'P':
		p, ok := pub.(*rsa.PublicKey)
		return ok && len(sig) == p.Size() &&
			rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
	case 'E':
		p, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		size := (p.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(p, digest, r, s)
	}
	return false
}

func hashOf(h crypto.Hash, in []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(in)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(in)
		return d[:]
	default:
		d := sha512.Sum512(in)
		return d[:]
	}
}

// quoteShort quotes an attacker-controlled value for a log reason, truncated.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
