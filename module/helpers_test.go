package module

import (
	"encoding/json"
	"testing"
)

func caddyJSONUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestHeaderValueRendersClaimsWithoutControlCharacters(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"alice", "alice"},
		{"evil\r\nX-Admin: 1", "evilX-Admin: 1"},
		{true, "true"},
		{float64(42), "42"},
		{2.5, "2.5"},
		{[]any{"admins", "dev", float64(3)}, "admins,dev,3"},
		{map[string]any{"country": "NL"}, `{"country":"NL"}`},
		{nil, ""},
	}
	for _, c := range cases {
		if got := headerValue(c.in); got != c.want {
			t.Errorf("headerValue(%#v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLookupClaimReachesIntoObjects(t *testing.T) {
	claims := map[string]any{"address": map[string]any{"country": "NL"}, "a.b": "literal"}
	if v, ok := lookupClaim(claims, "address.country"); !ok || v != "NL" {
		t.Errorf("address.country = %v %v", v, ok)
	}
	if v, ok := lookupClaim(claims, "a.b"); !ok || v != "literal" {
		t.Errorf("a literal dotted key wins: %v %v", v, ok)
	}
	if _, ok := lookupClaim(claims, "address.city"); ok {
		t.Error("missing nested claim found")
	}
}

func TestSubjectKind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		claims   map[string]any
		embedded bool
		want     string
	}{
		{"embedded client_credentials marker", map[string]any{"sub": "svc", "client_id": "svc", "gty": "client_credentials"}, true, "client"},
		{"embedded user", map[string]any{"sub": "alice", "client_id": "webapp"}, true, "user"},
		// The embedded issuer always marks its clients' tokens; without
		// the marker sub == client_id is not taken as a client there.
		{"embedded, unmarked sub == client_id", map[string]any{"sub": "x", "client_id": "x"}, true, "user"},
		{"external, sub == client_id (RFC 9068)", map[string]any{"sub": "app", "client_id": "app"}, false, "client"},
		{"external, Auth0 gty", map[string]any{"sub": "app@clients", "client_id": "app", "gty": "client-credentials"}, false, "client"},
		{"external user", map[string]any{"sub": "u1", "client_id": "app"}, false, "user"},
		{"external, no client_id", map[string]any{"sub": "u1"}, false, "user"},
	} {
		sub, _ := tc.claims["sub"].(string)
		if got := subjectKind(tc.claims, sub, tc.embedded); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
