package bearer

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary tokens to a validator that has real keys, and checks
// that nothing panics, every failure is a well-formed *Error, and nothing that is not
// a valid compact JWS is ever accepted.
func FuzzValidate(f *testing.F) {
	k := keysForTest(f)
	now := newClock().Now()
	seeds := []string{
		signRaw(f, hdr("RS256", "rsa"), claimsAt(now), k.rsa),
		signRaw(f, hdr("ES256", "ec256"), claimsAt(now), k.ec256),
		signRaw(f, hdr("EdDSA", "ed"), claimsAt(now), k.ed),
		signRaw(f, map[string]any{"alg": "ES256", "typ": "at+jwt", "jwk": map[string]any{"kty": "EC"}}, claimsAt(now), k.ec256),
		"eyJhbGciOiJub25lIn0.e30.",
		"a.b.c.d.e",
		`{"payload":"e30"}`,
		"..",
		"",
		strings.Repeat(".", 100),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v, _ := testValidator(f, func(c *Config) { c.Now = func() time.Time { return now }; c.Scopes = []string{"orders:read"} })
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Validate(context.Background(), raw)
		if err != nil {
			be, ok := err.(*Error)
			if !ok || be.Code == "" || be.Description == "" {
				t.Fatalf("malformed error %#v", err)
			}
			if h := be.WWWAuthenticate("r"); strings.ContainsAny(h, "\r\n") {
				t.Fatalf("CR/LF in header %q", h)
			}
			return
		}
		if tok == nil || strings.Count(raw, ".") != 2 || tok.Issuer != testIssuer {
			t.Fatalf("accepted %q as %+v", raw, tok)
		}
	})
}

// FuzzParseJWKS checks the JWKS parser never panics and only returns checked keys.
func FuzzParseJWKS(f *testing.F) {
	k := keysForTest(f)
	f.Add(string(jwksJSON(f, jwk(k.rsa, "a", "RS256"), jwk(k.ec256, "b", ""), jwk(k.ed, "c", "EdDSA"))))
	f.Add(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)
	f.Add(`{"keys":null}`)
	f.Fuzz(func(t *testing.T, doc string) {
		keys, _, err := ParseJWKS([]byte(doc))
		if err != nil && len(keys) > 0 {
			t.Fatal("keys returned with an error")
		}
		for _, key := range keys {
			if err := checkPublicKey(key.Key, key.Algorithm); err != nil {
				t.Fatalf("unchecked key returned: %v", err)
			}
		}
	})
}
