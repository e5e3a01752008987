package bearer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer is a loopback issuer whose JWKS, Cache-Control and health tests control.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	jwks         []byte
	cacheControl string
	down         bool
	issuer       string // discovery "issuer" value; default the server URL
	jwksFetches  atomic.Int64
	discoFetches atomic.Int64
}

func newJWKSServer(t *testing.T, jwks []byte) *jwksServer {
	s := &jwksServer{jwks: jwks}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			s.discoFetches.Add(1)
			iss := s.issuer
			if iss == "" {
				iss = s.URL
			}
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"id_token_signing_alg_values_supported":["RS256","HS256","none","ES256"]}`, iss, s.URL+"/keys")
		case "/keys":
			s.jwksFetches.Add(1)
			if s.cacheControl != "" {
				w.Header().Set("Cache-Control", s.cacheControl)
			}
			w.Write(s.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// settle waits for the in-flight background refresh, if any, to finish.
func settle(r *RemoteKeySet, _ time.Time) {
	r.mu.Lock()
	f := r.inflight
	r.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

func remoteValidator(t *testing.T, ks KeySet, clk *fakeClock) *Validator {
	v, err := NewValidator(Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: AsymmetricAlgorithms(), Now: clk.Now}, ks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRemoteKeySetUnknownKidFloodIsBounded(t *testing.T) {
	k := keysForTest(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "a", "ES256")))
	clk := newClock()
	ks, err := NewRemoteKeySet(srv.URL+"/keys", RemoteOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v := remoteValidator(t, ks, clk)
	ctx := context.Background()
	if _, err := v.Validate(ctx, signRaw(t, hdr("ES256", "a"), claimsAt(clk.Now()), k.ec256)); err != nil {
		t.Fatal(err)
	}
	if n := srv.jwksFetches.Load(); n != 1 {
		t.Fatalf("initial fetches = %d", n)
	}
	clk.Advance(2 * DefaultRefreshCooldown) // the next unknown kid may refresh once

	// 1000 tokens with random kids from 50 goroutines (signatures are junk: the kid
	// lookup fails first).
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				h := b64url([]byte(fmt.Sprintf(`{"alg":"ES256","typ":"at+jwt","kid":"k%d"}`, rand.Int64())))
				if _, err := v.Validate(ctx, h+".e30."+b64url(make([]byte, 64))); err == nil {
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatal("a token with an unknown kid was accepted")
	}
	if n := srv.jwksFetches.Load() - 1; n < 1 || n > 2 {
		t.Fatalf("burst of 1000 unknown kids caused %d fetches, want 1 (at most 2)", n)
	}
	before := srv.jwksFetches.Load()
	for i := 0; i < 100; i++ {
		h := b64url([]byte(fmt.Sprintf(`{"alg":"ES256","typ":"at+jwt","kid":"z%d"}`, i)))
		v.Validate(ctx, h+".e30."+b64url(make([]byte, 64)))
	}
	if srv.jwksFetches.Load() != before {
		t.Fatal("unknown kids within the cooldown caused a fetch")
	}
}

func TestRemoteKeySetRotation(t *testing.T) {
	k := keysForTest(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "old", "ES256")))
	clk := newClock()
	ks, err := NewRemoteKeySet(srv.URL+"/keys", RemoteOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v := remoteValidator(t, ks, clk)
	ctx := context.Background()
	oldTok := signRaw(t, hdr("ES256", "old"), claimsAt(clk.Now()), k.ec256)
	if _, err := v.Validate(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	gen0 := ks.Generation()

	// The issuer rotates: "old" is removed, "new" published.
	srv.set(func(s *jwksServer) { s.jwks = jwksJSON(t, jwk(k.ed, "new", "EdDSA")) })
	newTok := signRaw(t, hdr("EdDSA", "new"), claimsAt(clk.Now()), k.ed)
	if _, err := v.Validate(ctx, newTok); err == nil {
		t.Fatal("new kid accepted before any refresh was allowed")
	}
	if _, err := v.Validate(ctx, oldTok); err != nil {
		t.Fatalf("old key dropped before the issuer's change was fetched: %v", err)
	}

	clk.Advance(DefaultRefreshCooldown + time.Second)
	if _, err := v.Validate(ctx, newTok); err != nil {
		t.Fatalf("new kid not accepted after refresh: %v", err)
	}
	if ks.Generation() == gen0 {
		t.Fatal("generation unchanged although a key was removed")
	}
	_, err = v.Validate(ctx, oldTok)
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Description, "unknown key") {
		t.Fatalf("token of the removed key: want unknown key, got %v", err)
	}
	if n := srv.jwksFetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestRemoteKeySetServesLastGoodKeysWhileIssuerIsDown(t *testing.T) {
	k := keysForTest(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "a", "ES256")))
	clk := newClock()
	ks, err := NewRemoteKeySet(srv.URL+"/keys", RemoteOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v := remoteValidator(t, ks, clk)
	ctx := context.Background()
	if _, err := v.Validate(ctx, signRaw(t, hdr("ES256", "a"), claimsAt(clk.Now()), k.ec256)); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *jwksServer) { s.down = true })
	clk.Advance(DefaultTTL + time.Minute) // keys are stale: a background refresh starts

	for i := 0; i < 3; i++ {
		// Fresh tokens (cache misses) still verify with the stale keys.
		c := claimsAt(clk.Now())
		c["n"] = i
		if _, err := v.Validate(ctx, signRaw(t, hdr("ES256", "a"), c, k.ec256)); err != nil {
			t.Fatalf("stale keys not served while the issuer is down: %v", err)
		}
		settle(ks, clk.Now())
	}
	if ks.LastError() == nil {
		t.Fatal("the failed refresh was not recorded")
	}
	if n := ks.Fetches(); n != 2 {
		t.Fatalf("fetch rounds = %d, want 2 (initial + one retry per cooldown)", n)
	}

	// Garbage from the issuer does not replace the good keys either.
	srv.set(func(s *jwksServer) { s.down = false; s.jwks = []byte(`{"keys":[]}`) })
	clk.Advance(DefaultRefreshCooldown)
	c := claimsAt(clk.Now())
	c["n"] = "after-garbage"
	v.Validate(ctx, signRaw(t, hdr("ES256", "a"), c, k.ec256))
	settle(ks, clk.Now())
	if ks.LastError() == nil || !strings.Contains(ks.LastError().Error(), "no usable") {
		t.Fatalf("want a no-usable-key error, got %v", ks.LastError())
	}
	c["n"] = "after-garbage-2"
	if _, err := v.Validate(ctx, signRaw(t, hdr("ES256", "a"), c, k.ec256)); err != nil {
		t.Fatalf("good keys lost after a garbage answer: %v", err)
	}
}

func TestRemoteKeySetHonoursCacheControlWithinBounds(t *testing.T) {
	k := keysForTest(t)
	tests := []struct {
		name         string
		cacheControl string
		stillFresh   time.Duration
		stale        time.Duration
	}{
		{"max-age is honoured", "public, max-age=600", 9 * time.Minute, 11 * time.Minute},
		{"tiny max-age is raised to the minimum", "max-age=5", 50 * time.Second, 61 * time.Second},
		{"no-store is raised to the minimum", "no-store", 50 * time.Second, 61 * time.Second},
		{"huge max-age is capped at the maximum", "max-age=99999999", 23 * time.Hour, 25 * time.Hour},
		{"no header means the default", "", 59 * time.Minute, 61 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "a", "ES256")))
			srv.cacheControl = tt.cacheControl
			clk := newClock()
			ks, err := NewRemoteKeySet(srv.URL+"/keys", RemoteOptions{Now: clk.Now, RefreshCooldown: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			start := clk.Now()
			if keys, err := ks.Keys(ctx, "a"); err != nil || len(keys) != 1 {
				t.Fatalf("initial: %v", err)
			}
			clk.Advance(tt.stillFresh)
			ks.Keys(ctx, "a")
			settle(ks, clk.Now())
			if n := srv.jwksFetches.Load(); n != 1 {
				t.Fatalf("refetched while fresh (after %s): %d fetches", clk.Now().Sub(start), n)
			}
			clk.Advance(tt.stale - tt.stillFresh)
			ks.Keys(ctx, "a")
			settle(ks, clk.Now())
			if n := srv.jwksFetches.Load(); n != 2 {
				t.Fatalf("not refetched once stale (after %s): %d fetches", clk.Now().Sub(start), n)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	k := keysForTest(t)
	ctx := context.Background()
	t.Run("discovered keys verify tokens and algorithms are filtered", func(t *testing.T) {
		srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "a", "ES256")))
		clk := newClock()
		ks, err := NewDiscoveryKeySet(srv.URL, RemoteOptions{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := ks.Keys(ctx, "a")
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys: %v", err)
		}
		md, ok := ks.Metadata()
		if !ok || md.JWKSURI != srv.URL+"/keys" || strings.Join(md.SigningAlgorithms, ",") != "RS256,ES256" {
			t.Fatalf("metadata %+v", md)
		}
		if srv.discoFetches.Load() != 1 {
			t.Fatal("discovery not fetched exactly once")
		}
	})
	t.Run("issuer mismatch in the discovery document is rejected", func(t *testing.T) {
		for _, bad := range []string{"", "/", "https://evil.example"} {
			srv := newJWKSServer(t, jwksJSON(t, jwk(k.ec256, "a", "ES256")))
			srv.issuer = srv.URL + bad
			if bad == "https://evil.example" {
				srv.issuer = bad
			}
			if bad == "" {
				srv.issuer = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
			}
			if _, err := discover(ctx, srv.URL, RemoteOptions{}.withDefaults()); err == nil || !strings.Contains(err.Error(), "does not equal") {
				t.Fatalf("issuer %q: want mismatch error, got %v", srv.issuer, err)
			}
			ks, err := NewDiscoveryKeySet(srv.URL, RemoteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if keys, err := ks.Keys(ctx, "a"); err == nil || len(keys) != 0 {
				t.Fatalf("issuer %q: keys served despite mismatch", srv.issuer)
			}
			if srv.jwksFetches.Load() != 0 {
				t.Fatal("jwks fetched from an unverified discovery document")
			}
		}
	})
	t.Run("oversize responses are refused", func(t *testing.T) {
		srv := newJWKSServer(t, []byte(`{"keys":[]}`+strings.Repeat(" ", 2048)))
		ks, err := NewRemoteKeySet(srv.URL+"/keys", RemoteOptions{MaxResponseBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Keys(ctx, "a"); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("want size error, got %v", err)
		}
	})
}

func TestRemoteURLPolicy(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://issuer.example/keys", false, true},
		{"http://127.0.0.1:8080/keys", false, true},
		{"http://[::1]:8080/keys", false, true},
		{"http://localhost/keys", false, true},
		{"http://issuer.example/keys", false, false},
		{"http://issuer.example/keys", true, true},
		{"ftp://issuer.example/keys", true, false},
		{"https://user:pw@issuer.example/keys", false, false},
		{"https://issuer.example/keys#frag", false, false},
		{"/keys", false, false},
		{"https://", false, false},
	}
	for _, tt := range tests {
		_, err := NewRemoteKeySet(tt.url, RemoteOptions{AllowInsecureHTTP: tt.insecure})
		if (err == nil) != tt.ok {
			t.Errorf("%s (insecure=%v): ok=%v err=%v", tt.url, tt.insecure, tt.ok, err)
		}
	}
}

func TestRedirectToPlainHTTPIsRefused(t *testing.T) {
	// A loopback JWKS URL that redirects to a non-loopback http URL must fail.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://issuer.example/keys", http.StatusFound)
	}))
	defer srv.Close()
	ks, err := NewRemoteKeySet(srv.URL, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Keys(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("want redirect refused, got %v", err)
	}
}

func TestRegistrySharesAndReleases(t *testing.T) {
	r := NewRegistry()
	src := Source{JWKSURL: "https://issuer.example/keys"}
	a, relA, err := r.Acquire(src, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A reload acquires the new handler's set before releasing the old one.
	b, relB, err := r.Acquire(src, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a != b || r.Len() != 1 {
		t.Fatalf("same source not shared (len %d)", r.Len())
	}
	c, relC, _ := r.Acquire(Source{Issuer: "https://issuer.example"}, RemoteOptions{})
	if c == a || r.Len() != 2 {
		t.Fatal("different sources shared")
	}
	relA()
	relA() // idempotent
	if r.Len() != 2 {
		t.Fatal("released while still referenced")
	}
	relB()
	relC()
	if r.Len() != 0 {
		t.Fatalf("not forgotten after the last release: %d", r.Len())
	}
	if _, _, err := r.Acquire(Source{}, RemoteOptions{}); err == nil {
		t.Fatal("empty source accepted")
	}
	if _, _, err := r.Acquire(Source{JWKSURL: "http://issuer.example/keys"}, RemoteOptions{}); err == nil {
		t.Fatal("plain http source accepted")
	}
	ks, rel, err := Shared(src, RemoteOptions{})
	if err != nil || ks == nil {
		t.Fatal(err)
	}
	rel()
}

var _ KeySet = (*RemoteKeySet)(nil)
var _ Generational = (*RemoteKeySet)(nil)
var _ KeySet = (*StaticKeys)(nil)

// Len reports how many sources are in use.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
