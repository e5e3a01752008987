package rp

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnPath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain path is kept", "/orders", "/orders"},
		{"path with query and fragment is kept", "/a/b?x=1&y=%2F#top", "/a/b?x=1&y=%2F#top"},
		{"root is kept", "/", "/"},
		{"encoded slash inside the path is kept", "/files/a%2Fb", "/files/a%2Fb"},
		{"query containing a URL is kept", "/go?next=https://evil.com", "/go?next=https://evil.com"},
		{"empty becomes root", "", "/"},
		{"scheme-relative URL is refused", "//evil.com", "/"},
		{"scheme-relative URL with path is refused", "//evil.com/x", "/"},
		{"backslash scheme-relative URL is refused", "/\\evil.com", "/"},
		{"double backslash is refused", "\\\\evil.com", "/"},
		{"absolute https URL is refused", "https://evil.com", "/"},
		{"absolute URL with path is refused", "https://evil.com/", "/"},
		{"javascript URL is refused", "javascript:alert(1)", "/"},
		{"data URL is refused", "data:text/html,hi", "/"},
		{"relative path is refused", "orders", "/"},
		{"tab between slashes is refused", "/\t/evil.com", "/"},
		{"newline between slashes is refused", "/\n/evil.com", "/"},
		{"CRLF header injection is refused", "/x\r\nSet-Cookie: a=b", "/"},
		{"NUL is refused", "/x\x00", "/"},
		{"space is refused", "/a b", "/"},
		{"non-ASCII is refused", "/caf\u00e9", "/"},
		{"DEL is refused", "/x\x7f", "/"},
		{"encoded double slash is refused", "/%2F%2Fevil.com", "/"},
		{"encoded second slash is refused", "/%2Fevil.com", "/"},
		{"lowercase encoded slash is refused", "/%2fevil.com", "/"},
		{"encoded backslash is refused", "/%5Cevil.com", "/"},
		{"double-encoded slash is refused", "/%252F%252Fevil.com", "/"},
		{"encoded CRLF is refused", "/x%0d%0aSet-Cookie:a=b", "/"},
		{"encoded tab is refused", "/%09/evil.com", "/"},
		{"fully encoded scheme-relative URL is refused", "%2F%2Fevil.com", "/"},
		{"invalid escape is refused", "/x%zz", "/"},
		{"userinfo-looking scheme-relative is refused", "//user@evil.com", "/"},
		{"overlong path is refused", "/" + strings.Repeat("a", MaxReturnPathLen), "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SafeReturnPath(tt.in); got != tt.want {
				t.Fatalf("SafeReturnPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzSafeReturnPath checks that whatever comes in, what goes out is "/" or
// the input, and resolves to the same site.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil.com", "/\\evil", "https://e", "/%2F%2Fe", "/\t/e", "/%252F"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example.com/some/page")
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeReturnPath(s)
		if got != "/" && got != s {
			t.Fatalf("SafeReturnPath(%q) = %q: neither input nor /", s, got)
		}
		if len(got) < 1 || got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("unsafe result %q", got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] <= ' ' || got[i] >= 0x7f {
				t.Fatalf("result %q has byte %#x", got, got[i])
			}
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("result %q does not parse: %v", got, err)
		}
		if u := base.ResolveReference(ref); u.Host != base.Host || u.Scheme != base.Scheme {
			t.Fatalf("result %q resolves to %s", got, u)
		}
	})
}
