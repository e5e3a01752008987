package seal

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

func TestCachedOpen(t *testing.T) {
	setup := func(t *testing.T) (*clock, *Sealer, *browser, Session) {
		clk := &clock{t0}
		s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: true, Now: clk.Now})
		b := newBrowser(t, "https://app.example.com/")
		in := bigSession(2)
		b.receive(sealTo(t, s, in, t0.Add(time.Hour)))
		return clk, s, b, in
	}
	t.Run("a cached session equals the opened one", func(t *testing.T) {
		_, s, b, _ := setup(t)
		c := NewCache[Session](0)
		var plain, first, second Session
		if err := s.Open(b.request(), &plain); err != nil {
			t.Fatal(err)
		}
		if err := OpenCached(s, b.request(), &first, c); err != nil {
			t.Fatal(err)
		}
		if err := OpenCached(s, b.request(), &second, c); err != nil {
			t.Fatal(err)
		}
		if c.Len() != 1 || !reflect.DeepEqual(plain, first) || !reflect.DeepEqual(first, second) {
			t.Fatalf("cache holds %d; sessions differ", c.Len())
		}
	})
	t.Run("a tampered cookie misses the cache and is refused", func(t *testing.T) {
		_, s, b, _ := setup(t)
		c := NewCache[Session](0)
		var out Session
		if err := OpenCached(s, b.request(), &out, c); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, ck := range b.jar.Cookies(b.u) {
			if ck.Name == HostPrefix+DefaultName {
				ck.Value = ck.Value[:len(ck.Value)-2] + "AA"
			}
			r.AddCookie(ck)
		}
		if err := OpenCached(s, r, &out, c); !errors.Is(err, ErrInvalid) {
			t.Fatalf("tampered: %v, want ErrInvalid", err)
		}
	})
	t.Run("a cached session is not served past its sealed expiry", func(t *testing.T) {
		clk, s, b, _ := setup(t)
		c := NewCache[Session](0)
		var out Session
		if err := OpenCached(s, b.request(), &out, c); err != nil {
			t.Fatal(err)
		}
		clk.now = t0.Add(time.Hour)
		if err := OpenCached(s, b.request(), &out, c); !errors.Is(err, ErrExpired) {
			t.Fatalf("after the sealed expiry: %v, want ErrExpired", err)
		}
	})
	t.Run("a retired key stops working once the entry is older than MaxCacheAge", func(t *testing.T) {
		clk, s, b, _ := setup(t)
		c := NewCache[Session](0)
		var out Session
		if err := OpenCached(s, b.request(), &out, c); err != nil {
			t.Fatal(err)
		}
		// Same cookie name, only a new key: the old cookie no longer opens.
		rotated := mustSealer(t, mustKeys(t, secret(9)), Config{Secure: true, Now: clk.Now})
		if err := OpenCached(rotated, b.request(), &out, c); err != nil {
			t.Fatalf("within MaxCacheAge the cached entry serves: %v", err)
		}
		clk.now = t0.Add(MaxCacheAge)
		if err := OpenCached(rotated, b.request(), &out, c); !errors.Is(err, ErrInvalid) {
			t.Fatalf("after MaxCacheAge: %v, want ErrInvalid", err)
		}
	})
	t.Run("the cache stays within its bound", func(t *testing.T) {
		clk := &clock{t0}
		s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: true, Now: clk.Now})
		c := NewCache[Session](16)
		for i := range 100 {
			b := newBrowser(t, "https://app.example.com/")
			in := sampleSession()
			in.Subject = fmt.Sprint("user-", i)
			b.receive(sealTo(t, s, in, t0.Add(time.Hour)))
			var out Session
			if err := OpenCached(s, b.request(), &out, c); err != nil || out.Subject != in.Subject {
				t.Fatalf("%d: %v %q", i, err, out.Subject)
			}
			if c.Len() > 16 {
				t.Fatalf("cache grew to %d", c.Len())
			}
		}
	})
	t.Run("no cookie is ErrNoSession", func(t *testing.T) {
		_, s, _, _ := setup(t)
		var out Session
		if err := OpenCached(s, httptest.NewRequest(http.MethodGet, "/", nil), &out, NewCache[Session](0)); !errors.Is(err, ErrNoSession) {
			t.Fatalf("%v", err)
		}
	})
}
