package bearer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fuzzScope is the scope the fuzzed validators require.
const fuzzScope = "orders:read"

// fuzzValidator is the validator both validation fuzzers run: every test key, a
// fixed clock, the default leeway and types, and one required scope.
func fuzzValidator(t testing.TB, now time.Time) *Validator {
	v, _ := testValidator(t, func(c *Config) { c.Now = func() time.Time { return now }; c.Scopes = []string{fuzzScope} })
	return v
}

// validSeeds are valid tokens signed with RS256, ES256, ES384, EdDSA and PS256.
func validSeeds(t testing.TB, now time.Time) []string {
	k := keysForTest(t)
	return []string{
		signRaw(t, hdr("RS256", "rsa"), claimsAt(now), k.rsa),
		signRaw(t, hdr("ES256", "ec256"), claimsAt(now), k.ec256),
		signRaw(t, hdr("ES384", "ec384"), claimsAt(now), k.ec384),
		signRaw(t, hdr("EdDSA", "ed"), claimsAt(now), k.ed),
		signRaw(t, hdr("PS256", "rsa-ps"), claimsAt(now), k.rsa2),
	}
}

// checkAccepted is the acceptance oracle of the validation fuzzers: a token that
// fuzzValidator accepted must be one that independent code accepts too. go-jose
// (ParseSignedCompact + Verify) must verify it with a key of the set that the token's
// kid names and yield the same payload; encoding/json must read that payload as the
// same claims; and the header and claims must meet the configuration (allowed alg,
// typ at+jwt, no member that lets the token pick its key, iss, aud, exp, nbf, iat
// within the leeway, the required scope).
func checkAccepted(t *testing.T, raw string, tok *Token, now time.Time) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("accepted %q: "+format, append([]any{raw}, args...)...)
	}
	if tok == nil {
		fail("nil token")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || strings.ContainsAny(raw, "\r\n") {
		fail("not a compact JWS")
	}
	var seg [3][]byte
	for i, p := range parts {
		var err error
		if seg[i], err = base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
			fail("segment %d is not strict base64url: %v", i, err)
		}
	}

	var header map[string]any
	if err := json.Unmarshal(seg[0], &header); err != nil {
		fail("header: %v", err)
	}
	alg, _ := header["alg"].(string)
	kid, _ := header["kid"].(string)
	typ, _ := header["typ"].(string)
	if !slices.Contains(AsymmetricAlgorithms(), alg) || alg != tok.Algorithm || kid != tok.KID || typ != tok.Type {
		fail("header %v, token says alg %q kid %q typ %q", header, tok.Algorithm, tok.KID, tok.Type)
	}
	if n := strings.TrimPrefix(strings.ToLower(typ), "application/"); n != "at+jwt" {
		fail("typ %q", typ)
	}
	for _, m := range []string{"jku", "x5u", "x5c", "jwk", "crit", "b64", "zip", "enc"} {
		if _, ok := header[m]; ok {
			fail("header member %s", m)
		}
	}

	algs := make([]jose.SignatureAlgorithm, 0, len(asymmetric))
	for _, a := range asymmetric {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		fail("go-jose cannot parse it: %v", err)
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Protected.Algorithm != alg || jws.Signatures[0].Protected.KeyID != kid {
		fail("go-jose reads another header: %+v", jws.Signatures)
	}
	verified := 0
	for _, key := range testJWKs(keysForTest(t)) {
		if kid != "" && key.KeyID != "" && key.KeyID != kid {
			continue
		}
		payload, err := jws.Verify(key.Key)
		if err != nil {
			continue
		}
		if !bytes.Equal(payload, seg[1]) {
			fail("go-jose verifies another payload: %q", payload)
		}
		verified++
	}
	if verified == 0 {
		fail("go-jose verifies it with no key the kid %q names", kid)
	}

	var claims map[string]any
	if err := json.Unmarshal(seg[1], &claims); err != nil {
		fail("encoding/json: %v", err)
	}
	if !reflect.DeepEqual(claims, tok.Claims) {
		fail("claims %v, encoding/json reads %v", tok.Claims, claims)
	}
	if claims["iss"] != testIssuer || tok.Issuer != testIssuer {
		fail("iss %v", claims["iss"])
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != testAudience {
			fail("aud %q", aud)
		}
	case []any:
		if !slices.Contains(aud, any(testAudience)) {
			fail("aud %v", aud)
		}
	default:
		fail("aud %v", aud)
	}
	exp, ok := claims["exp"].(float64)
	if !ok || !now.Before(time.Unix(int64(exp), 0).Add(DefaultLeeway+time.Second)) {
		fail("exp %v at %v", claims["exp"], now)
	}
	for _, c := range []string{"nbf", "iat"} {
		if x, present := claims[c]; present {
			f, ok := x.(float64)
			if !ok || time.Unix(int64(f), 0).After(now.Add(DefaultLeeway)) {
				fail("%s %v at %v", c, x, now)
			}
		}
	}
	var scopes []string
	sc, present := claims["scope"]
	if !present {
		sc = claims["scp"]
	}
	switch x := sc.(type) {
	case string:
		scopes = strings.Fields(x)
	case []any:
		for _, e := range x {
			s, _ := e.(string)
			scopes = append(scopes, s)
		}
	}
	if !slices.Contains(scopes, fuzzScope) {
		fail("scope %v lacks %s", sc, fuzzScope)
	}
}

// FuzzValidate feeds arbitrary tokens to a validator that has real keys, and checks
// that nothing panics, every failure is a well-formed *Error, and whatever is
// accepted passes checkAccepted.
func FuzzValidate(f *testing.F) {
	k := keysForTest(f)
	now := newClock().Now()
	seeds := append(validSeeds(f, now),
		signRaw(f, map[string]any{"alg": "ES256", "typ": "at+jwt", "jwk": map[string]any{"kty": "EC"}}, claimsAt(now), k.ec256),
		"eyJhbGciOiJub25lIn0.e30.",
		"a.b.c.d.e",
		`{"payload":"e30"}`,
		"..",
		"",
		strings.Repeat(".", 100),
	)
	for _, s := range seeds {
		f.Add(s)
	}
	v := fuzzValidator(f, now)
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
		checkAccepted(t, raw, tok, now)
	})
}

// fuzzSigners are the (key, algorithm) pairs FuzzValidateAgainstGoJOSE signs with:
// each test key with every algorithm of its family, whatever the header claims.
var fuzzSigners = []struct {
	kid, alg string
}{
	{"rsa", "RS256"}, {"ec256", "ES256"}, {"ec384", "ES384"}, {"ed", "EdDSA"}, {"rsa-ps", "PS256"},
	{"rsa", "RS384"}, {"rsa", "RS512"}, {"rsa", "PS256"}, {"rsa", "PS384"}, {"rsa", "PS512"}, {"rsa-ps", "RS256"},
}

func fuzzSigningKey(k *testKeyring, kid string) any {
	switch kid {
	case "rsa":
		return k.rsa
	case "ec256":
		return k.ec256
	case "ec384":
		return k.ec384
	case "ed":
		return k.ed
	}
	return k.rsa2
}

// FuzzValidateAgainstGoJOSE is a differential fuzz of the validator against go-jose.
// FuzzValidate's raw tokens almost never carry a valid signature, so it rarely gets
// past the signature check; here the fuzzer chooses the protected header, the payload
// and a signer, the token is really signed, and then edits (triples of a big-endian
// position and a byte) may overwrite characters of the compact token. Whatever the
// validator accepts, go-jose must verify with the same key, yielding the same payload,
// and checkAccepted must hold.
func FuzzValidateAgainstGoJOSE(f *testing.F) {
	k := keysForTest(f)
	now := newClock().Now()
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	claims := mustJSON(claimsAt(now))
	for i, s := range fuzzSigners[:5] {
		f.Add(mustJSON(hdr(s.alg, s.kid)), claims, uint8(i), []byte(nil))
	}
	f.Add(mustJSON(hdr("RS256", "")), claims, uint8(0), []byte(nil))
	f.Add(mustJSON(hdr("PS256", "rsa")), claims, uint8(0), []byte(nil))                             // alg differs from the signature
	f.Add(mustJSON(hdr("ES256", "ec256")), claims, uint8(1), []byte{0, 5, 'A'})                     // header edited after signing
	f.Add(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","alg":"RS256"}`, claims, uint8(3), []byte(nil)) // duplicate member
	f.Add(`{"alg":"ES384","kid":"ec384","typ":"application/AT+JWT","x5t":"!"}`, claims, uint8(2), []byte(nil))
	f.Add(mustJSON(hdr("EdDSA", "ed")), `{"iss":"https://issuer.example","aud":["x","https://api.example"],"exp":1800000100,"scp":["orders:read"]}`, uint8(3), []byte(nil))
	f.Add(mustJSON(hdr("EdDSA", "ed")), `{"iss":"https://issuer.example","aud":"https://api.example","exp":1800000100,"scope":"orders:read","scope":"x"}`, uint8(3), []byte(nil))
	v := fuzzValidator(f, now)
	f.Fuzz(func(t *testing.T, header, payload string, signer uint8, edits []byte) {
		s := fuzzSigners[int(signer)%len(fuzzSigners)]
		input := b64url([]byte(header)) + "." + b64url([]byte(payload))
		raw := []byte(input + "." + b64url(signBytes(t, s.alg, fuzzSigningKey(k, s.kid), []byte(input))))
		for i := 0; i+2 < len(edits) && i < 3*8; i += 3 {
			raw[(int(edits[i])<<8|int(edits[i+1]))%len(raw)] = edits[i+2]
		}
		tok, err := v.Validate(context.Background(), string(raw))
		if err != nil {
			return
		}
		checkAccepted(t, string(raw), tok, now)
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
