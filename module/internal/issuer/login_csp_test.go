package issuer

import (
	"strings"
	"testing"
)

// Regression: with form-action 'self' alone, Chromium blocked the redirect
// chain login POST → 303 → client callback on another origin, so no real
// browser could finish signing in (Go's HTTP client ignores CSP, which is
// why only the headless-browser test caught it).
func TestLoginCSPAllowsTheRegisteredRedirectOrigin(t *testing.T) {
	cases := map[string]string{
		"https://app.example.com/cb":   "form-action 'self' https://app.example.com;",
		"http://127.0.0.1:8080/cb":     "form-action 'self' http://127.0.0.1:8080;",
		"com.example.app:/oauth2redir": "form-action 'self';",
	}
	for uri, want := range cases {
		if got := loginCSP(uri); !strings.Contains(got, want) {
			t.Errorf("loginCSP(%q) = %q, want it to contain %q", uri, got, want)
		}
	}
}
