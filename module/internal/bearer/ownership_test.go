package bearer

import (
	"context"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The options an issuer uses to read its own tokens back: any audience,
// expired tokens (revocation, logout hints) and ID tokens.

func TestAnyAudienceAcceptsEveryAudienceButAMalformedOne(t *testing.T) {
	v, clk := testValidator(t, func(c *Config) { c.Audiences, c.AnyAudience = nil, true })
	k := keysForTest(t)
	for _, aud := range []any{"https://other.example", []string{"a", "b"}} {
		c := claimsAt(clk.Now())
		c["aud"] = aud
		if _, err := v.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), c, k.ec256)); err != nil {
			t.Errorf("aud %v: %v", aud, err)
		}
	}
	c := claimsAt(clk.Now())
	c["aud"] = 42
	if _, err := v.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), c, k.ec256)); err == nil {
		t.Error("a malformed aud was accepted")
	}
	// A resource server's validator still demands its audience.
	strict, _ := testValidator(t, nil)
	c = claimsAt(clk.Now())
	c["aud"] = "https://other.example"
	if _, err := strict.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), c, k.ec256)); err == nil {
		t.Error("the default validator accepted a foreign audience")
	}
	if _, err := NewValidator(Config{Issuer: testIssuer, Audiences: []string{"x"}, AnyAudience: true, Algorithms: []string{"ES256"}}, failingKeys{}); err == nil {
		t.Error("AnyAudience with Audiences was accepted")
	}
}

func TestAllowExpiredStillNeedsAnExpiryAndASignature(t *testing.T) {
	v, clk := testValidator(t, func(c *Config) { c.AllowExpired = true })
	k := keysForTest(t)
	tok := signRaw(t, hdr("ES256", "ec256"), claimsAt(clk.Now()), k.ec256)
	clk.Advance(48 * time.Hour)
	if got, err := v.Validate(context.Background(), tok); err != nil || got.Subject != "alice" {
		t.Fatalf("an expired token: %v", err)
	}
	c := claimsAt(clk.Now())
	delete(c, "exp")
	if _, err := v.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), c, k.ec256)); err == nil {
		t.Error("a token without exp was accepted")
	}
	if _, err := v.Validate(context.Background(), tok[:len(tok)-4]+"AAAA"); err == nil {
		t.Error("a bad signature was accepted")
	}
	if v.cache != nil {
		t.Error("a validator that accepts expired tokens caches them")
	}
	strict, sclk := testValidator(t, nil)
	sclk.Advance(48 * time.Hour)
	if _, err := strict.Validate(context.Background(), tok); err == nil {
		t.Error("the default validator accepted an expired token")
	}
}

func TestIDTokensAreNeverAccessTokensAndViceVersa(t *testing.T) {
	k := keysForTest(t)
	ids, clk := testValidator(t, func(c *Config) { c.IDTokens = true })
	access, _ := testValidator(t, nil)
	id := claimsAt(clk.Now())
	id["nonce"], id["at_hash"] = "n", "h"
	idTok := signRaw(t, map[string]any{"alg": "ES256", "kid": "ec256", "typ": "JWT"}, id, k.ec256)
	if _, err := ids.Validate(context.Background(), idTok); err != nil {
		t.Fatalf("an ID token: %v", err)
	}
	if _, err := access.Validate(context.Background(), idTok); err == nil {
		t.Error("an access-token validator accepted an ID token")
	}
	atTok := signRaw(t, hdr("ES256", "ec256"), claimsAt(clk.Now()), k.ec256) // typ at+jwt
	if _, err := ids.Validate(context.Background(), atTok); err == nil {
		t.Error("an ID-token validator accepted an access token")
	}
}

// failingKeys is a key set that cannot be read.
type failingKeys struct{}

func (failingKeys) Keys(context.Context, string) ([]jose.JSONWebKey, error) {
	return nil, errors.New("store down")
}

func TestKeysUnavailableIsTold(t *testing.T) {
	k := keysForTest(t)
	clk := newClock()
	v, err := NewValidator(Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"ES256"}, Now: clk.Now}, failingKeys{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(context.Background(), signRaw(t, hdr("ES256", "ec256"), claimsAt(clk.Now()), k.ec256))
	var be *Error
	if !errors.Is(err, ErrKeysUnavailable) || !errors.As(err, &be) || be.Code != CodeInvalidToken {
		t.Fatalf("%v, want an invalid_token *Error wrapping ErrKeysUnavailable", err)
	}
	good, _ := testValidator(t, nil)
	if _, err := good.Validate(context.Background(), "a.b.c"); errors.Is(err, ErrKeysUnavailable) {
		t.Fatal("a malformed token is not a key-set failure")
	}
}
