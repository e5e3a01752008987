package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// A fleet is several Caddy processes (instances of one deployment) built
// from ./cmd/caddy, sharing one store: the same PostgreSQL schema, or the
// same SQLite file opened by every process. They all serve domain corp
// under one issuer URL (the first instance's port, as a load balancer's
// would be); each serves what its fleetRole says.

// fleetStore is the store the instances share.
type fleetStore struct {
	name string   // sqlite or postgres
	line string   // the store line of the gatehouse global option
	env  []string // what the processes need in their environment for it
}

// sqliteFleetStore is one SQLite file for every instance.
func sqliteFleetStore(t *testing.T) fleetStore {
	return fleetStore{name: "sqlite", line: "store sqlite " + filepath.Join(t.TempDir(), "gatehouse.db")}
}

// postgresFleetStore is one fresh PostgreSQL schema for every instance (the
// test is skipped without a database, failed in CI). The DSN goes through
// the environment, also of this process, for the command line.
func postgresFleetStore(t *testing.T) fleetStore {
	dsn := postgresSchema(t)
	t.Setenv("GATEHOUSE_IT_DSN", dsn)
	return fleetStore{name: "postgres", line: "store postgres {env.GATEHOUSE_IT_DSN}", env: []string{"GATEHOUSE_IT_DSN=" + dsn}}
}

// Names the fleet's configuration uses.
const (
	fleetAudience      = "https://api.fleet.test"
	fleetWebappSecret  = "webapp-secret-0123456789abcdef"
	fleetServiceSecret = "service-secret-0123456789abcdef"
	// fleetPolicy is the stored policy the gates apply (created through the
	// API before a gate that names it starts).
	fleetPolicy = "access"
)

// fleetRole is what one instance serves besides the issuer.
type fleetRole struct {
	api   bool // gatehouse_api on a port of its own
	gate  bool // a gate (session and bearer) on a port of its own
	admin bool // Caddy's admin endpoint on a port of its own
	// policy is the policy the gate applies; "" for none.
	policy string
}

// fleetInstance is one Caddy process of the fleet.
type fleetInstance struct {
	name string
	// Base URLs; "" when the instance does not serve it. issuer is this
	// instance's own port with the issuer's path (the issuer URL names the
	// first instance's).
	api, issuer, app, admin string
	policy                  string // the gate's policy
	proc                    *caddyProcess
	caddyfile               string // its path
}

// fleet is a deployment under test.
type fleet struct {
	t         *testing.T
	store     fleetStore
	dir       string
	issuerURL string // the domain's issuer, on the first instance's port
	issuerPrt int
	appPorts  []int // every gate's port, registered as the webapp's callbacks
	key       string
	insts     []*fleetInstance
	// extra is added to the domain block of every instance.
	extra string
}

// newFleet prepares a fleet of len(roles) instances on st: ports, and a
// global API key made by the command line from the first instance's
// Caddyfile. Start them with start.
func newFleet(t *testing.T, st fleetStore, extra string, roles ...fleetRole) *fleet {
	f := &fleet{t: t, store: st, dir: t.TempDir(), extra: extra}
	f.issuerPrt = freePort(t)
	f.issuerURL = fmt.Sprintf("http://127.0.0.1:%d/corp", f.issuerPrt)
	for i, r := range roles {
		in := &fleetInstance{name: string(rune('A' + i)), policy: r.policy}
		port := f.issuerPrt
		if i > 0 {
			port = freePort(t)
		}
		in.issuer = fmt.Sprintf("http://127.0.0.1:%d/corp", port)
		if r.api {
			in.api = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		}
		if r.gate {
			p := freePort(t)
			in.app = fmt.Sprintf("http://127.0.0.1:%d", p)
			f.appPorts = append(f.appPorts, p)
		}
		if r.admin {
			in.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		}
		f.insts = append(f.insts, in)
	}
	for _, in := range f.insts {
		in.caddyfile = writeFile(t, f.dir, "Caddyfile-"+in.name, f.caddyfile(in))
	}
	code, stdout, stderr := gatehouseCLI(t, "apikey", "create", "--config", f.insts[0].caddyfile, "--name", "fleet")
	if code != 0 {
		t.Fatalf("apikey create: %d\n%s\n%s", code, stdout, stderr)
	}
	f.key = strings.SplitN(stdout, "\n", 2)[0]
	caddyBinary(t)
	return f
}

// caddyfile is the configuration of one instance.
func (f *fleet) caddyfile(in *fleetInstance) string {
	var callbacks []string
	for _, p := range f.appPorts {
		callbacks = append(callbacks, fmt.Sprintf("http://127.0.0.1:%d/.gatehouse/callback", p))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{
	log audit {
		output file %s
		include gatehouse.audit
		format json
	}
	gatehouse {
		%s
		# A session another instance ended is refused here within this
		# (default 5s).
		revocation_poll 1s
		domain corp {
			issuer %s
			client webapp {
				secret %s
				redirect_uris %s %s
				scopes openid profile email offline_access
				audience %s
			}
			client service {
				secret %s
				grant_types client_credentials
				audience %s
			}
%s
		}
	}
}

:%s {
	bind 127.0.0.1
	gatehouse_issuer corp
}
`, filepath.Join(f.dir, "audit-"+in.name+".log"), f.store.line, f.issuerURL, fleetWebappSecret, strings.Join(callbacks, " "), f.oauthRedirect(),
		fleetAudience, fleetServiceSecret, fleetAudience, f.extra, portOf(in.issuer))
	if in.api != "" {
		fmt.Fprintf(&b, `
:%s {
	bind 127.0.0.1
	gatehouse_api
}
`, portOf(in.api))
	}
	if in.app != "" {
		policy := ""
		if in.policy != "" {
			policy = "policy " + in.policy
		}
		fmt.Fprintf(&b, `
%s {
	bind 127.0.0.1
	gatehouse {
		domain corp
		login webapp
		bearer {
			audience %s
		}
		%s
		forward X-Auth-Subject sub
	}
	respond "hello {http.auth.user.id}"
}
`, in.app, fleetAudience, policy)
	}
	return b.String()
}

// oauthRedirect is the webapp's redirect URI for code flows the test runs
// itself (nothing listens there: the code is read from the redirect).
func (f *fleet) oauthRedirect() string {
	return fmt.Sprintf("http://127.0.0.1:%d/cb", f.issuerPrt)
}

func portOf(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Port() == "" {
		_, port, _ := strings.Cut(base, ":")
		return port
	}
	return u.Port()
}

// start runs instance i and waits until it serves.
func (f *fleet) start(i int) *fleetInstance {
	f.t.Helper()
	in := f.insts[i]
	src, err := os.ReadFile(in.caddyfile)
	if err != nil {
		f.t.Fatal(err)
	}
	in.proc = startCaddyProcessAdmin(f.t, "instance "+in.name, string(src), in.admin, f.store.env...)
	waitOK(f.t, in.issuer+"/healthz", 30*time.Second)
	return in
}

// audit is the audit log an instance wrote so far.
func (f *fleet) audit(in *fleetInstance) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "audit-"+in.name+".log"))
	return string(b)
}

// api calls an instance's management API with the fleet's key and checks
// the status.
func (f *fleet) api(in *fleetInstance, method, path string, body any, want int) []byte {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, in.api+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Api-Key", f.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s at instance %s: %d, want %d\n%s", method, path, in.name, resp.StatusCode, want, raw)
	}
	return raw
}

// policyThat is a stored policy's body: every rule of the list must hold.
// allowAll admits every authenticated caller (its sub is present); denyAll
// admits none.
var (
	allowAll = map[string]any{"all": []map[string]any{{"claim": "sub"}}}
	denyAll  = map[string]any{"all": []map[string]any{{"claim": "sub", "in": []string{"nobody-has-this-sub"}}}}
)

// createUser makes a user with a password through an instance's API and
// returns their sub.
func (f *fleet) createUser(in *fleetInstance, username, password string) string {
	f.t.Helper()
	var u struct{ Sub string }
	raw := f.api(in, "POST", "/v1/domain/corp/user", map[string]any{"preferredUsername": username, "name": username, "email": username + "@example.com"}, 201)
	if err := json.Unmarshal(raw, &u); err != nil || u.Sub == "" {
		f.t.Fatalf("created user: %v %s", err, raw)
	}
	f.api(in, "PUT", "/v1/domain/corp/user/"+u.Sub+"/password", map[string]any{"password": password}, 200)
	return u.Sub
}

// gateSignIn signs user in through a gate (the browser's sign-in at the
// issuer, the gate's callback) and returns the browser holding the gate's
// session and the issuer's SSO cookie.
func (f *fleet) gateSignIn(in *fleetInstance, user, password string) *http.Client {
	f.t.Helper()
	b := browser(f.t)
	resp, _ := do(f.t, b, "GET", in.app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), f.issuerURL+"/authorize") {
		f.t.Fatalf("instance %s's gate: %d %v, want a redirect to %s/authorize", in.name, resp.StatusCode, loc, f.issuerURL)
	}
	back := signIn(f.t, b, loc.String(), user, password)
	if !strings.HasPrefix(back.String(), in.app+"/.gatehouse/callback") {
		f.t.Fatalf("sign-in did not come back to instance %s's gate: %s", in.name, back)
	}
	if resp, _ := do(f.t, b, "GET", back.String(), nil); resp.StatusCode != 302 {
		f.t.Fatalf("instance %s's callback: %d\n%s", in.name, resp.StatusCode, tail(f.audit(in), 3000))
	}
	return b
}

// refreshToken runs the webapp's code flow in browser b (silent: b holds
// an SSO session) and returns its token, with a refresh token.
func (f *fleet) refreshToken(b *http.Client, user, password string) *oauth2.Token {
	f.t.Helper()
	conf := f.oauthConfig(f.insts[0])
	verifier := oauth2.GenerateVerifier()
	back := signIn(f.t, b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), user, password)
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		f.t.Fatalf("code exchange (callback %s): %v", back, err)
	}
	if tok.RefreshToken == "" {
		f.t.Fatal("no refresh token")
	}
	return tok
}

// oauthConfig is the webapp client at the issuer, with in's token endpoint.
func (f *fleet) oauthConfig(in *fleetInstance) oauth2.Config {
	return oauth2.Config{ClientID: "webapp", ClientSecret: fleetWebappSecret, RedirectURL: f.oauthRedirect(),
		Endpoint: oauth2.Endpoint{AuthURL: f.issuerURL + "/authorize", TokenURL: in.issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "offline_access"}}
}

// refreshAt presents tok's refresh token at in's token endpoint and returns
// the status and the OAuth error code.
func (f *fleet) refreshAt(in *fleetInstance, tok *oauth2.Token) (int, string) {
	f.t.Helper()
	resp := postForm(f.t, in.issuer+"/token", "webapp", fleetWebappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// serviceToken is an access token of the service client (client
// credentials) from in's token endpoint.
func (f *fleet) serviceToken(in *fleetInstance) string {
	f.t.Helper()
	resp := postForm(f.t, in.issuer+"/token", "service", fleetServiceSecret, url.Values{"grant_type": {"client_credentials"}, "resource": {fleetAudience}})
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		f.t.Fatalf("client_credentials at instance %s: %d %v", in.name, resp.StatusCode, err)
	}
	return tr.AccessToken
}

// gateCall makes one API request (never a navigation) to in's gate, with
// a bearer token or with browser b's session, and returns the status.
func gateCall(t *testing.T, in *fleetInstance, b *http.Client, token string) int {
	t.Helper()
	hdr := map[string]string{"Accept": "application/json"}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	resp, _ := do(t, b, "GET", in.app+"/api", hdr)
	return resp.StatusCode
}

// within is the longest a change may take to reach another instance.
const within = 2 * time.Second

// until polls cond every 10 ms from since and returns how long after since
// it first held. Past within the test fails, but it keeps polling (up to
// 10 s) to tell how late the change was.
func until(t *testing.T, what string, since time.Time, cond func() bool) time.Duration {
	t.Helper()
	for {
		if cond() {
			took := time.Since(since)
			if took > within {
				t.Errorf("%s: seen %s after the change, later than %s", what, took.Round(time.Millisecond), within)
			}
			return took
		}
		if time.Since(since) > 10*time.Second {
			t.Fatalf("%s: not seen within 10s of the change", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// delays collects measured propagation delays by what changed.
type delays map[string][]time.Duration

func (d delays) add(what string, v time.Duration) {
	d[what] = append(d[what], v.Round(time.Millisecond))
}

func (d delays) log(t *testing.T, store string) {
	t.Helper()
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %s: %v", store, k, d[k])
	}
}
