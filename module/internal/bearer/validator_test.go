package bearer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testValidator returns a validator over every test key and a clock.
func testValidator(t testing.TB, mod func(*Config)) (*Validator, *fakeClock) {
	t.Helper()
	ks, err := NewStaticKeys(testJWKs(keysForTest(t))...)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	cfg := Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: AsymmetricAlgorithms(), Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewValidator(cfg, ks)
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}

func TestValidate(t *testing.T) {
	k := keysForTest(t)
	now := newClock().Now()
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	with := func(mod func(c map[string]any)) map[string]any {
		c := claimsAt(now)
		mod(c)
		return c
	}
	withH := func(alg, kid string, mod func(h map[string]any)) map[string]any {
		h := hdr(alg, kid)
		mod(h)
		return h
	}
	valid := signRaw(t, hdr("RS256", "rsa"), claimsAt(now), k.rsa)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		cfg   func(*Config)
		code  string // "" means accepted
		desc  string // substring of Description
	}{
		{name: "valid RS256 token is accepted", token: valid},
		{name: "valid RS384 token is accepted", token: signRaw(t, hdr("RS384", "rsa"), claimsAt(now), k.rsa)},
		{name: "valid PS256 token is accepted", token: signRaw(t, hdr("PS256", "rsa-ps"), claimsAt(now), k.rsa2)},
		{name: "valid PS512 token with an RSA key without alg is accepted", token: signRaw(t, hdr("PS512", "rsa"), claimsAt(now), k.rsa)},
		{name: "valid ES256 token is accepted", token: signRaw(t, hdr("ES256", "ec256"), claimsAt(now), k.ec256)},
		{name: "valid ES384 token is accepted", token: signRaw(t, hdr("ES384", "ec384"), claimsAt(now), k.ec384)},
		{name: "valid EdDSA token is accepted", token: signRaw(t, hdr("EdDSA", "ed"), claimsAt(now), k.ed)},
		{name: "token without kid is verified against all keys", token: signRaw(t, hdr("ES256", ""), claimsAt(now), k.ec256)},
		{name: "typ application/at+jwt is accepted", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "application/at+jwt" }), claimsAt(now), k.rsa)},
		{name: "typ is compared case-insensitively", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "AT+JWT" }), claimsAt(now), k.rsa)},
		{name: "unknown non-critical header members are ignored", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["x5t"] = "abc"; h["foo"] = 1 }), claimsAt(now), k.rsa)},

		{name: "alg none without signature is rejected", token: b64url([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".", code: CodeInvalidToken, desc: "not signed"},
		{name: "alg none with a signature is rejected", token: signRaw(t, hdr("none", "rsa"), claimsAt(now), nil), code: CodeInvalidToken, desc: "algorithm is not accepted"},
		{name: "alg NONE is rejected", token: signRaw(t, hdr("NONE", "rsa"), claimsAt(now), nil), code: CodeInvalidToken, desc: "algorithm is not accepted"},
		{name: "HS256 keyed with the RSA public key PEM is rejected", token: signRaw(t, hdr("HS256", "rsa"), claimsAt(now), pubPEM), code: CodeInvalidToken, desc: "algorithm is not accepted"},
		{name: "HS256 keyed with the RSA public key DER is rejected", token: signRaw(t, hdr("HS256", "rsa"), claimsAt(now), pubDER), code: CodeInvalidToken, desc: "algorithm is not accepted"},
		{name: "alg outside a narrowed allow-list is rejected", token: signRaw(t, hdr("ES256", "ec256"), claimsAt(now), k.ec256), cfg: func(c *Config) { c.Algorithms = []string{"RS256"} }, code: CodeInvalidToken, desc: "algorithm is not accepted"},
		{name: "jku header is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["jku"] = "https://evil.example/jwks" }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "x5u header is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["x5u"] = "https://evil.example/cert" }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "x5c header is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["x5c"] = []string{"MIIB"} }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "embedded jwk header is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) {
			h["jwk"] = map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}
		}), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "unknown crit is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "b64 header is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["b64"] = false }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "nested JWT is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["cty"] = "JWT" }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "non-string kid is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["kid"] = 7 }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "header is not acceptable"},
		{name: "duplicate alg header member is rejected", token: func() string {
			hb := `{"alg":"RS256","kid":"rsa","typ":"at+jwt","alg":"RS256"}`
			return b64url([]byte(hb)) + "." + parts[1] + "." + parts[2]
		}(), code: CodeInvalidToken, desc: "header is not acceptable"},

		{name: "wrong typ is rejected", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "JWT" }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "type is not accepted"},
		{name: "missing typ is rejected by default", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { delete(h, "typ") }), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "type is not accepted"},
		{name: "ID token is rejected by default", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "JWT" }), with(func(c map[string]any) {
			c["nonce"] = "n"
			c["aud"] = testAudience
		}), k.rsa), code: CodeInvalidToken, desc: "type is not accepted"},
		{name: "typ JWT is accepted when configured", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "JWT" }), claimsAt(now), k.rsa), cfg: func(c *Config) { c.Types = []string{"JWT"} }},
		{name: "missing typ is accepted with typ JWT", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { delete(h, "typ") }), claimsAt(now), k.rsa), cfg: func(c *Config) { c.Types = []string{"JWT"} }},
		{name: "ID token is rejected even with typ JWT", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { h["typ"] = "JWT" }), with(func(c map[string]any) { c["nonce"] = "n" }), k.rsa), cfg: func(c *Config) { c.Types = []string{"JWT"} }, code: CodeInvalidToken, desc: "ID tokens are not accepted"},
		{name: "ID token with at_hash is rejected with typ JWT", token: signRaw(t, withH("RS256", "rsa", func(h map[string]any) { delete(h, "typ") }), with(func(c map[string]any) { c["at_hash"] = "x" }), k.rsa), cfg: func(c *Config) { c.Types = []string{"JWT"} }, code: CodeInvalidToken, desc: "ID tokens are not accepted"},

		{name: "missing exp is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { delete(c, "exp") }), k.rsa), code: CodeInvalidToken, desc: "no expiry"},
		{name: "non-numeric exp is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["exp"] = "tomorrow" }), k.rsa), code: CodeInvalidToken, desc: "expiry is malformed"},
		{name: "expired token is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() }), k.rsa), code: CodeInvalidToken, desc: "expired"},
		{name: "token expired within the leeway is accepted", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["exp"] = now.Add(-29 * time.Second).Unix() }), k.rsa)},
		{name: "token expired with zero leeway is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["exp"] = now.Add(-1 * time.Second).Unix() }), k.rsa), cfg: func(c *Config) { c.Leeway = -1 }, code: CodeInvalidToken, desc: "expired"},
		{name: "nbf in the future is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() }), k.rsa), code: CodeInvalidToken, desc: "not valid yet"},
		{name: "nbf within the leeway is accepted", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() }), k.rsa)},
		{name: "iat in the future is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }), k.rsa), code: CodeInvalidToken, desc: "issued in the future"},
		{name: "iss mismatch is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["iss"] = "https://evil.example" }), k.rsa), code: CodeInvalidToken, desc: "issuer is not accepted"},
		{name: "iss with a trailing slash is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["iss"] = testIssuer + "/" }), k.rsa), code: CodeInvalidToken, desc: "issuer is not accepted"},
		{name: "missing iss is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { delete(c, "iss") }), k.rsa), code: CodeInvalidToken, desc: "issuer is not accepted"},
		{name: "aud mismatch is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["aud"] = "https://other.example" }), k.rsa), code: CodeInvalidToken, desc: "not meant for this resource"},
		{name: "missing aud is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { delete(c, "aud") }), k.rsa), code: CodeInvalidToken, desc: "not meant for this resource"},
		{name: "aud array containing the audience is accepted", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["aud"] = []string{"x", testAudience} }), k.rsa)},
		{name: "aud array with a non-string is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["aud"] = []any{testAudience, 1} }), k.rsa), code: CodeInvalidToken, desc: "audience is malformed"},
		{name: "second configured audience matches", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["aud"] = "https://b.example" }), k.rsa), cfg: func(c *Config) { c.Audiences = []string{testAudience, "https://b.example"} }},
		{name: "non-string sub is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["sub"] = 5 }), k.rsa), code: CodeInvalidToken, desc: "claims are malformed"},
		{name: "payload that is not an object is rejected", token: signRaw(t, hdr("RS256", "rsa"), []byte(`["iss"]`), k.rsa), code: CodeInvalidToken, desc: "payload is malformed"},

		{name: "all required scopes present is accepted", token: valid, cfg: func(c *Config) { c.Scopes = []string{"orders:read", "orders:write"} }},
		{name: "missing one of all-of scopes is insufficient_scope", token: valid, cfg: func(c *Config) { c.Scopes = []string{"orders:read", "admin"} }, code: CodeInsufficientScope, desc: "lacks the required scope"},
		{name: "any-of scopes with one present is accepted", token: valid, cfg: func(c *Config) { c.Scopes = []string{"admin", "orders:read"}; c.ScopesAny = true }},
		{name: "any-of scopes with none present is insufficient_scope", token: valid, cfg: func(c *Config) { c.Scopes = []string{"admin", "root"}; c.ScopesAny = true }, code: CodeInsufficientScope, desc: "lacks the required scope"},
		{name: "scp array grants scopes", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{"admin"} }), k.rsa), cfg: func(c *Config) { c.Scopes = []string{"admin"} }},
		{name: "malformed scope claim is rejected", token: signRaw(t, hdr("RS256", "rsa"), with(func(c map[string]any) { c["scope"] = 42 }), k.rsa), code: CodeInvalidToken, desc: "scope is malformed"},

		{name: "oversize token is rejected", token: strings.Repeat("a", DefaultMaxTokenBytes+1), code: CodeInvalidToken, desc: "too large"},
		{name: "garbage is rejected", token: "not a token", code: CodeInvalidToken, desc: "malformed"},
		{name: "garbage base64 parts are rejected", token: "abc.def.ghi", code: CodeInvalidToken, desc: "malformed"},
		{name: "JWE five-part token is rejected", token: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", code: CodeInvalidToken, desc: "encrypted tokens are not accepted"},
		{name: "JSON serialization is rejected", token: `{"payload":"e30","signatures":[]}`, code: CodeInvalidToken, desc: "malformed"},
		{name: "line break inside the token is rejected", token: parts[0] + ".\n" + parts[1] + "." + parts[2], code: CodeInvalidToken, desc: "malformed"},
		{name: "padding in a part is rejected", token: parts[0] + "." + parts[1] + "=." + parts[2], code: CodeInvalidToken, desc: "malformed"},
		{name: "empty token is rejected", token: "", code: CodeInvalidToken, desc: "no token"},

		{name: "unknown kid is rejected", token: signRaw(t, hdr("RS256", "nope"), claimsAt(now), k.rsa), code: CodeInvalidToken, desc: "unknown key"},
		{name: "modified payload fails the signature", token: parts[0] + "." + b64url([]byte(`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":9999999999}`)) + "." + parts[2], code: CodeInvalidToken, desc: "signature is invalid"},
		{name: "signature by another key with the same kid is rejected", token: signRaw(t, hdr("RS256", "rsa"), claimsAt(now), k.rsa2), code: CodeInvalidToken, desc: "signature is invalid"},
		{name: "RSA key never verifies ES256", token: signRaw(t, hdr("ES256", "rsa"), claimsAt(now), k.ec256), code: CodeInvalidToken, desc: "unknown key"},
		{name: "key alg must equal the token alg", token: signRaw(t, hdr("RS256", "rsa-ps"), claimsAt(now), k.rsa2), code: CodeInvalidToken, desc: "unknown key"},
		{name: "ES256 key never verifies ES384", token: signRaw(t, hdr("ES384", "ec256"), claimsAt(now), k.ec384), code: CodeInvalidToken, desc: "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := testValidator(t, tt.cfg)
			tok, err := v.Validate(context.Background(), tt.token)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if tok.Issuer != testIssuer || tok.Expiry.IsZero() {
					t.Fatalf("token fields not filled: %+v", tok)
				}
				return
			}
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("want *Error %s, got %v (token %v)", tt.code, err, tok)
			}
			if be.Code != tt.code || !strings.Contains(be.Description, tt.desc) {
				t.Fatalf("want %s containing %q, got %s %q (reason %q)", tt.code, tt.desc, be.Code, be.Description, be.Reason)
			}
			if strings.Contains(be.Description, tt.token) && len(tt.token) > 8 {
				t.Fatalf("description leaks the token")
			}
		})
	}
}

func TestTokenFieldsAreFilled(t *testing.T) {
	v, clk := testValidator(t, nil)
	k := keysForTest(t)
	c := claimsAt(clk.Now())
	delete(c, "client_id")
	c["azp"] = "from-azp"
	tok, err := v.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), c, k.ec256))
	if err != nil {
		t.Fatal(err)
	}
	want := Token{Subject: "alice", Issuer: testIssuer, JTI: "jti-1", ClientID: "from-azp", KID: "ec256", Algorithm: "ES256", Type: "at+jwt"}
	if tok.Subject != want.Subject || tok.Issuer != want.Issuer || tok.JTI != want.JTI || tok.ClientID != want.ClientID ||
		tok.KID != want.KID || tok.Algorithm != want.Algorithm || tok.Type != want.Type {
		t.Fatalf("got %+v", tok)
	}
	if strings.Join(tok.Scopes, ",") != "orders:read,orders:write" || strings.Join(tok.Audience, ",") != testAudience {
		t.Fatalf("scopes/aud: %v %v", tok.Scopes, tok.Audience)
	}
	if !tok.Expiry.Equal(clk.Now().Add(time.Hour)) || !tok.IssuedAt.Equal(clk.Now()) || !tok.NotBefore.Equal(clk.Now()) {
		t.Fatalf("times: %v %v %v", tok.Expiry, tok.IssuedAt, tok.NotBefore)
	}
	if tok.Claims["sub"] != "alice" {
		t.Fatalf("claims: %v", tok.Claims)
	}
}

func TestGoJoseSignedTokensAreAccepted(t *testing.T) {
	// Interop: tokens produced by go-jose's signer (as the embedded issuer does).
	v, clk := testValidator(t, nil)
	k := keysForTest(t)
	for _, c := range []struct {
		alg jose.SignatureAlgorithm
		key any
		kid string
	}{{jose.RS256, k.rsa, "rsa"}, {jose.ES256, k.ec256, "ec256"}, {jose.EdDSA, k.ed, "ed"}, {jose.PS256, k.rsa2, "rsa-ps"}} {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.key},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", c.kid))
		if err != nil {
			t.Fatal(err)
		}
		now := clk.Now()
		raw, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: testIssuer, Audience: jwt.Audience{testAudience}, Subject: "bob",
			Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := v.Validate(context.Background(), raw); err != nil || tok.Subject != "bob" {
			t.Fatalf("%s: %v", c.alg, err)
		}
	}
}

func TestNewValidatorRejectsBadConfig(t *testing.T) {
	ks, err := NewStaticKeys(jwk(keysForTest(t).ec256, "k", ""))
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"ES256"}}
	tests := []struct {
		name string
		mod  func(*Config)
		keys KeySet
		want string
	}{
		{"missing issuer is rejected", func(c *Config) { c.Issuer = "" }, ks, "issuer is required"},
		{"issuer with whitespace is rejected", func(c *Config) { c.Issuer = " x" }, ks, "whitespace"},
		{"missing audience is rejected", func(c *Config) { c.Audiences = nil }, ks, "audience is required"},
		{"empty audience is rejected", func(c *Config) { c.Audiences = []string{""} }, ks, "empty audience"},
		{"empty allow-list is rejected", func(c *Config) { c.Algorithms = nil }, ks, "allow-list is empty"},
		{"HS256 in the allow-list is rejected", func(c *Config) { c.Algorithms = []string{"ES256", "HS256"} }, ks, `"HS256" is symmetric`},
		{"none in the allow-list is rejected", func(c *Config) { c.Algorithms = []string{"none"} }, ks, `"none" is never accepted`},
		{"unknown algorithm is rejected", func(c *Config) { c.Algorithms = []string{"ES256K"} }, ks, `unsupported algorithm "ES256K"`},
		{"leeway above the maximum is rejected", func(c *Config) { c.Leeway = 6 * time.Minute }, ks, "exceeds the maximum"},
		{"empty type is rejected", func(c *Config) { c.Types = []string{" "} }, ks, "empty token type"},
		{"scope with a space is rejected", func(c *Config) { c.Scopes = []string{"a b"} }, ks, "invalid scope"},
		{"any-of without scopes is rejected", func(c *Config) { c.ScopesAny = true }, ks, "at least one scope"},
		{"nil key set is rejected", nil, nil, "no key set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			if tt.mod != nil {
				tt.mod(&c)
			}
			_, err := NewValidator(c, tt.keys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
	if _, err := NewValidator(good, ks); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// mutableKeys is a Generational KeySet whose keys tests can replace.
type mutableKeys struct {
	mu   sync.Mutex
	keys []jose.JSONWebKey
	gen  uint64
}

func (m *mutableKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return selectKeys(m.keys, kid), nil
}
func (m *mutableKeys) Generation() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.gen }
func (m *mutableKeys) set(keys ...jose.JSONWebKey) {
	m.mu.Lock()
	m.keys, m.gen = keys, m.gen+1
	m.mu.Unlock()
}

func TestCache(t *testing.T) {
	k := keysForTest(t)
	ctx := context.Background()
	newV := func(t *testing.T, mod func(*Config)) (*Validator, *fakeClock, *mutableKeys) {
		mk := &mutableKeys{keys: []jose.JSONWebKey{jwk(k.ec256, "ec", "ES256")}}
		clk := newClock()
		cfg := Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"ES256"}, Now: clk.Now}
		if mod != nil {
			mod(&cfg)
		}
		v, err := NewValidator(cfg, mk)
		if err != nil {
			t.Fatal(err)
		}
		return v, clk, mk
	}

	t.Run("repeated token is served from the cache", func(t *testing.T) {
		v, clk, _ := newV(t, nil)
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		a, err := v.Validate(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Validate(ctx, raw)
		if err != nil || a != b || v.CacheLen() != 1 {
			t.Fatalf("want the same cached *Token, got %p %p err=%v len=%d", a, b, err, v.CacheLen())
		}
	})
	t.Run("cached token is rejected once expired", func(t *testing.T) {
		v, clk, _ := newV(t, nil)
		c := claimsAt(clk.Now())
		c["exp"] = clk.Now().Add(time.Minute).Unix()
		raw := signRaw(t, hdr("ES256", "ec"), c, k.ec256)
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute + DefaultLeeway)
		_, err := v.Validate(ctx, raw)
		var be *Error
		if !errors.As(err, &be) || !strings.Contains(be.Description, "expired") || v.CacheLen() != 0 {
			t.Fatalf("want expired and evicted, got %v len=%d", err, v.CacheLen())
		}
	})
	t.Run("scopes are checked per call even on a cache hit", func(t *testing.T) {
		v, clk, _ := newV(t, func(c *Config) { c.Scopes = []string{"admin"} })
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		for i := 0; i < 2; i++ {
			_, err := v.Validate(ctx, raw)
			var be *Error
			if !errors.As(err, &be) || be.Code != CodeInsufficientScope || be.Status() != http.StatusForbidden || be.Scope != "admin" {
				t.Fatalf("call %d: want insufficient_scope, got %v", i, err)
			}
		}
		if v.CacheLen() != 1 {
			t.Fatalf("signature-verified token should be cached, len=%d", v.CacheLen())
		}
	})
	t.Run("key rotation drops cached decisions", func(t *testing.T) {
		v, clk, mk := newV(t, nil)
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		mk.set(jwk(k.ec384, "other", "")) // the signing key is gone
		if _, err := v.Validate(ctx, raw); err == nil {
			t.Fatal("token verified with a removed key still accepted after rotation")
		}
	})
	t.Run("revoked jti is rejected even after re-verification", func(t *testing.T) {
		v, clk, _ := newV(t, nil)
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		v.Revoke("jti-1")
		for i := 0; i < 2; i++ {
			_, err := v.Validate(ctx, raw)
			var be *Error
			if !errors.As(err, &be) || !strings.Contains(be.Description, "revoked") {
				t.Fatalf("call %d: want revoked, got %v", i, err)
			}
		}
		if v.CacheLen() != 0 {
			t.Fatalf("revoked token must not be cached again, len=%d", v.CacheLen())
		}
		// The deny entry ends with the token's lifetime.
		clk.Advance(2 * time.Hour)
		if v.revoked.has("jti-1", clk.Now()) {
			t.Fatal("revocation outlived the token")
		}
	})
	t.Run("RevokeAll empties the cache", func(t *testing.T) {
		v, clk, _ := newV(t, nil)
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		v.RevokeAll()
		if v.CacheLen() != 0 {
			t.Fatal("cache not emptied")
		}
	})
	t.Run("cache is bounded", func(t *testing.T) {
		v, clk, _ := newV(t, func(c *Config) { c.CacheSize = 32 })
		for i := 0; i < 200; i++ {
			c := claimsAt(clk.Now())
			c["jti"] = i
			delete(c, "jti")
			c["n"] = i
			if _, err := v.Validate(ctx, signRaw(t, hdr("ES256", "ec"), c, k.ec256)); err != nil {
				t.Fatal(err)
			}
		}
		if n := v.CacheLen(); n > 32 || n < 16 {
			t.Fatalf("cache holds %d entries, want <= 32", n)
		}
	})
	t.Run("disabled cache still validates", func(t *testing.T) {
		v, clk, _ := newV(t, func(c *Config) { c.CacheSize = -1 })
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		a, err1 := v.Validate(ctx, raw)
		b, err2 := v.Validate(ctx, raw)
		if err1 != nil || err2 != nil || a == b || v.CacheLen() != 0 {
			t.Fatalf("got %v %v same=%v", err1, err2, a == b)
		}
	})
	t.Run("validators with different audiences do not share decisions", func(t *testing.T) {
		va, clk, mk := newV(t, nil)
		vb, err := NewValidator(Config{Issuer: testIssuer, Audiences: []string{"https://other.example"}, Algorithms: []string{"ES256"}, Now: clk.Now}, mk)
		if err != nil {
			t.Fatal(err)
		}
		raw := signRaw(t, hdr("ES256", "ec"), claimsAt(clk.Now()), k.ec256)
		if _, err := va.Validate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if _, err := vb.Validate(ctx, raw); err == nil {
			t.Fatal("audience B accepted a token for audience A")
		}
	})
}

func TestClaimsMapIsNotShared(t *testing.T) {
	// A fresh verification produces a fresh claims map (no aliasing between tokens).
	v, clk := testValidator(t, func(c *Config) { c.CacheSize = -1 })
	k := keysForTest(t)
	raw := signRaw(t, hdr("ES256", "ec256"), claimsAt(clk.Now()), k.ec256)
	a, _ := v.Validate(context.Background(), raw)
	b, _ := v.Validate(context.Background(), raw)
	if a == nil || b == nil || !maps.EqualFunc(a.Claims, b.Claims, func(x, y any) bool { return x != nil && y != nil }) {
		t.Fatal("tokens missing")
	}
	a.Claims["sub"] = "mallory"
	if b.Claims["sub"] != "alice" {
		t.Fatal("claims maps alias each other")
	}
}

func TestPeekIssuer(t *testing.T) {
	k := keysForTest(t)
	raw := signRaw(t, hdr("ES256", "ec256"), claimsAt(newClock().Now()), k.ec256)
	if iss, ok := PeekIssuer(raw); !ok || iss != testIssuer {
		t.Fatalf("got %q %v", iss, ok)
	}
	for _, bad := range []string{"", "abc", "a.b", "a.!!.c", "e30.e30.x", "x." + b64url([]byte(`{"iss":1}`)) + ".y"} {
		if _, ok := PeekIssuer(bad); ok {
			t.Errorf("PeekIssuer(%q) succeeded", bad)
		}
	}
	v, _ := testValidator(t, nil)
	if v.Issuer() != testIssuer {
		t.Fatal("Issuer()")
	}
}

func TestRevokeWithoutCachedToken(t *testing.T) {
	v, clk := testValidator(t, nil)
	k := keysForTest(t)
	raw := signRaw(t, hdr("ES256", "ec256"), claimsAt(clk.Now()), k.ec256)
	v.Revoke("jti-1") // never seen: denied for DefaultRevocationTTL
	if _, err := v.Validate(context.Background(), raw); err == nil {
		t.Fatal("revoked jti accepted")
	}
	clk.Advance(DefaultRevocationTTL)
	if v.revoked.has("jti-1", clk.Now()) {
		t.Fatal("deny entry outlived DefaultRevocationTTL")
	}
	v.RevokeUntil("jti-2", clk.Now().Add(time.Minute))
	if !v.revoked.has("jti-2", clk.Now()) || v.revoked.has("jti-2", clk.Now().Add(time.Minute)) {
		t.Fatal("RevokeUntil bounds")
	}
	v.Revoke("") // no-op
}
