package htmlpage

import (
	"net/http"
	"testing"
)

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Security-Policy", "default-src *")
	SetHeaders(h)
	for k, want := range map[string]string{
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestCSPWithFormTargets(t *testing.T) {
	want := "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://app.example.com; frame-ancestors 'none'; base-uri 'none'"
	if got := CSP("https://app.example.com"); got != want {
		t.Fatalf("CSP = %q", got)
	}
}
