package rp

import "net/url"

// MaxReturnPathLen bounds the return path kept across a login.
const MaxReturnPathLen = 2048

// SafeReturnPath returns s when it is a path on this site that is safe to
// redirect to after login, and "/" otherwise. Accepted: printable ASCII only
// (no spaces, tabs, CR/LF or other control or non-ASCII bytes — browsers
// silently drop tabs and newlines, turning "/\t/evil.com" into
// "//evil.com"), starting with exactly one "/" that is not followed by "/"
// or "\" (a scheme-relative URL, which browsers also spell with
// backslashes), at most MaxReturnPathLen bytes, and passing the same checks
// after each of up to three rounds of percent-decoding, so encoded forms
// such as "/%2F%2Fevil.com" or "/%5Cevil.com" are refused even though they
// would only be dangerous to an app that decodes and redirects again.
func SafeReturnPath(s string) string {
	if len(s) > MaxReturnPathLen || !safePathLayer(s) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	d := s
	for range 3 {
		next, err := url.PathUnescape(d)
		if err != nil {
			return "/"
		}
		if next == d {
			break
		}
		if !safePathLayer(next) {
			return "/"
		}
		d = next
	}
	return s
}

// safePathLayer applies the syntactic rules to one decoding layer.
func safePathLayer(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
