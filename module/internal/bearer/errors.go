package bearer

import (
	"errors"
	"net/http"
	"strings"
)

// RFC 6750 section 3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Error is a bearer-token failure. Description is safe to show to the client (it never
// contains token contents); Reason is meant for the audit log and may name header or
// claim values (quoted and truncated), never the token itself.
type Error struct {
	// Code is one of CodeInvalidToken, CodeInsufficientScope, CodeInvalidRequest.
	Code string
	// Description is a short human-readable explanation, safe to return to the client.
	Description string
	// Scope lists the scopes the resource requires (space-separated), set for
	// insufficient_scope.
	Scope string
	// Reason is the precise cause, for logs.
	Reason string
}

// ErrKeysUnavailable is what Validate's error wraps, beside its *Error,
// when the key set could not be read: the token was neither accepted nor
// refused on its merits (an issuer checking its own tokens answers 503, not
// "invalid token").
var ErrKeysUnavailable = errors.New("bearer: the signing keys could not be read")

// descKeysUnavailable is the Description of the *Error of a key set that
// could not be read.
const descKeysUnavailable = "the token could not be verified"

// keysUnavailable is Validate's error when the key set could not be read:
// errors.As finds the *Error, errors.Is finds ErrKeysUnavailable. (A field
// on Error would make every refusal allocate more.)
type keysUnavailable struct{ e *Error }

func (k keysUnavailable) Error() string   { return k.e.Error() }
func (k keysUnavailable) Unwrap() []error { return []error{k.e, ErrKeysUnavailable} }

// Error implements error.
func (e *Error) Error() string {
	if e.Reason != "" {
		return "bearer: " + e.Code + ": " + e.Reason
	}
	return "bearer: " + e.Code + ": " + e.Description
}

// Status returns the HTTP status for the error: 403 for insufficient_scope, 400 for
// invalid_request and 401 otherwise.
func (e *Error) Status() int {
	switch e.Code {
	case CodeInsufficientScope:
		return http.StatusForbidden
	case CodeInvalidRequest:
		return http.StatusBadRequest
	default:
		return http.StatusUnauthorized
	}
}

// WWWAuthenticate renders the RFC 6750 WWW-Authenticate header value for the error,
// for example `Bearer realm="api", error="invalid_token", error_description="the token has expired"`.
// Every value is sanitised: no CR/LF or other control characters can appear, quotes are
// escaped in the realm and removed from the description and scope (RFC 6750 forbids them).
func (e *Error) WWWAuthenticate(realm string) string {
	var b strings.Builder
	b.Grow(64 + len(realm) + len(e.Description) + len(e.Scope))
	b.WriteString("Bearer")
	sep := " "
	if realm != "" {
		b.WriteString(sep)
		b.WriteString(`realm="`)
		writeQuotedRealm(&b, realm)
		b.WriteByte('"')
		sep = ", "
	}
	if e.Code != "" {
		b.WriteString(sep)
		b.WriteString(`error="`)
		writeRestricted(&b, e.Code, false)
		b.WriteByte('"')
		sep = ", "
	}
	if e.Description != "" {
		b.WriteString(sep)
		b.WriteString(`error_description="`)
		writeRestricted(&b, e.Description, true)
		b.WriteByte('"')
		sep = ", "
	}
	if e.Code == CodeInsufficientScope && e.Scope != "" {
		b.WriteString(sep)
		b.WriteString(`scope="`)
		writeScope(&b, e.Scope)
		b.WriteByte('"')
	}
	return b.String()
}

// Challenge renders the WWW-Authenticate value for a request that carried no bearer
// token at all (RFC 6750 section 3.1: no error code in that case).
func Challenge(realm string) string {
	return (&Error{}).WWWAuthenticate(realm)
}

// b64tokenChar marks the characters of RFC 6750 b64token except the "=" padding.
var b64tokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// BearerToken extracts the token from an Authorization header value. The scheme is
// matched case-insensitively; the token must be a non-empty RFC 6750 b64token. ok is
// false when the header is not a well-formed bearer credential.
func BearerToken(authorization string) (token string, ok bool) {
	const scheme = "bearer"
	if len(authorization) <= len(scheme)+1 || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return "", false
	}
	rest := authorization[len(scheme):]
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	tok := strings.Trim(rest, " \t")
	if tok == "" {
		return "", false
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	i := 0
	for i < len(tok) && b64tokenChar[tok[i]] {
		i++
	}
	if i == 0 {
		return "", false
	}
	for j := i; j < len(tok); j++ {
		if tok[j] != '=' {
			return "", false
		}
	}
	return tok, true
}

// writeQuotedRealm writes s as the content of an RFC 9110 quoted-string: printable ASCII
// and spaces kept, '"' and '\' escaped, everything else replaced by '?'.
func writeQuotedRealm(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f || c == '\t':
			b.WriteByte(c)
		default:
			b.WriteByte('?')
		}
	}
}

// writeRestricted writes s keeping only the RFC 6750 error / error_description
// characters %x20-21 / %x23-5B / %x5D-7E; a double quote becomes a single quote.
func writeRestricted(b *strings.Builder, s string, allowSpace bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c == ' ' && !allowSpace:
			b.WriteByte('_')
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteByte('?')
		}
	}
}

// writeScope writes a space-separated list of RFC 6749 scope-tokens (%x21 / %x23-5B /
// %x5D-7E), collapsing runs of whitespace and dropping forbidden characters.
func writeScope(b *strings.Builder, s string) {
	first := true
	for _, f := range strings.Fields(s) {
		var ok bool
		for i := 0; i < len(f); i++ {
			if scopeChar(f[i]) {
				ok = true
				break
			}
		}
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		for i := 0; i < len(f); i++ {
			if scopeChar(f[i]) {
				b.WriteByte(f[i])
			}
		}
	}
}

func scopeChar(c byte) bool { return c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e }

func invalidToken(desc, reason string) *Error {
	return &Error{Code: CodeInvalidToken, Description: desc, Reason: reason}
}
