package issuer

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
)

// RFC 6749 / 7009 / 8707 / OIDC error codes.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrInvalidTarget           = "invalid_target"
	ErrAccessDenied            = "access_denied"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrServerError             = "server_error"
	ErrLoginRequired           = "login_required"
	ErrRequestNotSupported     = "request_not_supported"
	ErrRequestURINotSupported  = "request_uri_not_supported"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrInvalidToken            = "invalid_token"
	// ErrTemporarilyUnavailable: the issuer cannot answer now (its store is
	// unreachable) and has done nothing; the client should retry after the
	// Retry-After header's seconds. Sent with 503.
	ErrTemporarilyUnavailable = "temporarily_unavailable"
)

// OAuthError is an RFC 6749 error response.
type OAuthError struct {
	// Code is the RFC 6749 error code (invalid_grant, ...).
	Code string `json:"error"`
	// Description is a human-readable explanation without CR/LF.
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status; 0 means 400 (401 for invalid_client).
	Status int `json:"-"`
}

// Error implements error.
func (e *OAuthError) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// HTTPStatus is the status the error is written with.
func (e *OAuthError) HTTPStatus() int {
	switch {
	case e.Status != 0:
		return e.Status
	case e.Code == ErrInvalidClient:
		return http.StatusUnauthorized
	case e.Code == ErrServerError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func oauthErr(code, desc string) *OAuthError {
	return &OAuthError{Code: code, Description: desc}
}

// retryAfter is the Retry-After (seconds) of every 503 answer: long enough
// for a database failover, short enough that a retrying client is not kept
// waiting long.
const retryAfter = "5"

// unavailable is the answer to a request the store could not serve: 503
// temporarily_unavailable, with Retry-After. A store error is never taken
// for "not found" or "nothing to do": the client is told that nothing
// happened and that it should retry.
func unavailable(desc string) *OAuthError {
	return &OAuthError{Code: ErrTemporarilyUnavailable, Description: desc, Status: http.StatusServiceUnavailable}
}

// cleanDescription keeps only the characters RFC 6749 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E): no CR/LF, quotes or
// backslashes can reach a header or a log line.
func cleanDescription(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			ok = false
			break
		}
	}
	if ok && len(s) <= 512 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 512; i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c < 0x20 || c > 0x7e || c == '\\':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// noStore sets the cache headers every token-bearing response needs.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeOAuthError is the one writer of RFC 6749 JSON errors.
func (i *Issuer) writeOAuthError(w http.ResponseWriter, e *OAuthError) {
	h := w.Header()
	noStore(h)
	h.Set("Content-Type", "application/json")
	status := e.HTTPStatus()
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="`+cleanDescription(i.issuer)+`", charset="UTF-8"`)
	}
	if status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "POST")
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfter)
	}
	out := OAuthError{Code: e.Code, Description: cleanDescription(e.Description)}
	body, _ := json.Marshal(out)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSON writes a 200 JSON response.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// writeBearerError answers a protected-resource request (userinfo) per
// RFC 6750 section 3.
func writeBearerError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	noStore(h)
	v := `Bearer`
	if code != "" {
		v += ` error="` + code + `", error_description="` + cleanDescription(desc) + `"`
	}
	h.Set("WWW-Authenticate", v)
	h.Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	if code != "" {
		body, _ := json.Marshal(OAuthError{Code: code, Description: cleanDescription(desc)})
		_, _ = w.Write(body)
	}
}

// htmlHeaders sets the security headers of every HTML page (the same as
// the gate's pages).
func htmlHeaders(h http.Header) { htmlpage.SetHeaders(h) }

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Code}}<p><code>{{.Code}}</code></p>{{end}}</body></html>
`))

// writeErrorPage renders an HTML error page; used when no redirect is safe.
func writeErrorPage(w http.ResponseWriter, status int, title, message, code string) {
	htmlHeaders(w.Header())
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct{ Title, Message, Code string }{title, message, code})
}
