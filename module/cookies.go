package module

import (
	"net/http"
	"strings"
)

// Cookie names: a gate's are these followed by its audience's tag
// (rp.Audience.Tag); stripGatehouseCookies removes every one of them.
const (
	sessionCookiePrefix = "gatehouse-"
	loginCookiePrefix   = "gatehouse-login-"
)

// stripGatehouseCookies removes every Gatehouse cookie from the request
// that goes upstream, keeping the app's own cookies byte for byte.
func stripGatehouseCookies(r *http.Request) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		parts := strings.Split(line, ";")
		out := parts[:0]
		for _, p := range parts {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.HasPrefix(name, "gatehouse") || strings.HasPrefix(name, "__Host-gatehouse") {
				continue
			}
			out = append(out, p)
		}
		if len(out) > 0 {
			kept = append(kept, strings.TrimLeft(strings.Join(out, ";"), " "))
		}
	}
	r.Header.Del("Cookie")
	for _, k := range kept {
		r.Header.Add("Cookie", k)
	}
}
