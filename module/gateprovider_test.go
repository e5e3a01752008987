package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestDiscoveryOfAHangingProviderIsOneSharedAttempt: the gate used to run an
// external provider's discovery while it held the lock of its login flows,
// so while the provider hung every login start and callback of the gate
// waited in line behind one 10-second attempt after another. Now the logins
// that need the provider share one attempt, run outside the lock; one whose
// request ends stops waiting at once; the failure is remembered for
// discoveryRetry (a provider that is down costs one attempt per window),
// and after it a new attempt is made.
func TestDiscoveryOfAHangingProviderIsOneSharedAttempt(t *testing.T) {
	var hits atomic.Int32
	var healthy atomic.Bool
	release := make(chan struct{})
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if healthy.Load() {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"issuer":                                srv.URL,
				"authorization_endpoint":                srv.URL + "/authorize",
				"token_endpoint":                        srv.URL + "/token",
				"jwks_uri":                              srv.URL + "/jwks",
				"response_types_supported":              []string{"code"},
				"subject_types_supported":               []string{"public"},
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
			return
		}
		select { // hangs until the test lets it fail
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	keys, err := seal.NewKeys([][]byte{bytes.Repeat([]byte{7}, seal.SecretSize)})
	if err != nil {
		t.Fatal(err)
	}
	web := &gateWeb{
		keys:         keys.Bind("aud"),
		audience:     rp.Audience{Issuer: srv.URL, Client: "webapp"},
		callbackPath: "/.gatehouse/callback",
		flows:        map[string]*rp.Flow{},
	}
	clock := &testClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	web.discovery = newDiscovery(func(ctx context.Context) (rp.Provider, error) {
		return rp.NewOIDCProvider(ctx, rp.OIDCConfig{Issuer: srv.URL, ClientID: "webapp"})
	})
	web.discovery.now = clock.Now
	login := func(ctx context.Context, host string) (*rp.Flow, error) {
		r := httptest.NewRequestWithContext(ctx, "GET", "http://"+host+"/orders", nil)
		return web.flow(r.Context(), r)
	}

	const n = 8
	errs := make(chan error, n)
	for i := range n {
		// Several origins: each has its own flow, all need the provider.
		host := []string{"app.example.com", "wiki.example.com"}[i%2]
		go func() {
			_, err := login(context.Background(), host)
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for hits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no discovery attempt reached the provider within 10s")
		}
		runtime.Gosched()
	}
	// While the attempt hangs, a login whose request is gone returns at
	// once instead of waiting for it (or, before, for the lock).
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := login(gone, "app.example.com"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a login whose request ended: %v, want context.Canceled", err)
	}
	close(release)
	for range n {
		if err := <-errs; err == nil {
			t.Fatal("a login succeeded against a provider that is down")
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("%d discovery attempts for %d concurrent logins, want 1 shared attempt", got, n)
	}

	// Within the window the failure is answered at once, without an attempt.
	healthy.Store(true)
	clock.Advance(discoveryRetry - time.Millisecond)
	if _, err := login(context.Background(), "app.example.com"); err == nil || hits.Load() != 1 {
		t.Fatalf("within the failure window: %v after %d attempts; want the remembered failure and no attempt", err, hits.Load())
	}
	// After it, one new attempt: the provider is back, logins work.
	clock.Advance(time.Millisecond)
	if f, err := login(context.Background(), "app.example.com"); err != nil || f == nil || hits.Load() != 2 {
		t.Fatalf("after the failure window: %v after %d attempts; want a new attempt that succeeds", err, hits.Load())
	}
	if _, err := login(context.Background(), "wiki.example.com"); err != nil || hits.Load() != 2 {
		t.Fatalf("the provider found is kept: %v after %d attempts", err, hits.Load())
	}
}
