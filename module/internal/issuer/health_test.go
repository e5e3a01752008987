package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

func getHealth(t *testing.T, f *fixture) (int, health, http.Header) {
	t.Helper()
	resp, err := http.Get(f.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("health body: %v", err)
	}
	return resp.StatusCode, h, resp.Header
}

func TestHealth_OKWithTheActiveKey(t *testing.T) {
	f := newFixture(t)
	code, h, hdr := getHealth(t, f)
	want := health{Status: "ok", Store: "ok", SigningKey: f.keys.ActiveKID()}
	if code != http.StatusOK || h != want || want.SigningKey == "" {
		t.Fatalf("healthz: %d %+v, want 200 %+v", code, h, want)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", hdr)
	}
	resp, err := http.Post(f.url+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
}

func TestHealth_UnavailableWhileTheStoreIsDown(t *testing.T) {
	f, o := newOutageFixture(t)
	o.down.Store(true)
	code, h, hdr := getHealth(t, f)
	if code != http.StatusServiceUnavailable || h.Status != "unavailable" || h.Store != "unreachable" || h.SigningKey != f.keys.ActiveKID() || hdr.Get("Retry-After") == "" {
		t.Fatalf("healthz during an outage: %d %+v %v", code, h, hdr)
	}
	o.down.Store(false)
	if code, h, _ := getHealth(t, f); code != http.StatusOK || h.Status != "ok" {
		t.Fatalf("healthz after the outage: %d %+v", code, h)
	}
}

// hangingStore is a store whose health probe never answers, as a database
// that accepts connections but stalls does.
type hangingStore struct{ *outageStore }

func (h hangingStore) Revoked(ctx context.Context, ids ...string) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func TestHealth_AStalledStoreIsUnavailableWithinTheTimeout(t *testing.T) {
	f := newFixture(t, withConfig(func(c *Config, _ *identity.Domain) {
		c.Store = hangingStore{&outageStore{Store: c.Store}}
	}))
	f.iss.healthTimeout = 50 * time.Millisecond
	code, h, _ := getHealth(t, f)
	if code != http.StatusServiceUnavailable || h.Store != "unreachable" {
		t.Fatalf("healthz with a stalled store: %d %+v", code, h)
	}
}

func TestOwns_PathsUnderAnIssuerPathButNotBesideIt(t *testing.T) {
	f := newFixture(t, withConfig(func(_ *Config, d *identity.Domain) { d.Issuer += "/auth" }))
	for p, want := range map[string]bool{
		"/auth/token": true, "/auth/healthz": true, "/auth/nope": true, "/auth": true, "/auth/": true,
		"/.well-known/oauth-authorization-server/auth": true,
		"/authx/token": false, "/token": false, "/healthz": false, "/": false,
	} {
		if got := f.iss.Owns(httptest.NewRequest(http.MethodGet, p, nil)); got != want {
			t.Errorf("Owns(%s) = %v, want %v", p, got, want)
		}
	}
	root := newFixture(t)
	for p, want := range map[string]bool{"/token": true, "/healthz": true, "/nope": false, "/": false, "/app/token": false} {
		if got := root.iss.Owns(httptest.NewRequest(http.MethodGet, p, nil)); got != want {
			t.Errorf("root issuer: Owns(%s) = %v, want %v", p, got, want)
		}
	}
}
