package module

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatePagesEscapeWhatTheyShow: the account name (a claim the user may
// choose) and the provider's error_description are text, never markup.
func TestGatePagesEscapeWhatTheyShow(t *testing.T) {
	const evil = `<script>alert(1)</script>"'`
	for name, render := range map[string]func(w http.ResponseWriter) error{
		"denied": func(w http.ResponseWriter) error {
			return writePage(w, 403, deniedPage, deniedView{Account: evil, Policies: []string{evil}, Switch: &switchForm{Action: "/.gatehouse/logout", CSRF: evil, Return: evil}}, "")
		},
		"login failed": func(w http.ResponseWriter) error {
			return writePage(w, 403, loginFailedPage, loginFailedView{Heading: "Sign-in refused", Message: "m", Detail: evil, Retry: "/", RetryText: "Try signing in again"}, "")
		},
	} {
		rec := httptest.NewRecorder()
		if err := render(rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body := rec.Body.String()
		if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("%s page does not escape: %s", name, body)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(body, `<html lang="en">`) {
			t.Errorf("%s page: headers %v", name, rec.Header())
		}
	}
}

func TestAccountName(t *testing.T) {
	for _, tc := range []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"preferred_username": "alice", "email": "a@example.com"}, "alice"},
		{map[string]any{"preferred_username": " ", "email": "a@example.com"}, "a@example.com"},
		{map[string]any{"email": 7}, "sub-1"},
		{nil, "sub-1"},
	} {
		if got := accountName(tc.claims, "sub-1"); got != tc.want {
			t.Errorf("accountName(%v) = %q, want %q", tc.claims, got, tc.want)
		}
	}
}
