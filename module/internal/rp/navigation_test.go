package rp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

func TestIsNavigation(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"browser page load is a navigation", "GET", map[string]string{"Accept": browserAccept, "Sec-Fetch-Mode": "navigate"}, true},
		{"HEAD page load is a navigation", "HEAD", map[string]string{"Accept": "text/html"}, true},
		{"browser without fetch metadata is a navigation", "GET", map[string]string{"Accept": "TEXT/HTML; charset=utf-8"}, true},
		{"POST is not a navigation", "POST", map[string]string{"Accept": browserAccept}, false},
		{"PUT is not a navigation", "PUT", map[string]string{"Accept": browserAccept}, false},
		{"request with bearer token is not a navigation", "GET", map[string]string{"Accept": browserAccept, "Authorization": "Bearer x"}, false},
		{"XHR is not a navigation", "GET", map[string]string{"Accept": browserAccept, "X-Requested-With": "XMLHttpRequest"}, false},
		{"fetch in cors mode is not a navigation", "GET", map[string]string{"Accept": browserAccept, "Sec-Fetch-Mode": "cors"}, false},
		{"fetch in no-cors mode is not a navigation", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "no-cors"}, false},
		{"websocket upgrade is not a navigation", "GET", map[string]string{"Accept": "text/html", "Upgrade": "websocket", "Connection": "Upgrade"}, false},
		{"curl default accept is not a navigation", "GET", map[string]string{"Accept": "*/*"}, false},
		{"JSON client is not a navigation", "GET", map[string]string{"Accept": "application/json"}, false},
		{"missing accept is not a navigation", "GET", nil, false},
		{"html with zero quality is not a navigation", "GET", map[string]string{"Accept": "text/html;q=0, application/json"}, false},
		{"html with bad quality is not a navigation", "GET", map[string]string{"Accept": "text/html;q=abc"}, false},
		{"html with low quality is a navigation", "GET", map[string]string{"Accept": "application/json, text/html;q=0.1"}, true},
		{"text/htmlx is not html", "GET", map[string]string{"Accept": "text/htmlx"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := IsNavigation(r); got != tt.want {
				t.Fatalf("IsNavigation = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzIsNavigation(f *testing.F) {
	f.Add(browserAccept, "navigate")
	f.Add("text/html;q=0", "")
	f.Add("text/html;;q=;=", "cors")
	f.Fuzz(func(t *testing.T, accept, mode string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept", accept)
		r.Header.Set("Sec-Fetch-Mode", mode)
		nav := IsNavigation(r)
		if nav && !acceptsHTML([]string{accept}) {
			t.Fatal("navigation without html")
		}
		r.Method = http.MethodPost
		if IsNavigation(r) {
			t.Fatal("POST judged a navigation")
		}
	})
}
