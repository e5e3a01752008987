package seal

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzOpen feeds arbitrary cookie values to Open and to the cached
// OpenSession. They must never panic, must agree, and nothing but the
// genuine sealed value may open.
func FuzzOpen(f *testing.F) {
	clk := &clock{t0}
	s := mustSealer(f, mustKeys(f, secret(1)), Config{Now: clk.Now})
	want, wantBig := sampleSession(), bigSession(2)
	genuine := sealTo(f, s, sampleSession(), time.Time{}).Result().Cookies()[0].Value
	big := sealTo(f, s, bigSession(2), time.Time{}).Result().Cookies()
	f.Add(genuine, "")
	f.Add(big[0].Value, big[1].Value)
	f.Add("1.", "")
	f.Add("2.AAAA", "BBBB")
	f.Add("9."+genuine[2:], "x")
	f.Add("1.MTIzfHh8eQ==", "")
	f.Add("", "")
	f.Add("1.\x00\xff|||", "\r\n")
	cache := NewCache[Session](64)
	f.Fuzz(func(t *testing.T, first, second string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "gatehouse="+first+"; gatehouse.1="+second)
		var out, cached Session
		err := s.Open(r, &out)
		// The cached path must agree with Open, opened or not, twice (the
		// second time from the cache).
		for range 2 {
			cerr := OpenCached(s, r, &cached, cache)
			if (err == nil) != (cerr == nil) || err == nil && (cached.Subject != out.Subject || cached.IDToken != out.IDToken) {
				t.Fatalf("OpenSession (%v) disagrees with Open (%v)", cerr, err)
			}
		}
		if err != nil {
			return
		}
		// Seeds are sealed afresh in every fuzz worker (random IVs), so
		// compare what opened, not the bytes: only the two sealed sessions
		// may come out.
		if out.Subject != want.Subject || (out.IDToken != want.IDToken && out.IDToken != wantBig.IDToken) {
			t.Fatalf("forged cookie opened: %q %q", first, second)
		}
	})
}
