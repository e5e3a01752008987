package module

import (
	"bytes"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

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
