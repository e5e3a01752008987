package rp

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSessionHelpers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Session{RefreshToken: "rt", Expiry: t0.Add(5 * time.Minute), SessionExpiry: t0.Add(8 * time.Hour)}
	if s.NeedsRefresh(t0, time.Minute) {
		t.Error("fresh token needs refresh")
	}
	if !s.NeedsRefresh(t0.Add(4*time.Minute+30*time.Second), time.Minute) {
		t.Error("token within skew of expiry does not need refresh")
	}
	s.RefreshToken = ""
	if s.NeedsRefresh(t0.Add(time.Hour), time.Minute) {
		t.Error("session without refresh token claims to need refresh")
	}
	if s.Ended(t0) || !s.Ended(t0.Add(8*time.Hour)) {
		t.Error("Ended wrong around SessionExpiry")
	}
}

func TestRefreshSkewIsAQuarterOfTheLifetimeAtMost(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		obtained time.Time
		lifetime time.Duration
		want     time.Duration
	}{
		{"a 30s token refreshes 7.5s before expiry, not on every request", t0, 30 * time.Second, 7500 * time.Millisecond},
		{"a 1h token refreshes max before expiry", t0, time.Hour, 30 * time.Second},
		{"a session sealed before Obtained existed uses max", time.Time{}, 30 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{Obtained: tc.obtained, Expiry: t0.Add(tc.lifetime), RefreshToken: "r"}
			if got := s.RefreshSkew(30 * time.Second); got != tc.want {
				t.Fatalf("RefreshSkew = %v, want %v", got, tc.want)
			}
			if s.NeedsRefresh(t0.Add(tc.lifetime-tc.want-time.Second), tc.want) {
				t.Error("needs refresh before the skew")
			}
			if !s.NeedsRefresh(t0.Add(tc.lifetime-tc.want), tc.want) {
				t.Error("does not need refresh at the skew")
			}
		})
	}
}

func TestAudienceStringAndTag(t *testing.T) {
	// Quoting keeps fields apart: moving text between them changes the string.
	x := Audience{Domain: `a" "b`, Issuer: "c", Client: "d"}
	y := Audience{Domain: "a", Issuer: `b" "c`, Client: "d"}
	if x.String() == y.String() || x.Tag() == y.Tag() {
		t.Fatalf("%s and %s collide", x, y)
	}
	tag := Audience{Issuer: "https://auth.example.com", Client: "webapp"}.Tag()
	if len(tag) != 8 || strings.Trim(tag, "0123456789abcdef") != "" {
		t.Fatalf("tag %q is not 8 hex digits", tag)
	}
	if err := (&http.Cookie{Name: "gatehouse-" + tag, Value: "v"}).Valid(); err != nil {
		t.Fatal("a tagged cookie name is not a valid cookie name")
	}
}
