package seal

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSealerOpen measures opening a session on every browser request:
// a typical small session (one cookie) and one with large tokens (3 chunks),
// opened afresh and through a Cache (every request after the first with a
// given cookie).
func BenchmarkSealerOpen(b *testing.B) {
	for _, tc := range []struct {
		name string
		sess Session
	}{
		{"1chunk", sampleSession()},
		{"3chunks", bigSession(3)},
	} {
		for _, cached := range []bool{false, true} {
			name := tc.name
			if cached {
				name += "/cached"
			}
			b.Run(name, func(b *testing.B) {
				clk := &clock{t0}
				s := mustSealer(b, mustKeys(b, secret(1), secret(2)), Config{Now: clk.Now})
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				for _, c := range sealTo(b, s, tc.sess, time.Time{}).Result().Cookies() {
					if c.MaxAge > 0 {
						r.AddCookie(c)
					}
				}
				var cache *Cache[Session]
				if cached {
					cache = NewCache[Session](0)
				}
				b.ReportAllocs()
				for b.Loop() {
					var out Session
					if err := OpenCached(s, r, &out, cache); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkSealerSeal(b *testing.B) {
	clk := &clock{t0}
	s := mustSealer(b, mustKeys(b, secret(1)), Config{Now: clk.Now})
	sess := sampleSession()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Seal(httptest.NewRecorder(), sess, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
