package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestExamples_Adapt adapts every Caddyfile in caddyfile-examples/: each is
// a real, runnable configuration.
func TestExamples_Adapt(t *testing.T) {
	files, err := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
		})
	}
}

// envPlaceholder finds the environment variables a Caddyfile names.
var envPlaceholder = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestExamples_Validate provisions every example as shipped — the files it
// names read from beside it — with each environment variable it names set
// to a test value (a fresh PostgreSQL schema for DATABASE_URL, a password
// hash for *_HASH, a random secret otherwise) and a temporary data
// directory: each one runs, not only parses.
func TestExamples_Validate(t *testing.T) {
	files, err := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
			t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
			for _, m := range envPlaceholder.FindAllStringSubmatch(string(src), -1) {
				name := m[1]
				switch {
				case name == "DATABASE_URL":
					t.Setenv(name, postgresSchema(t))
				case strings.HasSuffix(name, "_HASH"):
					t.Setenv(name, bcryptHash(t, "example-password"))
				default:
					b := make([]byte, 32)
					rand.Read(b)
					t.Setenv(name, base64.StdEncoding.EncodeToString(b))
				}
			}
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			var c caddy.Config
			if err := json.Unmarshal(cfg, &c); err != nil {
				t.Fatal(err)
			}
			if err := caddy.Validate(&c); err != nil {
				t.Fatalf("%s does not run as shipped: %v", filepath.Base(f), err)
			}
		})
	}
}

// TestExamples_Quickstart runs the quickstart Caddyfile (on free ports and
// a temporary store) and signs in as the demo account the README names.
func TestExamples_Quickstart(t *testing.T) {
	src, err := os.ReadFile("../caddyfile-examples/quickstart.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	issuerPort, appPort, apiPort := freePort(t), freePort(t), freePort(t)
	cf := strings.NewReplacer(
		"localhost:9000", fmt.Sprintf("localhost:%d", issuerPort),
		"127.0.0.1:9001", fmt.Sprintf("127.0.0.1:%d", appPort),
		"127.0.0.1:9002", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"\tgatehouse {\n\t\t#", fmt.Sprintf("\tgatehouse {\n\t\tstore sqlite %s\n\t\t#", filepath.Join(t.TempDir(), "qs.db")),
	).Replace(string(src))
	if !strings.Contains(cf, "store sqlite") {
		t.Fatal("could not point the quickstart at a temporary store")
	}
	startCaddy(t, cf)
	app := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	b := browser(t)
	resp, _ := do(t, b, "GET", app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("quickstart app did not send the browser to sign in: %d", resp.StatusCode)
	}
	back := signIn(t, b, loc.String(), "alice", "gatehouse-demo")
	do(t, b, "GET", back.String(), nil)
	resp, body := do(t, b, "GET", app+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello alice@example.com (sub alice)") {
		t.Fatalf("quickstart page: %d %q", resp.StatusCode, body)
	}

	// A client that is not a browser (curl) gets 401 and a challenge, never
	// the login redirect.
	resp, _ = do(t, nil, "GET", app+"/", nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
		t.Fatalf("curl at the app: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// The API quickstart, as the README's curl lines do it:
	//   curl -s -u demo-service:gatehouse-demo-service-secret -d grant_type=client_credentials -d scope=orders:read http://localhost:9000/token
	//   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9002/orders
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	resp, _ = do(t, nil, "GET", api+"/orders", nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
		t.Fatalf("the API without a token: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/token", issuerPort),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}.Encode()))
	req.SetBasicAuth("demo-service", "gatehouse-demo-service-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	if err != nil || tr.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", tr.StatusCode, err)
	}
	resp, body = do(t, nil, "GET", api+"/orders", map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if resp.StatusCode != 200 || body != "Orders for demo-service" {
		t.Fatalf("the API with the token: %d %q", resp.StatusCode, body)
	}
}

// TestExamples_ProductionHasNoLiteralSecrets: the production example takes
// passwords and secrets from the environment, never the quickstart's demo
// ones.
func TestExamples_ProductionHasNoLiteralSecrets(t *testing.T) {
	src, err := os.ReadFile("../caddyfile-examples/production.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "password_hash" || f[0] == "secret" || f[0] == "key_encryption_key") && !envPlaceholder.MatchString(f[1]) {
			t.Errorf("production.Caddyfile: %q is not read from the environment", strings.TrimSpace(line))
		}
	}
}
