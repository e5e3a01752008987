package bearer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// tamper replaces the signature of raw with junk of the same length.
func tamper(raw string) string {
	i := strings.LastIndexByte(raw, '.')
	return raw[:i+1] + strings.Repeat("A", len(raw)-i-1)
}

func TestClaimsAreCheckedBeforeTheSignature(t *testing.T) {
	k := keysForTest(t)
	v, clk := testValidator(t, nil)
	now := clk.Now()
	expired := claimsAt(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	foreign := claimsAt(now)
	foreign["iss"] = "https://evil.example"
	big := claimsAt(now)
	big["exp"] = now.Add(-time.Hour).Unix()
	big["pad"] = strings.Repeat("x", maxPrecheckPayload)
	cases := []struct {
		name, raw, want string
	}{
		{"expired token with a bad signature is refused as expired", tamper(signRaw(t, hdr("RS256", "rsa"), expired, k.rsa)), "the token has expired"},
		{"foreign-issuer token with a bad signature is refused for its issuer", tamper(signRaw(t, hdr("ES256", "ec256"), foreign, k.ec256)), "the token issuer is not accepted"},
		{"expired token with a payload over 4 KiB is still checked for its signature first", tamper(signRaw(t, hdr("RS256", "rsa"), big, k.rsa)), "the token signature is invalid"},
		{"expired token with a payload over 4 KiB and a good signature is refused as expired", signRaw(t, hdr("RS256", "rsa"), big, k.rsa), "the token has expired"},
		{"token with a line break is refused", strings.Replace(signRaw(t, hdr("RS256", "rsa"), claimsAt(now), k.rsa), ".", ".\n", 1), "the token is malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), c.raw)
			be, ok := err.(*Error)
			if !ok || be.Code != CodeInvalidToken || be.Description != c.want {
				t.Fatalf("got %v, want invalid_token %q", err, c.want)
			}
		})
	}
}

func TestHeaderCacheHoldsOnlyVerifiedHeaders(t *testing.T) {
	k := keysForTest(t)
	v, clk := testValidator(t, func(c *Config) { c.CacheSize = -1 })
	now := clk.Now()
	ctx := context.Background()
	for i := range 10 {
		h := hdr("RS256", "rsa")
		h["x"] = i
		if _, err := v.Validate(ctx, tamper(signRaw(t, h, claimsAt(now), k.rsa))); err == nil {
			t.Fatal("tampered token accepted")
		}
	}
	if n := len(v.headers.m); n != 0 {
		t.Fatalf("unverified headers cached: %d", n)
	}
	good := signRaw(t, hdr("RS256", "rsa"), claimsAt(now), k.rsa)
	for range 2 { // the second run parses the header from the cache
		tok, err := v.Validate(ctx, good)
		if err != nil || tok.Algorithm != "RS256" || tok.KID != "rsa" || tok.Type != "at+jwt" {
			t.Fatalf("got %+v, %v", tok, err)
		}
	}
	if n := len(v.headers.m); n != 1 {
		t.Fatalf("verified header cached %d times, want 1", n)
	}
	// A cached header does not let a bad signature through.
	if _, err := v.Validate(ctx, tamper(good)); err == nil {
		t.Fatal("tampered token with a cached header accepted")
	}
}

func TestHeaderCacheIsBounded(t *testing.T) {
	c := newHeaderCache()
	for i := range 3 * headerCacheSize {
		c.put(fmt.Sprintf("h%d", i), jwsHeader{alg: "RS256"})
	}
	if n := len(c.m); n != headerCacheSize {
		t.Fatalf("header cache holds %d entries, want %d", n, headerCacheSize)
	}
	var nilCache *headerCache
	nilCache.put("h", jwsHeader{alg: "RS256"})
	if _, ok := nilCache.get("h"); ok {
		t.Fatal("nil cache returned an entry")
	}
}
