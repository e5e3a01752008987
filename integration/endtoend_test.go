package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestEndToEnd_SQLite and TestEndToEnd_PostgreSQL are issue 11's proof,
// through two real Caddy processes on one store with a key made by the
// command line and nothing of the domain in their configuration:
//
//   - through instance A's management API: a domain with a path-prefixed
//     issuer (http://127.0.0.1:<port>/acme, served by `gatehouse_issuer *`),
//     a policy, a user with a password and a confidential client that
//     names the policy;
//   - an authorization code + PKCE sign-in with them, its ID token verified
//     by discovery, its access token admitted by the bearer gates of both
//     instances (each trusting the issuer by discovery and applying the
//     policy);
//   - the policy changed through A: both gates refuse the token (A at once,
//     B within 2 s) and admit it again when it is changed back;
//   - the user deleted through A: the refresh token and the SSO session
//     stop working on both instances.
func TestEndToEnd_SQLite(t *testing.T) { runEndToEnd(t, sqliteFleetStore(t)) }

func TestEndToEnd_PostgreSQL(t *testing.T) { runEndToEnd(t, postgresFleetStore(t)) }

// e2eInstance is one process of the end-to-end test: its issuer site
// (`gatehouse_issuer *`), API and gate.
type e2eInstance struct {
	name              string
	issuer, api, gate string // base URLs
	caddyfile         string
}

const e2eAudience = "https://api.acme.test"

func runEndToEnd(t *testing.T, st fleetStore) {
	dir := t.TempDir()
	var insts [2]*e2eInstance
	for i := range insts {
		insts[i] = &e2eInstance{name: string(rune('A' + i)),
			issuer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			api:    fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			gate:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	}
	// The issuer URL is on A's port, as a load balancer's would be: B's
	// issuer answers for it when a request names that host.
	issuer := insts[0].issuer + "/acme"
	for _, in := range insts {
		src := fmt.Sprintf(`{
	log audit {
		output file %s
		include gatehouse.audit
		format json
	}
	gatehouse {
		%s
		revocation_poll 1s
	}
}

:%s {
	bind 127.0.0.1
	gatehouse_issuer *
}

:%s {
	bind 127.0.0.1
	gatehouse_api
}

%s {
	bind 127.0.0.1
	gatehouse {
		domain acme
		bearer {
			issuer %s
			audience %s
		}
		policy access
		forward X-Auth-Subject sub
	}
	respond "hello {http.auth.user.id}"
}
`, filepath.Join(dir, "audit-"+in.name+".log"), st.line, portOf(in.issuer), portOf(in.api), in.gate, issuer, e2eAudience)
		in.caddyfile = writeFile(t, dir, "Caddyfile-"+in.name, src)
	}
	code, stdout, stderr := gatehouseCLI(t, "apikey", "create", "--config", insts[0].caddyfile, "--name", "e2e")
	if code != 0 {
		t.Fatalf("apikey create: %d\n%s\n%s", code, stdout, stderr)
	}
	key := strings.SplitN(stdout, "\n", 2)[0]
	// The command line's key action is in the configuration's audit log,
	// as the API's are: the key's ID, never the key.
	keyID := strings.Split(key, "_")[1]
	auditFile := filepath.Join(dir, "audit-A.log")
	var created bool
	for _, e := range logEntries(t, auditFile) {
		created = created || (e["logger"] == "gatehouse.audit" && e["action"] == "apikey.create" && e["outcome"] == "success" && e["via"] == "cli" && e["object"] == keyID)
	}
	if raw := string(mustRead(t, auditFile)); !created || strings.Contains(raw, key) || strings.Contains(raw, strings.SplitN(key, "_", 3)[2]) {
		t.Fatalf("the audit log of apikey create (entry found: %v; the key must not be in it):\n%s", created, raw)
	}
	f := &fleet{t: t, key: key}
	for _, in := range insts {
		src := string(mustRead(t, in.caddyfile))
		startCaddyProcess(t, "instance "+in.name, src, st.env...)
		waitHTTP(t, in.api+"/v1/openapi.json")
	}
	a, b := insts[0], insts[1]
	apiA := &fleetInstance{name: "A", api: a.api}

	// Everything of the domain through A's API.
	f.api(apiA, "POST", "/v1/domain", map[string]any{"name": "acme", "issuer": issuer}, 201)
	f.api(apiA, "PUT", "/v1/domain/acme/policy/access", allowAll, 201)
	var user struct{ Sub string }
	if err := json.Unmarshal(f.api(apiA, "POST", "/v1/domain/acme/user", map[string]any{"preferredUsername": "bob", "name": "Bob", "email": "bob@example.com"}, 201), &user); err != nil {
		t.Fatal(err)
	}
	f.api(apiA, "PUT", "/v1/domain/acme/user/"+user.Sub+"/password", map[string]any{"password": "bob-password-42"}, 200)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/cb", freePort(t))
	var client struct{ ClientSecret string }
	if err := json.Unmarshal(f.api(apiA, "PUT", "/v1/domain/acme/client/webapp", map[string]any{"clientType": "Confidential", "grantType": "AuthorizationCode",
		"scope": "offline_access", "audiences": []string{e2eAudience}, "redirectUris": []string{redirect}, "policies": []string{"access"}}, 201), &client); err != nil || client.ClientSecret == "" {
		t.Fatalf("client: %v %+v", err, client)
	}
	clientMade := time.Now()

	// Sign-in: authorization code + PKCE, discovery at the issuer's URL.
	flow := signInCodeFlow(t, issuer, "webapp", client.ClientSecret, redirect, "bob", "bob-password-42", "n-1")
	if flow.idToken.Subject != user.Sub {
		t.Fatalf("ID token of %s, want %s", flow.idToken.Subject, user.Sub)
	}
	tok, br, conf := flow.tok, flow.browser, flow.conf

	gateAt := func(in *e2eInstance) (int, string) {
		resp, body := do(t, nil, "GET", in.gate+"/orders", map[string]string{"Authorization": "Bearer " + tok.AccessToken, "Accept": "application/json"})
		return resp.StatusCode, body
	}
	// A took every write: its gate admits the token at once. B reads the
	// domain, its policy and its client from the store within 2 s of the
	// last write.
	d := delays{}
	if s, body := gateAt(a); s != 200 || body != "hello "+user.Sub {
		t.Fatalf("instance A's gate with the access token: %d %q", s, body)
	}
	d.add("the new domain at B's gate", until(t, "the new domain's token admitted at B's gate", clientMade, func() bool { s, _ := gateAt(b); return s == 200 }))
	if s, body := gateAt(b); s != 200 || body != "hello "+user.Sub {
		t.Fatalf("instance B's gate with the access token: %d %q", s, body)
	}

	// The policy, through A: A's gate at once, B's within 2 s; and back.
	for _, step := range []struct {
		body   map[string]any
		status int
		what   string
	}{{denyAll, 403, "policy denies"}, {allowAll, 200, "policy admits"}} {
		offPhase()
		f.api(apiA, "PUT", "/v1/domain/acme/policy/access", step.body, 200)
		at := time.Now()
		if s, _ := gateAt(a); s != step.status {
			t.Fatalf("%s: A's gate answered %d right after A's API did, want %d", step.what, s, step.status)
		}
		d.add(step.what+" at B's gate", until(t, step.what+" at B's gate", at, func() bool { s, _ := gateAt(b); return s == step.status }))
	}

	// Deleting the user, through A.
	offPhase()
	f.api(apiA, "DELETE", "/v1/domain/acme/user/"+user.Sub, nil, 200)
	at := time.Now()
	for _, in := range insts {
		d.add("deleted user's refresh token at "+in.name, until(t, "the deleted user's refresh token refused at "+in.name, at, func() bool {
			s, e := e2eRefresh(t, in, issuer, "webapp", client.ClientSecret, tok.RefreshToken)
			return s == 400 && e == "invalid_grant"
		}))
		if e2eSilentSignIn(t, br, in, issuer, conf) {
			t.Fatalf("the deleted user's SSO session still signs in at %s", in.name)
		}
	}
	d.log(t, st.name)
}

// e2eRefresh presents a refresh token at in's token endpoint for the issuer
// (a request naming the issuer's host, as a load balancer forwards it).
func e2eRefresh(t *testing.T, in *e2eInstance, issuer, id, secret, refresh string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	req, _ := http.NewRequest("POST", in.issuer+"/acme/token", strings.NewReader(form.Encode()))
	req.Host = hostOf(issuer)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error
}

// e2eSilentSignIn asks in's issuer for a code without a login page
// (prompt=none) in browser br, and reports whether one came back.
func e2eSilentSignIn(t *testing.T, br *http.Client, in *e2eInstance, issuer string, conf oauth2.Config) bool {
	t.Helper()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"))
	authURL = strings.Replace(authURL, issuer, in.issuer+"/acme", 1)
	req, _ := http.NewRequest("GET", authURL, nil)
	req.Host = hostOf(issuer)
	// The browser's cookies are those of the issuer's host.
	u, _ := url.Parse(issuer)
	for _, c := range br.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("prompt=none at %s: %d", in.name, resp.StatusCode)
	}
	return loc.Query().Get("code") != ""
}

func hostOf(base string) string {
	u, _ := url.Parse(base)
	return u.Host
}
