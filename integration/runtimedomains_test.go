package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestRuntimeDomains_AddedAndRemovedWhileRequestsFlow: two instances on
// one store — this process (with the management API) and a Caddy process —
// both serve `gatehouse_issuer *`. While requests flow without pause at the
// configured domain (bearer requests at its gate, discovery and
// client_credentials tokens at the wildcard issuer, on both instances), a
// domain with a path-prefixed issuer is created through the API: it serves
// discovery, JWKS and tokens at once on the instance that took the write,
// and within the directory's poll on the other; its gate (which names it
// before it exists, and answers 503 until then) accepts its tokens; the
// API's revocations (deleting a user) reach that gate at once. Then the
// domain is deleted: 404 at the wildcard issuer at once here and within the
// poll there, 503 at its gate. No request to the configured domain gets
// anything but 200.
func TestRuntimeDomains_AddedAndRemovedWhileRequestsFlow(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "gatehouse.db")
	issPort, issPortB, apiPort, gatePort, acmeGatePort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", issPort)
	corp, acme := "http://"+host+"/corp", "http://"+host+"/acme"
	global := fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain corp {
			issuer %s
			client svc {
				secret corp-service-secret-0123456789
				grant_types client_credentials
				scopes orders:read
				audience api
			}
		}
	}
}
`, db, corp)
	cfA := global + fmt.Sprintf(`
:%d {
	bind 127.0.0.1
	gatehouse_api
}

:%d {
	bind 127.0.0.1
	gatehouse_issuer *
}

:%d {
	bind 127.0.0.1
	gatehouse {
		domain corp
		bearer {
			audience api
		}
	}
	respond "corp ok"
}

:%d {
	bind 127.0.0.1
	gatehouse {
		domain acme
		bearer {
			audience api
		}
	}
	respond "acme ok"
}
`, apiPort, issPort, gatePort, acmeGatePort)
	cfB := global + fmt.Sprintf(`
:%d {
	bind 127.0.0.1
	gatehouse_issuer *
}
`, issPortB)
	code, stdout, stderr := gatehouseCLI(t, "apikey", "create", "--config", writeFile(t, dir, "Caddyfile", cfA), "--name", "test")
	if code != 0 {
		t.Fatalf("apikey create: %s %s", stdout, stderr)
	}
	key := strings.SplitN(stdout, "\n", 2)[0]
	startCaddy(t, cfA)
	startCaddyProcess(t, "instance B", cfB)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	gateURL := fmt.Sprintf("http://127.0.0.1:%d/orders", gatePort)
	acmeGateURL := fmt.Sprintf("http://127.0.0.1:%d/orders", acmeGatePort)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", issPortB))

	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// at sends a request to an instance; B is reached with the issuer's
	// Host, as a load balancer in front of both would.
	at := func(port int, method, path, auth string, form url.Values) (int, []byte) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), body)
		req.Host = host
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	get := func(u, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	api := func(method, path string, in any) (int, []byte) {
		var body io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			body = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, apiURL+path, body)
		req.Header.Set("x-api-key", key)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	basic := func(id, secret string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(id, secret)
		return req.Header.Get("Authorization")
	}
	serviceToken := func(port int, prefix, id, secret string) (int, string) {
		status, body := at(port, "POST", prefix+"/token", basic(id, secret), url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(body, &tok)
		return status, tok.AccessToken
	}
	status, corpToken := serviceToken(issPort, "/corp", "svc", "corp-service-secret-0123456789")
	if status != 200 || corpToken == "" {
		t.Fatalf("a corp token: %d", status)
	}

	// Requests to the configured domain flow until the end.
	type failure struct {
		what   string
		status int
	}
	var (
		mu       sync.Mutex
		failures []failure
		counts   = map[string]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flow := func(what string, do func() int) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := do()
				mu.Lock()
				counts[what]++
				if s != 200 {
					failures = append(failures, failure{what, s})
				}
				mu.Unlock()
			}
		})
	}
	flow("corp gate bearer", func() int { return get(gateURL, "Bearer "+corpToken) })
	flow("corp discovery at A", func() int {
		s, _ := at(issPort, "GET", "/corp/.well-known/openid-configuration", "", nil)
		return s
	})
	flow("corp discovery at B", func() int {
		s, _ := at(issPortB, "GET", "/corp/.well-known/openid-configuration", "", nil)
		return s
	})
	flow("corp token at A", func() int {
		s, _ := serviceToken(issPort, "/corp", "svc", "corp-service-secret-0123456789")
		return s
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// Before: acme is not served anywhere; its gate refuses, 503.
	if s, _ := at(issPort, "GET", "/acme/.well-known/openid-configuration", "", nil); s != 404 {
		t.Fatalf("discovery of a domain that does not exist yet: %d, want 404", s)
	}
	if s := get(acmeGateURL, "Bearer "+corpToken); s != 503 {
		t.Fatalf("the gate of a domain that does not exist yet: %d, want 503", s)
	}

	// Created through the API on A: served at once there.
	if s, b := api("POST", "/v1/domain", map[string]any{"name": "acme", "issuer": acme}); s != 201 {
		t.Fatalf("creating acme: %d %s", s, b)
	}
	created := time.Now()
	s, doc := at(issPort, "GET", "/acme/.well-known/openid-configuration", "", nil)
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if json.Unmarshal(doc, &disc); s != 200 || disc.Issuer != acme || disc.JWKSURI != acme+"/jwks" {
		t.Fatalf("acme's discovery right after the API answered: %d %s", s, doc)
	}
	s, jwks := at(issPort, "GET", "/acme/jwks", "", nil)
	var set struct{ Keys []struct{ Kid string } }
	if json.Unmarshal(jwks, &set); s != 200 || len(set.Keys) == 0 {
		t.Fatalf("acme's JWKS: %d %s", s, jwks)
	}
	_, corpJWKS := at(issPort, "GET", "/corp/jwks", "", nil)
	if strings.Contains(string(corpJWKS), set.Keys[0].Kid) {
		t.Fatal("acme signs with corp's key; a new domain must get keys of its own")
	}
	var svc struct{ ClientSecret string }
	s, b := api("PUT", "/v1/domain/acme/client/svc", map[string]any{"clientType": "Confidential", "grantType": "ClientCredentials", "scope": "orders:read", "audiences": []string{"api"}})
	if json.Unmarshal(b, &svc); s != 201 || svc.ClientSecret == "" {
		t.Fatalf("acme's service client: %d %s", s, b)
	}
	s, acmeToken := serviceToken(issPort, "/acme", "svc", svc.ClientSecret)
	if s != 200 || acmeToken == "" || jwtClaims(t, acmeToken)["iss"] != acme {
		t.Fatalf("an acme token at once on A: %d", s)
	}
	if s := get(acmeGateURL, "Bearer "+acmeToken); s != 200 {
		t.Fatalf("acme's gate with an acme token: %d", s)
	}
	if s := get(acmeGateURL, "Bearer "+corpToken); s != 401 {
		t.Fatalf("acme's gate with a corp token: %d, want 401", s)
	}
	if s := get(gateURL, "Bearer "+acmeToken); s != 401 {
		t.Fatalf("corp's gate with an acme token: %d, want 401", s)
	}

	// On B within the directory's poll: discovery, and a token signed
	// with the same keys.
	deadline := created.Add(2 * time.Second)
	for {
		s, _ := at(issPortB, "GET", "/acme/.well-known/openid-configuration", "", nil)
		if s == 200 {
			t.Logf("acme served by the other instance %v after the API answered", time.Since(created).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme not served by the other instance within 2s: %d", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, jwksB := at(issPortB, "GET", "/acme/jwks", "", nil); s != 200 || !strings.Contains(string(jwksB), set.Keys[0].Kid) {
		t.Fatalf("acme's JWKS at B: %d %s", s, jwksB)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		s, tokB := serviceToken(issPortB, "/acme", "svc", svc.ClientSecret)
		if s == 200 {
			if g := get(acmeGateURL, "Bearer "+tokB); g != 200 {
				t.Fatalf("A's acme gate with a token B issued: %d", g)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's client at B: %d", s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A user of acme signs in at its issuer; deleting the user through the
	// API ends the access token at acme's gate at once.
	var u struct{ Sub string }
	if s, b := api("POST", "/v1/domain/acme/user", map[string]any{"preferredUsername": "erin", "name": "Erin"}); s != 201 || json.Unmarshal(b, &u) != nil {
		t.Fatalf("acme user: %d %s", s, b)
	}
	if s, b := api("PUT", "/v1/domain/acme/user/"+u.Sub+"/password", map[string]any{"password": "erin-password-42"}); s != 200 {
		t.Fatalf("acme user's password: %d %s", s, b)
	}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/cb", freePort(t))
	var web struct{ ClientSecret string }
	if s, b := api("PUT", "/v1/domain/acme/client/web", map[string]any{"clientType": "Confidential", "grantType": "AuthorizationCode",
		"redirectUris": []string{redirect}, "audiences": []string{"api"}}); s != 201 || json.Unmarshal(b, &web) != nil {
		t.Fatalf("acme web client: %d %s", s, b)
	}
	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	provider, err := oidc.NewProvider(ctx, acme)
	if err != nil {
		t.Fatalf("acme discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: "web", ClientSecret: web.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()
	back := signIn(t, browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "erin", "erin-password-42")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("acme code exchange: %v", err)
	}
	if s := get(acmeGateURL, "Bearer "+tok.AccessToken); s != 200 {
		t.Fatalf("acme's gate with erin's token: %d", s)
	}
	if s, b := api("DELETE", "/v1/domain/acme/user/"+u.Sub, nil); s != 200 {
		t.Fatalf("deleting erin: %d %s", s, b)
	}
	if s := get(acmeGateURL, "Bearer "+tok.AccessToken); s != 401 {
		t.Fatalf("acme's gate with the deleted user's token right after the API answered: %d, want 401", s)
	}

	// Deleted through the API: gone at once on A, within the poll on B.
	if s, b := api("DELETE", "/v1/domain/acme", nil); s != 202 {
		t.Fatalf("deleting acme: %d %s", s, b)
	}
	deleted := time.Now()
	for _, p := range []string{"/acme/.well-known/openid-configuration", "/acme/jwks", "/.well-known/oauth-authorization-server/acme"} {
		if s, b := at(issPort, "GET", p, "", nil); s != 404 {
			t.Fatalf("%s right after the domain was deleted: %d %s", p, s, b)
		}
	}
	if s, _ := serviceToken(issPort, "/acme", "svc", svc.ClientSecret); s != 404 {
		t.Fatalf("a token of the deleted domain: %d, want 404", s)
	}
	if s := get(acmeGateURL, "Bearer "+acmeToken); s != 503 {
		t.Fatalf("the deleted domain's gate: %d, want 503", s)
	}
	deadline = deleted.Add(2 * time.Second)
	for {
		s, _ := at(issPortB, "GET", "/acme/jwks", "", nil)
		if s == 404 {
			t.Logf("acme gone from the other instance %v after the API answered", time.Since(deleted).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme still served by the other instance after 2s: %d", s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // the deferred close
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests to the configured domain meanwhile: %v", counts)
	for what, n := range counts {
		if n < 10 {
			t.Errorf("only %d %s requests ran", n, what)
		}
	}
	if len(failures) > 0 {
		t.Fatalf("%d requests to the configured domain failed, first %v", len(failures), failures[:min(len(failures), 10)])
	}
}

// TestStart_FailsWhenTheStoreCannotBeOpened: the store is opened when the
// gatehouse app starts, not when it is provisioned; a store that cannot be
// opened still fails `caddy run` and a reload (which leaves the running
// configuration serving), rather than a configuration that answers 503
// forever.
func TestStart_FailsWhenTheStoreCannotBeOpened(t *testing.T) {
	port := freePort(t)
	config := func(store string) string {
		return fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer http://127.0.0.1:%d
		}
	}
}

:%d {
	bind 127.0.0.1
	gatehouse_issuer
}
`, store, port, port)
	}
	// Not a directory: the SQLite file cannot be made.
	bad := config(filepath.Join(writeFile(t, t.TempDir(), "file", "x"), "gatehouse.db"))
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(withTestGlobals(bad, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	caddyMu.Lock()
	err = caddy.Load(cfg, true)
	_ = caddy.Stop()
	caddyMu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "SQLite store") {
		t.Fatalf("starting with a store that cannot be opened: %v", err)
	}

	startCaddy(t, config(filepath.Join(t.TempDir(), "gatehouse.db")))
	discovery := fmt.Sprintf("http://127.0.0.1:%d/.well-known/openid-configuration", port)
	waitHTTP(t, discovery)
	cfg, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(withTestGlobals(bad, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err == nil || !strings.Contains(err.Error(), "SQLite store") {
		t.Fatalf("reloading to a store that cannot be opened: %v", err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if s := getStatus(t, discovery); s != 200 {
		t.Fatalf("the running configuration after the failed reload: %d", s)
	}
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
