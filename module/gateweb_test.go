package module

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// TestSessionCheckRefusesAnotherAudience: the gate's cookie keys are bound
// to its audience, and the sealed session names the audience too; a
// session that opened but names another domain, issuer or client (a bug
// in the key binding, or a cookie sealed by a gate of another audience
// with the same keys) is still refused.
func TestSessionCheckRefusesAnotherAudience(t *testing.T) {
	now := time.Now()
	web := &gateWeb{audience: rp.Audience{Domain: "", Issuer: "https://auth.example.com", Client: "webapp"}}
	ok := rp.Session{ID: "s1", Subject: "alice", Audience: web.audience, SessionExpiry: now.Add(time.Hour)}
	if err := web.check(&ok, now); err != nil {
		t.Fatalf("a session of this gate's audience: %v", err)
	}
	for name, a := range map[string]rp.Audience{
		"another domain":           {Domain: "tenant2", Issuer: web.audience.Issuer, Client: "webapp"},
		"another issuer":           {Issuer: "https://t2.example.com", Client: "webapp"},
		"another client":           {Issuer: web.audience.Issuer, Client: "admin-console"},
		"no audience (old cookie)": {},
	} {
		s := ok
		s.Audience = a
		if err := web.check(&s, now); !errors.Is(err, errSessionOtherAudience) {
			t.Errorf("%s: %v, want errSessionOtherAudience", name, err)
		}
	}
}

// TestLogoutIntended: only requests the browser marks as coming from the
// site itself (or typed by the user), or POSTs with the confirmation
// page's token, log out at once.
func TestLogoutIntended(t *testing.T) {
	keys, err := seal.NewKeys([][]byte{bytes.Repeat([]byte{7}, seal.SecretSize)})
	if err != nil {
		t.Fatal(err)
	}
	web := &gateWeb{keys: keys.Bind("aud")}
	s := &rp.Session{ID: "sid-1"}
	mac, _ := web.keys.MAC(logoutPurpose, []byte(s.ID))
	token := base64.RawURLEncoding.EncodeToString(mac)
	other, _ := web.keys.MAC(logoutPurpose, []byte("sid-2"))
	for _, tc := range []struct {
		name, method, site, body string
		want                     bool
	}{
		{"same-origin GET (the site's sign-out link)", "GET", "same-origin", "", true},
		{"same-site GET", "GET", "same-site", "", true},
		{"typed URL", "GET", "none", "", true},
		{"cross-site GET", "GET", "cross-site", "", false},
		{"GET without Sec-Fetch-Site", "GET", "", "", false},
		{"HEAD", "HEAD", "same-origin", "", false},
		{"PUT", "PUT", "same-origin", "csrf=" + token, false},
		{"POST with the page's token", "POST", "", "csrf=" + token, true},
		{"cross-site POST with the page's token", "POST", "cross-site", "csrf=" + token, true},
		{"cross-site POST without a token", "POST", "cross-site", "", false},
		{"POST with another session's token", "POST", "", "csrf=" + base64.RawURLEncoding.EncodeToString(other), false},
		{"POST with a garbled token", "POST", "", "csrf=%%%", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/.gatehouse/logout", strings.NewReader(tc.body))
			if tc.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.site != "" {
				r.Header.Set("Sec-Fetch-Site", tc.site)
			}
			if got := web.logoutIntended(httptest.NewRecorder(), r, s); got != tc.want {
				t.Fatalf("logoutIntended = %v, want %v", got, tc.want)
			}
		})
	}
}
