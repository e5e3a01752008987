package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastCGIApp is a FastCGI application (net/http/fcgi, the protocol PHP-FPM
// speaks) behind Caddy's fastcgi transport, which joins repeated request
// headers into one HTTP_* variable. It records the Authorization it sees.
type fastCGIApp struct {
	addr  string
	mu    sync.Mutex
	auth  []string // Authorization values of the last request
	hits  atomic.Int64
	close func()
}

func newFastCGIApp(t *testing.T) *fastCGIApp {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &fastCGIApp{addr: l.Addr().String()}
	go fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		app.auth = r.Header.Values("Authorization")
		app.mu.Unlock()
		app.hits.Add(1)
		fmt.Fprintf(w, "app saw %q", r.Header.Values("Authorization"))
	}))
	t.Cleanup(func() { l.Close() })
	return app
}

func (a *fastCGIApp) lastAuthorization() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.auth
}

// TestGate_TwoAuthorizationHeadersAreRefused is the regression test for an
// upstream receiving credentials the gate never validated: a request with
// two Authorization headers had the first validated and both forwarded,
// and the FastCGI app read "Bearer <valid>, Bearer <forged>" (the forged
// part is whatever the app's own parser picks). A request with more than
// one Authorization header, or one header with several credentials, is now
// 400 invalid_request; the upstream gets exactly the credential the gate
// validated, and on a browser session no client Authorization at all.
func TestGate_TwoAuthorizationHeadersAreRefused(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	app := newFastCGIApp(t)
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	startCaddy(t, issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	gatehouse {
		login webapp
		bearer {
			audience https://api.example.com
		}
		forward X-Auth-Subject sub
	}
	reverse_proxy %s {
		transport fastcgi
	}
}`, env.app, app.addr)))
	valid := serviceToken(t, env, "orders:read")
	forged := strings.Join(strings.Split(valid, ".")[:2], ".") + ".Zm9yZ2Vk"
	send := func(c *http.Client, auth ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", env.app+"/index.php", nil)
		req.Header.Set("Accept", "application/json")
		req.Header["Authorization"] = auth
		if c == nil {
			c = &http.Client{Timeout: 10 * time.Second}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		return resp, b.String()
	}

	// One valid token (any case of the scheme): the app sees exactly it.
	if resp, body := send(nil, "bearer  "+valid); resp.StatusCode != 200 {
		t.Fatalf("one valid token: %d %q", resp.StatusCode, body)
	}
	if got := app.lastAuthorization(); len(got) != 1 || got[0] != "Bearer "+valid {
		t.Fatalf("the app saw Authorization %q, want exactly the validated token", got)
	}

	hits := app.hits.Load()
	for name, auth := range map[string][]string{
		"two headers, the valid one first":  {"Bearer " + valid, "Bearer " + forged},
		"two headers, the forged one first": {"Bearer " + forged, "Bearer " + valid},
		"several credentials in one header": {"Bearer " + valid + ", Bearer " + forged},
		"bearer and basic":                  {"Bearer " + valid, "Basic YWRtaW46YWRtaW4="},
	} {
		resp, body := send(nil, auth...)
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("%s: %d %q %q, want 400 invalid_request", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	if app.hits.Load() != hits {
		t.Fatalf("a request with several credentials reached the app, which saw %q", app.lastAuthorization())
	}

	// A browser session: the app gets no Authorization the client sent.
	b := loginAs(t, env, "alice")
	if resp, body := send(b, "Basic YWRtaW46YWRtaW4="); resp.StatusCode != 200 {
		t.Fatalf("session with a Basic header: %d %q", resp.StatusCode, body)
	}
	if got := app.lastAuthorization(); len(got) != 0 {
		t.Fatalf("on a session request the app saw the client's Authorization %q", got)
	}
	if resp, _ := send(b, "Basic YWRtaW46YWRtaW4=", "Basic b3RoZXI6b3RoZXI="); resp.StatusCode != 400 {
		t.Fatalf("session with two Authorization headers: %d, want 400", resp.StatusCode)
	}
}
