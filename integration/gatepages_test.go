package integration

import (
	"strings"
	"testing"
)

// securityHeaders are the response headers every HTML page Gatehouse
// renders carries.
var securityHeaders = []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control"}

// TestGate_AccessDeniedPageCannotBeFramed is the regression test for the
// gate's 403 page lacking the issuer's page headers: without
// frame-ancestors / X-Frame-Options another site could frame it (and its
// sign-out link) under a decoy. Every page Gatehouse renders carries the
// same security headers as the issuer's.
func TestGate_AccessDeniedPageCannotBeFramed(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "mallory")
	resp, body := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 403 || !strings.Contains(body, "Access denied") {
		t.Fatalf("policy denial: %d %q", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("403 page Content-Security-Policy %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("403 page X-Frame-Options %q, X-Content-Type-Options %q", resp.Header.Get("X-Frame-Options"), resp.Header.Get("X-Content-Type-Options"))
	}
	// The same headers as the issuer's own error page.
	issuerPage, _ := do(t, nil, "GET", env.issuer+"/authorize?client_id=nobody&response_type=code", nil)
	if ct := issuerPage.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("the issuer's error page is %q", ct)
	}
	for _, h := range securityHeaders {
		if got, want := resp.Header.Get(h), issuerPage.Header.Get(h); got != want || want == "" {
			t.Errorf("%s: gate page %q, issuer page %q", h, got, want)
		}
	}
}
