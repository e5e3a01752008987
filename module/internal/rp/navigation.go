package rp

import (
	"net/http"
	"strconv"
	"strings"
)

// IsNavigation reports whether r is a browser navigation that should be
// redirected to login when it has no session: a GET or HEAD that accepts
// text/html, carries no Authorization header, is not a WebSocket or other
// upgrade, is not marked as XHR (X-Requested-With) and, when the browser
// sends Sec-Fetch-Mode, has mode "navigate". Everything else is an API-style
// request and gets 401, never a redirect.
func IsNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	if h.Get("Authorization") != "" || h.Get("X-Requested-With") != "" || h.Get("Upgrade") != "" {
		return false
	}
	if m := h.Get("Sec-Fetch-Mode"); m != "" && !strings.EqualFold(strings.TrimSpace(m), "navigate") {
		return false
	}
	return acceptsHTML(h.Values("Accept"))
}

// acceptsHTML reports whether an Accept header lists text/html explicitly
// with a non-zero quality (a bare */* is what API clients send).
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			media, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(media), "text/html") {
				continue
			}
			if qualityZero(params) {
				continue
			}
			return true
		}
	}
	return false
}

func qualityZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err != nil || q <= 0
	}
	return false
}
