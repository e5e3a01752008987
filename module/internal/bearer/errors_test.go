package bearer

import (
	"strings"
	"testing"
)

func TestWWWAuthenticate(t *testing.T) {
	tests := []struct {
		name  string
		err   *Error
		realm string
		want  string
	}{
		{"invalid_token renders error and description", &Error{Code: CodeInvalidToken, Description: "the token has expired"}, "api",
			`Bearer realm="api", error="invalid_token", error_description="the token has expired"`},
		{"insufficient_scope carries the scope", &Error{Code: CodeInsufficientScope, Description: "the token lacks the required scope", Scope: "orders:read  orders:write"}, "api",
			`Bearer realm="api", error="insufficient_scope", error_description="the token lacks the required scope", scope="orders:read orders:write"`},
		{"quotes in the realm are escaped", &Error{Code: CodeInvalidToken}, `a"b\c`, `Bearer realm="a\"b\\c", error="invalid_token"`},
		{"CR LF never reach the header", &Error{Code: CodeInvalidToken, Description: "bad\r\nSet-Cookie: x=1"}, "r\r\nX: y",
			`Bearer realm="r??X: y", error="invalid_token", error_description="bad??Set-Cookie: x=1"`},
		{"quotes in the description are replaced", &Error{Code: CodeInvalidToken, Description: `say "hi" \ bye`}, "",
			`Bearer error="invalid_token", error_description="say 'hi' / bye"`},
		{"non-ASCII is replaced", &Error{Code: CodeInvalidToken, Description: "café"}, "",
			`Bearer error="invalid_token", error_description="caf??"`},
		{"scope is not rendered for invalid_token", &Error{Code: CodeInvalidToken, Scope: "a"}, "", `Bearer error="invalid_token"`},
		{"forbidden scope characters are dropped", &Error{Code: CodeInsufficientScope, Scope: `a"b c\d`}, "", `Bearer error="insufficient_scope", scope="ab cd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.WWWAuthenticate(tt.realm)
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if strings.ContainsAny(got, "\r\n\x00") {
				t.Fatal("control characters in header value")
			}
		})
	}
	if got := Challenge("api"); got != `Bearer realm="api"` {
		t.Fatalf("Challenge: %s", got)
	}
}

func TestErrorStatus(t *testing.T) {
	for code, want := range map[string]int{CodeInvalidToken: 401, CodeInsufficientScope: 403, CodeInvalidRequest: 400} {
		if got := (&Error{Code: code}).Status(); got != want {
			t.Errorf("%s: %d, want %d", code, got, want)
		}
	}
	e := &Error{Code: CodeInvalidToken, Description: "d", Reason: "r"}
	if e.Error() != "bearer: invalid_token: r" {
		t.Fatal(e.Error())
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"Bearer abc==", "abc==", true},
		{"Bearer a+b/c~d_e-f.g", "a+b/c~d_e-f.g", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearerabc", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer a b", "", false},
		{"Bearer =abc", "", false},
		{"Bearer ab=c", "", false},
		{"Bearer a\"b", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		tok, ok := BearerToken(tt.in)
		if tok != tt.tok || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.in, tok, ok, tt.tok, tt.ok)
		}
	}
}
