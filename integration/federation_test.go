package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// lockedBuffer collects a subprocess's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// referenceOP is the independent OpenID provider of integration/testdata/op
// (node oidc-provider, op.mjs) running as a subprocess on loopback. It signs
// everyone in as alice without asking.
type referenceOP struct {
	issuer string
	meta   struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
		EndSession    string `json:"end_session_endpoint"`
	}
	out *lockedBuffer
}

func referenceOPDir(t testing.TB) string {
	// .ci/deps-browser.sh installs its node packages (npm ci).
	return filepath.Join(repoRoot(t), "integration", "testdata", "op")
}

// startReferenceOP starts the reference OP on a free loopback port, with
// redirectURIs registered for its client "rp", and waits for its discovery
// document. The process is killed when the test ends.
func startReferenceOP(t *testing.T, node string, redirectURIs ...string) *referenceOP {
	t.Helper()
	port := freePort(t)
	op := &referenceOP{issuer: fmt.Sprintf("http://127.0.0.1:%d", port), out: &lockedBuffer{}}
	cmd := exec.Command(node, "op.mjs")
	cmd.Dir = referenceOPDir(t)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "REDIRECT_URIS="+strings.Join(redirectURIs, ","), "NODE_ENV=test")
	cmd.Stdout, cmd.Stderr = op.out, op.out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the reference OP: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Kill()
		<-exited
	})

	discovery := op.issuer + "/.well-known/openid-configuration"
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("the reference OP exited before it served discovery: %v\n%s", err, op.out.String())
		default:
		}
		if resp, err := http.Get(discovery); err == nil {
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&op.meta)
				resp.Body.Close()
				if err != nil || op.meta.Issuer != op.issuer {
					t.Fatalf("reference OP discovery: issuer %q (want %q), %v", op.meta.Issuer, op.issuer, err)
				}
				t.Logf("reference OP ready at %s after %v", op.issuer, time.Since(start).Round(time.Millisecond))
				return op
			}
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reference OP did not serve %s within 30s\n%s", discovery, op.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jwtHeader decodes the protected header of a compact JWS.
func jwtHeader(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFederation_LoginAndBearerWithReferenceOP puts the gate in front of an
// app with an independent, certified OpenID provider (node oidc-provider)
// as its login and as the issuer of its API tokens.
func TestFederation_LoginAndBearerWithReferenceOP(t *testing.T) {
	node := requireNodeTests(t, false, referenceOPDir(t))
	app := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	callback := app + "/.gatehouse/callback"
	op := startReferenceOP(t, node, callback)
	upstream := newRecorder(t)
	const api = "https://api.example.test" // the OP's audience for client_credentials tokens

	startCaddy(t, fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
	}
}

%s {
	handle {
		gatehouse {
			login {
				issuer %s
				client_id rp
				client_secret rp-secret
				scopes openid email profile offline_access
			}
			bearer {
				issuer %s
				audience %s
				scopes api:read
				typ at+jwt
			}
			forward X-Auth-Subject sub
			forward X-Auth-Email email
			forward X-Auth-Scope scope
		}
		reverse_proxy %s
	}
}`, filepath.Join(t.TempDir(), "gatehouse.db"), app, op.issuer, op.issuer, api, upstream.addr()))

	t.Run("a browser signs in through the provider and the upstream sees the user", func(t *testing.T) {
		start := time.Now()
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		var hops []string
		b := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
			if len(via) > 20 {
				return fmt.Errorf("more than 20 redirects: %v", hops)
			}
			return nil
		}}
		resp, body := do(t, b, "GET", app+"/dashboard?tab=1", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "X-Auth-Email": "spoof@evil.example"})
		if resp.StatusCode != 200 || body != "upstream saw /dashboard" || resp.Request.URL.String() != app+"/dashboard?tab=1" {
			t.Fatalf("sign-in ended at %s with %d %q\nhops: %v\nOP output:\n%s", resp.Request.URL, resp.StatusCode, body, hops, op.out.String())
		}
		if len(hops) < 3 || !strings.HasPrefix(hops[0], op.issuer+"/") || hops[len(hops)-2] != callback {
			t.Errorf("the sign-in did not go app → provider → gate callback → app: %v", hops)
		}
		h := upstream.header()
		if got := h.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream X-Auth-Subject = %q, want [alice]", got)
		}
		if got := h.Values("X-Auth-Email"); len(got) != 1 || got[0] != "alice@example.test" {
			t.Errorf("upstream X-Auth-Email = %q, want [alice@example.test] (the provider returns email for the email scope)", got)
		}
		if strings.Contains(h.Get("Cookie"), "gatehouse") {
			t.Errorf("a Gatehouse cookie reached the upstream: %q", h.Get("Cookie"))
		}
		// The session now carries API calls from the page without redirects.
		if resp, _ := do(t, b, "GET", app+"/api/me", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
			t.Errorf("an XHR with the session: %d", resp.StatusCode)
		}
		t.Logf("browser sign-in through the reference OP took %v (%d redirects)", time.Since(start).Round(time.Millisecond), len(hops))

		// Logout ends the gate's session and sends the browser to the
		// provider's end_session_endpoint (RP-initiated logout).
		noFollow := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, _ = do(t, noFollow, "GET", app+"/.gatehouse/logout", sameOrigin)
		loc, _ := resp.Location()
		if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), op.meta.EndSession+"?") || loc.Query().Get("id_token_hint") == "" {
			t.Errorf("logout: %d → %v, want a redirect to %s with id_token_hint", resp.StatusCode, loc, op.meta.EndSession)
		}
		if resp, _ := do(t, noFollow, "GET", app+"/api/me", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
			t.Errorf("an XHR after logout: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("bearer tokens from the provider", func(t *testing.T) {
		token := func(t *testing.T, scope string) string {
			t.Helper()
			cc := clientcredentials.Config{ClientID: "rp", ClientSecret: "rp-secret", TokenURL: op.meta.TokenEndpoint, Scopes: []string{scope}}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatalf("client_credentials at the reference OP: %v\n%s", err, op.out.String())
			}
			if typ := jwtHeader(t, tok.AccessToken)["typ"]; typ != "at+jwt" {
				t.Fatalf("the reference OP's access token has typ %v; the bearer block expects at+jwt", typ)
			}
			if c := jwtClaims(t, tok.AccessToken); c["iss"] != op.issuer || c["aud"] != api {
				t.Fatalf("the reference OP's access token: iss %v aud %v", c["iss"], c["aud"])
			}
			return tok.AccessToken
		}
		read := token(t, "api:read")
		readSub, _ := jwtClaims(t, read)["sub"].(string)
		for _, tc := range []struct {
			name       string
			token      string
			wantStatus int
			wantAuth   string // in WWW-Authenticate
		}{
			{name: "a client_credentials JWT with the required scope is accepted", token: read, wantStatus: 200},
			{name: "a token without the required scope is refused with insufficient_scope", token: token(t, "api:write"), wantStatus: 403, wantAuth: `error="insufficient_scope"`},
			{name: "a tampered token is refused", token: read[:len(read)-4] + "AAAA", wantStatus: 401, wantAuth: `error="invalid_token"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hits := upstream.hits.Load()
				resp, body := do(t, nil, "GET", app+"/orders", map[string]string{"Authorization": "Bearer " + tc.token, "X-Auth-Subject": "admin"})
				if resp.StatusCode != tc.wantStatus || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.wantAuth) {
					t.Fatalf("status %d WWW-Authenticate %q body %q; want %d with %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tc.wantStatus, tc.wantAuth)
				}
				if tc.wantStatus != 200 {
					if upstream.hits.Load() != hits {
						t.Fatal("a refused token reached the upstream")
					}
					return
				}
				h := upstream.header()
				if readSub == "" || h.Get("X-Auth-Subject") != readSub || len(h.Values("X-Auth-Subject")) != 1 {
					t.Errorf("upstream X-Auth-Subject %q, want the token's sub %q", h.Values("X-Auth-Subject"), readSub)
				}
				if h.Get("X-Auth-Scope") != "api:read" {
					t.Errorf("upstream X-Auth-Scope %q, want api:read", h.Get("X-Auth-Scope"))
				}
			})
		}
	})
}
