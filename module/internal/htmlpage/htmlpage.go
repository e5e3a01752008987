package htmlpage

import (
	"net/http"
	"strings"
)

// CSP is the Content-Security-Policy of a Gatehouse page: nothing loads but
// inline styles, forms post to the page's own origin and the given extra
// sources (already validated origins), no site may frame it, and <base> is
// refused.
func CSP(formAction ...string) string {
	action := "'self'"
	if len(formAction) > 0 {
		action += " " + strings.Join(formAction, " ")
	}
	return "default-src 'none'; style-src 'unsafe-inline'; form-action " + action + "; frame-ancestors 'none'; base-uri 'none'"
}

// SetHeaders sets the headers of an HTML page: text/html in UTF-8, not
// stored (pages name the user or carry CSRF tokens), CSP() with
// frame-ancestors 'none' and X-Frame-Options DENY against clickjacking,
// nosniff, and no Referer to the pages it links to. Callers with forms that
// post elsewhere set their own Content-Security-Policy from CSP afterwards.
func SetHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP())
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
