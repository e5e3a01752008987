package module

import (
	"net/http"
	"testing"
)

func TestStripGatehouseCookiesKeepsTheAppsCookies(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Add("Cookie", "app=1; gatehouse=sealed; __Host-gatehouse.1=more; theme=dark")
	r.Header.Add("Cookie", "__Host-gatehouse-sso=x; gatehouse-1a2b3c4d=s; gatehouse-1a2b3c4d.1=t; __Host-gatehouse-login-1a2b3c4d=p")
	stripGatehouseCookies(r)
	got := r.Header.Values("Cookie")
	if len(got) != 1 || got[0] != "app=1; theme=dark" {
		t.Fatalf("cookies = %q", got)
	}
}
