package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-auth/gatehouse/internal/clitest"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"golang.org/x/oauth2"
)

// gatehouseCLI runs `caddy gatehouse args...` in this process, as Caddy's
// command line does, and returns its exit status (1 for any error, whose
// message ends stderr) and output.
func gatehouseCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := clitest.Run(args...)
	if err != nil {
		return 1, stdout, stderr + err.Error()
	}
	return 0, stdout, stderr
}

// mgmtEnv is a Caddy serving the management API on a loopback port, over
// a store (SQLite or PostgreSQL) and a configuration with a domain of its
// own ("corp": a user, a client and a policy the API may read, never
// write).
type mgmtEnv struct {
	t          *testing.T
	dir        string
	caddyfile  string // its path, for the command line
	api        string // the API's base URL
	issuerPort int
	key        string // a global read-write key, made by the command line
	router     routers.Router
	checked    int // answers validated against the OpenAPI document
}

func newMgmtEnv(t *testing.T, storeLine string) *mgmtEnv {
	env := &mgmtEnv{t: t, dir: t.TempDir(), issuerPort: freePort(t)}
	apiPort := freePort(t)
	env.api = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	src := fmt.Sprintf(`{
	log audit {
		output file %s
		include gatehouse.audit
		format json
	}
	gatehouse {
		%s
		domain corp {
			issuer http://127.0.0.1:%d/corp
			user alice {
				email alice@example.com
				password_hash %s
			}
			client portal {
				redirect_uris http://127.0.0.1:%d/corp-cb
				policies staff
			}
			policy staff {
				all {
					rule {
						claim groups
						in staff
					}
				}
			}
		}
	}
}

:%d {
	bind 127.0.0.1
	gatehouse_api
	respond "not the API" 418
}

:%d {
	bind 127.0.0.1
	gatehouse_issuer corp
}
`, filepath.Join(env.dir, "audit.log"), storeLine, env.issuerPort, bcryptHash(t, testPassword), env.issuerPort, apiPort, env.issuerPort)
	env.caddyfile = writeFile(t, env.dir, "Caddyfile", src)

	// The first key comes from the command line, before the server runs.
	code, stdout, stderr := gatehouseCLI(t, "apikey", "create", "--config", env.caddyfile, "--name", "bootstrap")
	if code != 0 {
		t.Fatalf("apikey create: %d\n%s\n%s", code, stdout, stderr)
	}
	env.key = strings.SplitN(stdout, "\n", 2)[0]
	if !regexp.MustCompile(`^gatehouse_[a-z2-7]{16}_[a-z2-7]{52}$`).MatchString(env.key) {
		t.Fatalf("the command printed %q as the key", env.key)
	}

	startCaddy(t, src)
	waitHTTP(t, env.api+"/v1/openapi.json")
	env.loadOpenAPI()
	return env
}

// loadOpenAPI reads the OpenAPI document the server serves (no key
// needed) and builds the router every answer is validated with.
func (env *mgmtEnv) loadOpenAPI() {
	t := env.t
	resp, err := http.Get(env.api + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json: %d", resp.StatusCode)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served OpenAPI document is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatal("the served document is not OpenAPI 3.1")
	}
	doc.Servers = openapi3.Servers{{URL: env.api}}
	if env.router, err = gorillamux.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
}

// apiResp is an answer of the API.
type apiResp struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d: %v\n%s", r.status, err, r.body)
	}
}

func (r apiResp) must(t testing.TB, status int) apiResp {
	t.Helper()
	if r.status != status {
		t.Fatalf("want %d, got %d\n%s", status, r.status, r.body)
	}
	return r
}

// apiProblem is a problem details answer.
type apiProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// problem checks that the answer is the problem of type typ (the suffix
// after urn:gatehouse:problem:) with status, and returns it.
func (r apiResp) problem(t testing.TB, status int, typ string) apiProblem {
	t.Helper()
	var p apiProblem
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want a %d %s problem, got %d %s\n%s", status, typ, r.status, r.header.Get("Content-Type"), r.body)
	}
	r.decode(t, &p)
	if p.Type != "urn:gatehouse:problem:"+typ || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Fatalf("want problem %s, got %+v", typ, p)
	}
	return p
}

// call sends a request to the API with key ("" for none) and validates the
// answer against the served OpenAPI document. body: nil, a string (sent
// as is, with ctype) or a value sent as JSON.
func (env *mgmtEnv) call(method, path, key string, body any, header ...string) apiResp {
	t := env.t
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, env.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResp{status: resp.StatusCode, header: resp.Header, body: raw}
	if err := env.validate(req, r); err != nil {
		t.Fatalf("%s %s: the answer does not match the OpenAPI document: %v\n%d %s", method, path, err, r.status, raw)
	}
	return r
}

// validate checks an answer against the OpenAPI document: a documented
// status, media type and body for the operation; for a path or method the
// document does not have, a problem.
func (env *mgmtEnv) validate(req *http.Request, r apiResp) error {
	route, params, err := env.router.FindRoute(req)
	if err != nil {
		if r.status >= 400 && r.header.Get("Content-Type") == "application/problem+json" {
			return nil
		}
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  r.status,
		Header:  r.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	env.checked++
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// get reads path with the env's key and returns the answer and its ETag.
func (env *mgmtEnv) etag(path string) string {
	env.t.Helper()
	r := env.call("GET", path, env.key, nil).must(env.t, 200)
	return r.header.Get("ETag")
}

func TestManagementAPI_SQLite(t *testing.T) {
	runManagementAPISuite(t, "store sqlite "+filepath.Join(t.TempDir(), "gatehouse.db"))
}

func TestManagementAPI_PostgreSQL(t *testing.T) {
	runManagementAPISuite(t, "store postgres "+postgresSchema(t))
}

func runManagementAPISuite(t *testing.T, storeLine string) {
	env := newMgmtEnv(t, storeLine)
	key := env.key

	// Other paths of the site go to the next handler.
	resp, err := http.Get(env.api + "/healthz")
	if err != nil || resp.StatusCode != 418 {
		t.Fatalf("a path outside /v1/ did not reach the next handler: %v %v", resp, err)
	}
	resp.Body.Close()

	t.Run("domains", func(t *testing.T) { env.t = t; mgmtDomains(env, key) })
	t.Run("users", func(t *testing.T) { env.t = t; mgmtUsers(env, key) })
	t.Run("policies", func(t *testing.T) { env.t = t; mgmtPolicies(env, key) })
	t.Run("clients", func(t *testing.T) { env.t = t; mgmtClients(env, key) })
	t.Run("issuer", func(t *testing.T) { env.t = t; mgmtIssuer(env, key) })
	t.Run("apikeys", func(t *testing.T) { env.t = t; mgmtKeys(env, key) })
	t.Run("refusals", func(t *testing.T) { env.t = t; mgmtRefusals(env, key) })
	env.t = t
	if env.checked < 50 {
		t.Fatalf("only %d answers were validated against the OpenAPI document", env.checked)
	}

	// Every management action is audited: the key's ID, never the key.
	audit, err := os.ReadFile(filepath.Join(env.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	id := key[len("gatehouse_") : len("gatehouse_")+16]
	for _, want := range []string{`"action":"domain.create"`, `"action":"user.delete"`, `"key_id":"` + id + `"`, `"outcome":"denied"`, `"outcome":"success"`, `"object":"user `} {
		if !bytes.Contains(audit, []byte(want)) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
	if bytes.Contains(audit, []byte("gatehouse_"+id)) || bytes.Contains(audit, []byte(testPassword)) || bytes.Contains(audit, []byte("hunter22-hunter22")) {
		t.Fatal("the audit log holds a key or a password")
	}
}

func mgmtDomains(env *mgmtEnv, key string) {
	t := env.t
	// A domain with a path-prefixed issuer.
	issuer := fmt.Sprintf("http://127.0.0.1:%d/acme", env.issuerPort)
	r := env.call("POST", "/v1/domain", key, map[string]any{"name": "acme", "issuer": issuer, "signingAlgorithm": "ES256"}).must(t, 201)
	var d struct {
		Name, Issuer, Managed, SigningAlgorithm string
	}
	r.decode(t, &d)
	if d.Name != "acme" || d.Issuer != issuer || d.Managed != "api" || d.SigningAlgorithm != "ES256" || r.header.Get("Location") != "/v1/domain/acme" {
		t.Fatalf("created %+v", d)
	}
	var list struct {
		Items []struct{ Name, Managed string }
	}
	env.call("GET", "/v1/domain", key, nil).must(t, 200).decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].Name != "acme" || list.Items[1].Name != "corp" || list.Items[1].Managed != "config" {
		t.Fatalf("domains %+v", list.Items)
	}
	etag := r.header.Get("ETag")
	r = env.call("PATCH", "/v1/domain/acme", key, map[string]any{"sessionLifetime": 3600}, "If-Match", etag).must(t, 200)
	if r.header.Get("ETag") == etag {
		t.Fatal("PATCH kept the ETag")
	}
	// A second domain, deleted again (202).
	env.call("POST", "/v1/domain", key, map[string]any{"name": "temp", "issuer": fmt.Sprintf("http://127.0.0.1:%d/temp", env.issuerPort)}).must(t, 201)
	env.call("POST", "/v1/domain/temp/user", key, map[string]any{"preferredUsername": "tmp", "name": "Tmp"}).must(t, 201)
	env.call("DELETE", "/v1/domain/temp", key, nil).must(t, 202)
	env.call("GET", "/v1/domain/temp", key, nil).problem(t, 404, "not-found")
	env.call("GET", "/v1/domain/corp", key, nil).must(t, 200)
}

func mgmtUsers(env *mgmtEnv, key string) {
	t := env.t
	var u struct {
		Sub, PreferredUsername, Email, Managed string
		Active, HasPassword                    bool
	}
	r := env.call("POST", "/v1/domain/acme/user", key, map[string]any{"preferredUsername": "bob", "name": "Bob", "email": "bob@example.com"}).must(t, 201)
	r.decode(t, &u)
	if u.Sub == "" || !u.Active || u.HasPassword || u.Managed != "api" {
		t.Fatalf("created %+v", u)
	}
	userPath := "/v1/domain/acme/user/" + u.Sub
	env.call("PUT", userPath+"/password", key, map[string]any{"password": "hunter22-hunter22"}).must(t, 200).decode(t, &u)
	if !u.HasPassword {
		t.Fatal("the password was not set")
	}
	env.call("PATCH", userPath, key, map[string]any{"givenName": "Bob", "active": false}).must(t, 200).decode(t, &u)
	if u.Active {
		t.Fatal("the user is still active")
	}
	env.call("POST", "/v1/domain/acme/user", key, map[string]any{"preferredUsername": "carol", "name": "Carol"}).must(t, 201)
	var l struct {
		Items                []struct{ Sub, PreferredUsername string }
		Offset, Limit, Total int
	}
	env.call("GET", "/v1/domain/acme/user?search=CAR&limit=10", key, nil).must(t, 200).decode(t, &l)
	if l.Total != 1 || len(l.Items) != 1 || l.Items[0].PreferredUsername != "carol" || l.Limit != 10 {
		t.Fatalf("search %+v", l)
	}
	// The configuration's user, listed first in its domain.
	env.call("GET", "/v1/domain/corp/user", key, nil).must(t, 200).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].PreferredUsername != "alice" {
		t.Fatalf("corp users %+v", l)
	}
	env.call("DELETE", userPath, key, nil).must(t, 200)
	env.call("GET", userPath, key, nil).problem(t, 404, "not-found")
}

func mgmtPolicies(env *mgmtEnv, key string) {
	t := env.t
	yamlDoc := "policy:\n  - id: devs\n    any:\n      - rule:\n          claim: groups\n          in: [dev]\n"
	req, _ := http.NewRequest("PUT", env.api+"/v1/domain/acme/policy/devs", strings.NewReader(yamlDoc))
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := apiResp{status: resp.StatusCode, header: resp.Header, body: raw}
	if err := env.validate(req, r); err != nil {
		t.Fatal(err)
	}
	r.must(t, 201)
	var p struct {
		ID      string
		Any     []map[string]any
		Managed string
	}
	r.decode(t, &p)
	if p.ID != "devs" || len(p.Any) != 1 || p.Managed != "api" {
		t.Fatalf("policy %+v", p)
	}
	// Read back as YAML.
	r = env.call("GET", "/v1/domain/acme/policy/devs", key, nil, "Accept", "application/yaml").must(t, 200)
	if r.header.Get("Content-Type") != "application/yaml" || !strings.Contains(string(r.body), "claim: groups") {
		t.Fatalf("YAML answer %s\n%s", r.header.Get("Content-Type"), r.body)
	}
	// JSON in.
	env.call("PUT", "/v1/domain/acme/policy/admins", key, map[string]any{"all": []map[string]any{{"claim": "groups", "in": []string{"admin"}}}}).must(t, 201)
	var l struct {
		Items []struct{ ID, Managed string }
	}
	env.call("GET", "/v1/domain/corp/policy", key, nil).must(t, 200).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != "staff" || l.Items[0].Managed != "config" {
		t.Fatalf("corp policies %+v", l)
	}
	env.call("DELETE", "/v1/domain/acme/policy/admins", key, nil).must(t, 200)
}

func mgmtKeys(env *mgmtEnv, key string) {
	t := env.t
	var k struct {
		ID, Key, Status string
		Domain          *string
		ReadOnly        bool
	}
	env.call("POST", "/v1/apikey", key, map[string]any{"name": "acme-ro", "domain": "acme", "readOnly": true}).must(t, 201).decode(t, &k)
	if k.Key == "" || k.Domain == nil || *k.Domain != "acme" || !k.ReadOnly {
		t.Fatalf("created %+v", k)
	}
	env.call("GET", "/v1/domain/acme", k.Key, nil).must(t, 200)
	var l struct {
		Items []struct{ ID, Key, CreatedBy string }
	}
	env.call("GET", "/v1/apikey", key, nil).must(t, 200).decode(t, &l)
	if len(l.Items) < 2 || l.Items[0].CreatedBy != "cli" {
		t.Fatalf("keys %+v", l.Items)
	}
	for _, it := range l.Items {
		if it.Key != "" {
			t.Fatal("a listing shows a key")
		}
	}
	env.call("DELETE", "/v1/apikey/"+k.ID, key, nil).must(t, 200)
	env.call("GET", "/v1/domain/acme", k.Key, nil).problem(t, 401, "key-revoked")
	// The command line lists what the API made.
	if code, stdout, _ := gatehouseCLI(t, "apikey", "list", "--config", env.caddyfile); code != 0 || !strings.Contains(stdout, k.ID) || !strings.Contains(stdout, "revoked") {
		t.Fatalf("apikey list: %d\n%s", code, stdout)
	}
}

// mgmtRefusals: each refusal is a precise problem, and the object it was
// about is unchanged (its ETag).
func mgmtRefusals(env *mgmtEnv, key string) {
	t := env.t
	acme := env.etag("/v1/domain/acme")
	corpUser := env.etag("/v1/domain/corp/user/alice")
	corpPolicy := env.etag("/v1/domain/corp/policy/staff")
	devs := env.etag("/v1/domain/acme/policy/devs")
	var keys struct{ Items []struct{ ID string } }
	env.call("GET", "/v1/apikey", key, nil).must(t, 200).decode(t, &keys)
	nKeys := len(keys.Items)

	patch := map[string]any{"sessionLifetime": 7200}
	// No key, a wrong key.
	r := env.call("PATCH", "/v1/domain/acme", "", patch)
	r.problem(t, 401, "unauthorized")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	env.call("PATCH", "/v1/domain/acme", key[:len(key)-4]+"aaaa", patch).problem(t, 401, "unauthorized")
	// A revoked key and an expired key, both from the command line.
	_, revoked, _ := gatehouseCLI(t, "apikey", "create", "--config", env.caddyfile, "--name", "to-revoke")
	revoked = strings.TrimSpace(revoked)
	if code, out, errOut := gatehouseCLI(t, "apikey", "revoke", revoked[10:26], "--config", env.caddyfile); code != 0 {
		t.Fatalf("apikey revoke: %s %s", out, errOut)
	}
	env.call("PATCH", "/v1/domain/acme", revoked, patch).problem(t, 401, "key-revoked")
	_, expired, _ := gatehouseCLI(t, "apikey", "create", "--config", env.caddyfile, "--expires", "1ms")
	expired = strings.TrimSpace(expired)
	time.Sleep(2 * time.Millisecond) // the key's whole lifetime; no clock to inject into a running server
	env.call("PATCH", "/v1/domain/acme", expired, patch).problem(t, 401, "key-expired")
	// A domain key on another domain, a read-only key writing.
	var dk, ro struct{ Key string }
	env.call("POST", "/v1/apikey", key, map[string]any{"domain": "corp"}).must(t, 201).decode(t, &dk)
	env.call("POST", "/v1/apikey", key, map[string]any{"readOnly": true}).must(t, 201).decode(t, &ro)
	env.call("PATCH", "/v1/domain/acme", dk.Key, patch).problem(t, 403, "forbidden")
	env.call("PATCH", "/v1/domain/acme", ro.Key, patch).problem(t, 403, "forbidden")
	env.call("POST", "/v1/apikey", ro.Key, map[string]any{}).problem(t, 403, "forbidden")
	// Malformed JSON, an unknown field, an oversized body, a wrong media
	// type.
	env.call("PATCH", "/v1/domain/acme", key, `{"sessionLifetime": 7200`).problem(t, 400, "invalid-body")
	p := env.call("PATCH", "/v1/domain/acme", key, map[string]any{"sessionLifetime": 7200, "colour": "red"}).problem(t, 400, "invalid-body")
	if len(p.Errors) != 1 || p.Errors[0].Field != "colour" {
		t.Fatalf("unknown field: %+v", p)
	}
	env.call("PATCH", "/v1/domain/acme", key, `{"issuer":"`+strings.Repeat("x", 70<<10)+`"}`).problem(t, 413, "payload-too-large")
	req, _ := http.NewRequest("PATCH", env.api+"/v1/domain/acme", strings.NewReader(`sessionLifetime=7200`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	apiResp{status: resp.StatusCode, header: resp.Header, body: raw}.problem(t, 415, "unsupported-media-type")
	// A stale If-Match.
	env.call("PATCH", "/v1/domain/acme", key, patch, "If-Match", `"v1.0"`).problem(t, 412, "stale-etag")
	// Writing what the configuration defines.
	env.call("PATCH", "/v1/domain/corp/user/alice", key, map[string]any{"name": "Mallory"}).problem(t, 403, "managed-by-config")
	env.call("PUT", "/v1/domain/corp/policy/staff", key, map[string]any{"any": []map[string]any{{"claim": "x"}}}).problem(t, 403, "managed-by-config")
	env.call("DELETE", "/v1/domain/corp", key, nil).problem(t, 403, "managed-by-config")
	// An invalid policy: the parser's error, positioned.
	req, _ = http.NewRequest("PUT", env.api+"/v1/domain/acme/policy/devs", strings.NewReader("policy:\n  - id: devs\n    any:\n      - rule:\n          claim: groups\n          inn: [dev]\n"))
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("X-Api-Key", key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	r = apiResp{status: resp.StatusCode, header: resp.Header, body: raw}
	if err := env.validate(req, r); err != nil {
		t.Fatal(err)
	}
	p = r.problem(t, 400, "invalid-policy")
	if !strings.Contains(p.Detail, "body:6:11:") || !strings.Contains(p.Detail, `unknown key "inn"`) {
		t.Fatalf("invalid policy: %+v", p)
	}

	// Nothing changed.
	for path, before := range map[string]string{"/v1/domain/acme": acme, "/v1/domain/corp/user/alice": corpUser,
		"/v1/domain/corp/policy/staff": corpPolicy, "/v1/domain/acme/policy/devs": devs} {
		if now := env.etag(path); now != before {
			t.Errorf("%s changed: ETag %s, was %s", path, now, before)
		}
	}
	env.call("GET", "/v1/apikey", key, nil).must(t, 200).decode(t, &keys)
	if len(keys.Items) != nKeys+4 { // the revoked, expired, domain and read-only keys made above
		t.Errorf("%d keys, want %d", len(keys.Items), nKeys+4)
	}
}

func mgmtClients(env *mgmtEnv, key string) {
	t := env.t
	web := map[string]any{"clientType": "Confidential", "grantType": "AuthorizationCode", "scope": "orders:read",
		"redirectUris": []string{"https://app.example.com/cb"}, "policies": []string{"devs"}}
	var c struct {
		ClientID, ClientType, GrantType, ClientSecret, Managed string
		Policies                                               []string
	}
	r := env.call("PUT", "/v1/domain/acme/client/web", key, web).must(t, 201)
	r.decode(t, &c)
	if c.ClientSecret == "" || c.ClientType != "Confidential" || c.Managed != "api" || len(c.Policies) != 1 {
		t.Fatalf("created %+v", c)
	}
	// Idempotent: the same PUT again is 200, and shows no secret.
	c.ClientSecret = ""
	env.call("PUT", "/v1/domain/acme/client/web", key, web, "If-Match", r.header.Get("ETag")).must(t, 200).decode(t, &c)
	if c.ClientSecret != "" {
		t.Fatal("an update showed the secret")
	}
	var l struct{ Items []struct{ ClientID string } }
	env.call("GET", "/v1/domain/acme/client", key, nil).must(t, 200).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].ClientID != "web" {
		t.Fatalf("clients %+v", l)
	}
	// The policy it names cannot go.
	env.call("DELETE", "/v1/domain/acme/policy/devs", key, nil).problem(t, 409, "conflict")
	// Redirect URIs are checked as the configuration's are.
	bad := map[string]any{"clientType": "Public", "grantType": "AuthorizationCode", "redirectUris": []string{"https://app.example.com/cb?next=/"}}
	p := env.call("PUT", "/v1/domain/acme/client/bad", key, bad).problem(t, 400, "invalid-field")
	if p.Errors[0].Field != "redirectUris[0]" {
		t.Fatalf("redirect URI with a query: %+v", p)
	}
	env.call("GET", "/v1/domain/corp/client/portal", key, nil).must(t, 200)
	env.call("PUT", "/v1/domain/corp/client/portal", key, bad).problem(t, 403, "managed-by-config")
	env.call("DELETE", "/v1/domain/acme/client/web", key, nil).must(t, 200)
}

// mgmtIssuer: what the API writes into a configured domain applies at
// once in the issuer of this instance, without a reload: a user with a
// password and a confidential client sign in (authorization code + PKCE);
// deleting the user ends their refresh token and session; a service's
// secret rotates; deleting a client locks it out.
func mgmtIssuer(env *mgmtEnv, key string) {
	t := env.t
	issuer := fmt.Sprintf("http://127.0.0.1:%d/corp", env.issuerPort)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/cb", freePort(t))
	var u struct{ Sub string }
	env.call("POST", "/v1/domain/corp/user", key, map[string]any{"preferredUsername": "dave", "name": "Dave", "email": "dave@example.com"}).must(t, 201).decode(t, &u)
	env.call("PUT", "/v1/domain/corp/user/"+u.Sub+"/password", key, map[string]any{"password": "dave-password-42"}).must(t, 200)
	var web struct{ ClientSecret string }
	env.call("PUT", "/v1/domain/corp/client/web", key, map[string]any{"clientType": "Confidential", "grantType": "AuthorizationCode",
		"scope": "offline_access", "redirectUris": []string{redirect}}).must(t, 201).decode(t, &web)

	flow := signInCodeFlow(t, issuer, "web", web.ClientSecret, redirect, "dave@example.com", "dave-password-42", "n")
	if flow.idToken.Subject != u.Sub {
		t.Fatalf("ID token of %s, want %s", flow.idToken.Subject, u.Sub)
	}
	ctx, provider, conf, verifier, b, tok := flow.ctx, flow.provider, flow.conf, flow.verifier, flow.browser, flow.tok

	// Deleting the user ends their refresh token and their session.
	var del struct{ RevokedFamilies, EndedSessions int }
	env.call("DELETE", "/v1/domain/corp/user/"+u.Sub, key, nil).must(t, 200).decode(t, &del)
	if del.RevokedFamilies != 1 || del.EndedSessions != 1 {
		t.Fatalf("delete ended %+v", del)
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(ctx, &expired).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("the deleted user's refresh token still works: %v", err)
	}
	resp, err := b.Get(conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc != nil && strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("the deleted user's session still signs in: %s", loc)
	}

	// A service client: its secret works, rotates, and ends with it.
	var svc struct{ ClientSecret string }
	env.call("PUT", "/v1/domain/corp/client/svc", key, map[string]any{"clientType": "Confidential", "grantType": "ClientCredentials", "scope": "orders:read"}).must(t, 201).decode(t, &svc)
	token := func(secret string) int {
		resp := postForm(t, provider.Endpoint().TokenURL, "svc", secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := token(svc.ClientSecret); s != 200 {
		t.Fatalf("client_credentials with the new client: %d", s)
	}
	var rot struct{ ClientSecret string }
	env.call("POST", "/v1/domain/corp/client/svc/secret", key, nil).must(t, 200).decode(t, &rot)
	if s := token(svc.ClientSecret); s != 401 {
		t.Fatalf("the rotated-out secret: %d", s)
	}
	if s := token(rot.ClientSecret); s != 200 {
		t.Fatalf("the new secret: %d", s)
	}
	env.call("DELETE", "/v1/domain/corp/client/svc", key, nil).must(t, 200)
	if s := token(rot.ClientSecret); s != 401 {
		t.Fatalf("a deleted client: %d", s)
	}
}

// TestExamples_ManagementAPI runs caddyfile-examples/management-api.Caddyfile
// (on free ports and a temporary store) and follows the README's curl
// lines: a key from the command line, a user with a password, a client
// whose secret is shown once and rotates, a YAML policy, a search, a
// conditional PATCH, a domain created and deleted — and the user and the
// client signing in to the example's issuer at once.
func TestExamples_ManagementAPI(t *testing.T) {
	src, err := os.ReadFile("../caddyfile-examples/management-api.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issuerPort, apiPort := freePort(t), freePort(t)
	cf := strings.NewReplacer(
		"localhost:9100", fmt.Sprintf("localhost:%d", issuerPort),
		":9443 {", fmt.Sprintf(":%d {", apiPort),
		"\tgatehouse {\n\t\t#", fmt.Sprintf("\tgatehouse {\n\t\tstore sqlite %s\n\t\t#", filepath.Join(dir, "gatehouse.db")),
	).Replace(string(src))
	if !strings.Contains(cf, "store sqlite") || !strings.Contains(cf, fmt.Sprintf(":%d {", apiPort)) {
		t.Fatal("could not point the example at free ports and a temporary store")
	}
	path := writeFile(t, dir, "Caddyfile", cf)
	// KEY=$(caddy gatehouse apikey create --config Caddyfile --name admin 2>/dev/null | head -1)
	code, stdout, stderr := gatehouseCLI(t, "apikey", "create", "--config", path, "--name", "admin")
	if code != 0 {
		t.Fatalf("apikey create: %s %s", stdout, stderr)
	}
	key := strings.SplitN(stdout, "\n", 2)[0]
	startCaddy(t, cf)
	env := &mgmtEnv{t: t, dir: dir, caddyfile: path, api: fmt.Sprintf("http://127.0.0.1:%d", apiPort), issuerPort: issuerPort, key: key}
	waitHTTP(t, env.api+"/v1/openapi.json")
	env.loadOpenAPI()

	var domains struct {
		Items []struct{ Name, Managed string }
	}
	env.call("GET", "/v1/domain", key, nil).must(t, 200).decode(t, &domains)
	if len(domains.Items) != 1 || domains.Items[0].Name != "corp" || domains.Items[0].Managed != "config" {
		t.Fatalf("domains %+v", domains)
	}
	env.call("POST", "/v1/domain", key, map[string]any{"name": "acme", "issuer": "https://auth.example.com/acme"}).must(t, 201)
	var u struct{ Sub string }
	env.call("POST", "/v1/domain/corp/user", key, map[string]any{"preferredUsername": "bob", "name": "Bob", "email": "bob@example.com"}).must(t, 201).decode(t, &u)
	env.call("PUT", "/v1/domain/corp/user/"+u.Sub+"/password", key, map[string]any{"password": "a long passphrase"}).must(t, 200)
	var users struct{ Total int }
	env.call("GET", "/v1/domain/corp/user?search=bob&offset=0&limit=20", key, nil).must(t, 200).decode(t, &users)
	if users.Total != 1 {
		t.Fatalf("search: %+v", users)
	}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/cb", freePort(t))
	var c struct{ ClientSecret string }
	env.call("PUT", "/v1/domain/corp/client/webapp", key, map[string]any{"clientType": "Confidential", "grantType": "AuthorizationCode",
		"redirectUris": []string{redirect}, "scope": "orders:read"}).must(t, 201).decode(t, &c)
	var rot struct{ ClientSecret string }
	env.call("POST", "/v1/domain/corp/client/webapp/secret", key, nil).must(t, 200).decode(t, &rot)
	if c.ClientSecret == "" || rot.ClientSecret == "" || rot.ClientSecret == c.ClientSecret {
		t.Fatal("no secret, or the rotation kept it")
	}
	req, _ := http.NewRequest("PUT", env.api+"/v1/domain/corp/policy/devs", strings.NewReader("policy:\n  - id: devs\n    all:\n      - rule:\n          claim: groups\n          in: [dev]\n"))
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT a YAML policy: %v %v", resp, err)
	}
	resp.Body.Close()

	// Bob signs in to the example's issuer with the client, at once.
	issuer := fmt.Sprintf("http://localhost:%d/corp", issuerPort)
	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: rot.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "email"}}
	verifier := oauth2.GenerateVerifier()
	back := signIn(t, browser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "bob", "a long passphrase")
	if _, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("code exchange: %v", err)
	}

	// curl -X PATCH -H 'If-Match: ...' -d '{"active":false}' $API/domain/corp/user/$SUB
	etag := env.etag("/v1/domain/corp/user/" + u.Sub)
	env.call("PATCH", "/v1/domain/corp/user/"+u.Sub, key, map[string]any{"active": false}, "If-Match", etag).must(t, 200)
	env.call("DELETE", "/v1/domain/acme", key, nil).must(t, 202)
}
