package bearer

import (
	"context"
	"fmt"
	"testing"
)

// benchTokens pre-signs n distinct tokens (signing is not what is measured).
func benchTokens(b *testing.B, alg, kid string, key any, n int) []string {
	now := newClock().Now()
	out := make([]string, n)
	for i := range out {
		c := claimsAt(now)
		c["jti"] = fmt.Sprintf("jti-%d", i)
		out[i] = signRaw(b, hdr(alg, kid), c, key)
	}
	return out
}

func benchValidate(b *testing.B, alg, kid string, key any, unique bool) {
	clk := newClock()
	v, _ := testValidator(b, func(c *Config) {
		c.Now = clk.Now
		c.Scopes = []string{"orders:read"}
		if unique {
			c.CacheSize = -1 // every call is a full verification
		}
	})
	toks := benchTokens(b, alg, kid, key, 64)
	ctx := context.Background()
	for _, t := range toks { // warm the cache (no-op when disabled)
		if _, err := v.Validate(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := v.Validate(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkValidate_RS256_Unique(b *testing.B) {
	benchValidate(b, "RS256", "rsa", keysForTest(b).rsa, true)
}
func BenchmarkValidate_RS256_Cached(b *testing.B) {
	benchValidate(b, "RS256", "rsa", keysForTest(b).rsa, false)
}
func BenchmarkValidate_ES256_Unique(b *testing.B) {
	benchValidate(b, "ES256", "ec256", keysForTest(b).ec256, true)
}
func BenchmarkValidate_ES256_Cached(b *testing.B) {
	benchValidate(b, "ES256", "ec256", keysForTest(b).ec256, false)
}
func BenchmarkValidate_EdDSA_Unique(b *testing.B) {
	benchValidate(b, "EdDSA", "ed", keysForTest(b).ed, true)
}

// BenchmarkValidate_RS256_CachedParallel measures cache hits from all cores.
func BenchmarkValidate_RS256_CachedParallel(b *testing.B) {
	k := keysForTest(b)
	v, _ := testValidator(b, nil)
	toks := benchTokens(b, "RS256", "rsa", k.rsa, 64)
	ctx := context.Background()
	for _, t := range toks {
		if _, err := v.Validate(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Validate(ctx, toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkValidate_RejectGarbage measures the cost of refusing junk.
func BenchmarkValidate_RejectGarbage(b *testing.B) {
	v, _ := testValidator(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, "eyJhbGciOiJSUzI1NiJ9.garbage!.x"); err == nil {
			b.Fatal("accepted")
		}
	}
}
