package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Browser and federation tests drive real programs outside Go: Debian's
// Chromium through playwright-core (integration/browser) and the reference
// OpenID provider, node oidc-provider (integration/testdata/op).
// `.ci/deps-browser.sh` installs all of them. They run when
// GATEHOUSE_BROWSER_TESTS=1 or CI=true and then fail, never skip, when
// something is missing.

const (
	chromiumPath   = "/usr/bin/chromium"
	browserTestEnv = "GATEHOUSE_BROWSER_TESTS"
	depsScript     = ".ci/deps-browser.sh"
)

// requireNodeTests skips unless browser tests are enabled, then fails when a
// program or node package they need is missing. It returns the absolute path
// of node.
func requireNodeTests(t *testing.T, chromium bool, nodeDirs ...string) string {
	t.Helper()
	if os.Getenv(browserTestEnv) != "1" && os.Getenv("CI") != "true" {
		t.Skipf("browser/federation tests are off: run `bash %s` (as root: apt-get chromium, npm ci) and set %s=1 to run them; CI=true runs them too", depsScript, browserTestEnv)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v; run `bash %s`", err, depsScript)
	}
	if chromium {
		if fi, err := os.Stat(chromiumPath); err != nil || fi.IsDir() {
			t.Fatalf("%s is missing (%v); run `bash %s` to install Debian's chromium", chromiumPath, err, depsScript)
		}
	}
	for _, dir := range nodeDirs {
		var pkg struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err == nil {
			err = json.Unmarshal(raw, &pkg)
		}
		if err != nil {
			t.Fatalf("reading %s/package.json: %v", dir, err)
		}
		for name := range pkg.Dependencies {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
				t.Fatalf("node package %s is not installed in %s; run `bash %s`", name, dir, depsScript)
			}
		}
	}
	return node
}

// repoRoot is the repository's top-level folder (the test runs in
// integration/).
func repoRoot(t testing.TB) string {
	t.Helper()
	if out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" {
			return dir
		}
	}
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserResult is what integration/browser/login.mjs prints.
type browserResult struct {
	LoginURL string   `json:"loginURL"`
	FinalURL string   `json:"finalURL"`
	Status   int      `json:"status"`
	Title    string   `json:"title"`
	BodyText string   `json:"bodyText"`
	Error    string   `json:"error"`
	Hops     []string `json:"hops"`
	Cookies  []struct {
		Name     string `json:"name"`
		Domain   string `json:"domain"`
		Path     string `json:"path"`
		HTTPOnly bool   `json:"httpOnly"`
		SameSite string `json:"sameSite"`
	} `json:"cookies"`
}

// cookie finds the first cookie whose name matches.
func (r *browserResult) cookie(match func(name string) bool) (httpOnly bool, sameSite string, ok bool) {
	for _, c := range r.Cookies {
		if match(c.Name) {
			return c.HTTPOnly, c.SameSite, true
		}
	}
	return false, "", false
}

func (r *browserResult) cookieNames() []string {
	var names []string
	for _, c := range r.Cookies {
		names = append(names, c.Name)
	}
	return names
}

// runBrowserLogin runs login.mjs in headless Chromium and returns its
// result; shot and after are the screenshots of the sign-in page before and
// after submitting it.
func runBrowserLogin(t *testing.T, node, appURL, username, password, shot, after string) *browserResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(repoRoot(t), "integration", "browser", "login.mjs"), appURL, username, password, shot, after)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("login.mjs as %s took %v", username, time.Since(start).Round(time.Millisecond))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("login.mjs did not finish within 90s\nstderr:\n%s", stderr.String())
		}
		t.Fatalf("login.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var res browserResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("login.mjs printed no JSON result: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return &res
}

// checkPNG fails unless path holds a PNG image of some substance, and copies
// it to keep (for people to look at) when keep is not empty.
func checkPNG(t *testing.T, path, keep string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 2000 {
		t.Fatalf("screenshot %s is not a PNG of a rendered page (%d bytes)", path, len(b))
	}
	if keep != "" {
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Logf("keeping the screenshot at %s: %v", keep, err)
		} else {
			t.Logf("screenshot: %s", keep)
		}
	}
}

// TestBrowser_LoginThroughEmbeddedIssuer signs in to a protected app in
// headless Chromium: the gate sends the browser to the embedded issuer's
// sign-in page, a person types a username and password, and the browser
// lands back on the page it asked for, with the user's claims forwarded to
// the upstream.
func TestBrowser_LoginThroughEmbeddedIssuer(t *testing.T) {
	node := requireNodeTests(t, true, filepath.Join(repoRoot(t), "integration", "browser"))
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub
			forward X-Auth-Email email
			forward X-Auth-Groups groups`)
	target := env.app + "/dashboard?tab=1"
	shots := t.TempDir()

	// Each case starts a fresh browser profile: no cookies carry over.
	for _, tc := range []struct {
		name     string
		password string
		keep     string // where the screenshot is kept for people to look at
		check    func(t *testing.T, res *browserResult, hitsBefore int64)
	}{
		{
			name:     "a wrong password shows an error on the sign-in page and starts no session",
			password: "wrong horse battery staple",
			keep:     filepath.Join(os.TempDir(), "gatehouse-browser-login-error.png"),
			check: func(t *testing.T, res *browserResult, hitsBefore int64) {
				if !strings.HasPrefix(res.FinalURL, env.issuer+"/login") || res.Status != 401 {
					t.Errorf("after a wrong password the browser is at %s (status %d), want the issuer's sign-in page with 401", res.FinalURL, res.Status)
				}
				if res.Error != "Incorrect username or password." || !strings.Contains(res.BodyText, "Incorrect username or password.") {
					t.Errorf("sign-in page error %q; body:\n%s", res.Error, res.BodyText)
				}
				if res.Title != "Sign in" {
					t.Errorf("title %q, want the sign-in page", res.Title)
				}
				for name, match := range map[string]func(string) bool{
					"session":    isSessionCookie,
					"issuer SSO": func(n string) bool { return strings.HasPrefix(n, "gatehouse-sso-") },
				} {
					if _, _, ok := res.cookie(match); ok {
						t.Errorf("a wrong password left a %s cookie: %v", name, res.cookieNames())
					}
				}
				if n := env.upstream.hits.Load(); n != hitsBefore {
					t.Errorf("the upstream was reached %d times after a wrong password", n-hitsBefore)
				}
			},
		},
		{
			name:     "the right password lands on the page asked for with the user forwarded upstream",
			password: testPassword,
			keep:     filepath.Join(os.TempDir(), "gatehouse-browser-login.png"),
			check: func(t *testing.T, res *browserResult, hitsBefore int64) {
				if res.FinalURL != target || res.Status != 200 {
					t.Fatalf("after signing in the browser is at %s (status %d), want %s with 200; body:\n%s", res.FinalURL, res.Status, target, res.BodyText)
				}
				if strings.TrimSpace(res.BodyText) != "upstream saw /dashboard" {
					t.Errorf("page body %q, want the upstream's answer", res.BodyText)
				}
				// Chromium also asks for /favicon.ico, with the same session.
				if n := env.upstream.hits.Load() - hitsBefore; n < 1 {
					t.Errorf("the upstream was never reached")
				}
				h := env.upstream.header()
				if h.Get("X-Auth-Subject") != "alice" || h.Get("X-Auth-Email") != "alice@example.com" || h.Get("X-Auth-Groups") != "admins,dev" {
					t.Errorf("upstream identity headers: subject %q email %q groups %q", h.Get("X-Auth-Subject"), h.Get("X-Auth-Email"), h.Get("X-Auth-Groups"))
				}
				if strings.Contains(h.Get("Cookie"), "gatehouse") {
					t.Errorf("a Gatehouse cookie reached the upstream: %q", h.Get("Cookie"))
				}
				httpOnly, sameSite, ok := res.cookie(isSessionCookie)
				if !ok || !httpOnly || sameSite != "Lax" {
					t.Errorf("session cookie: present %v HttpOnly %v SameSite %q; cookies %v", ok, httpOnly, sameSite, res.cookieNames())
				}
				if _, _, ok := res.cookie(func(n string) bool { return strings.HasPrefix(n, "gatehouse-login-") }); ok {
					t.Errorf("the pending-login cookie outlived the callback: %v", res.cookieNames())
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shot, after := filepath.Join(shots, "login.png"), filepath.Join(shots, "after.png")
			hits := env.upstream.hits.Load()
			res := runBrowserLogin(t, node, target, "alice", tc.password, shot, after)
			if !strings.HasPrefix(res.LoginURL, env.issuer+"/login?") {
				t.Fatalf("the protected page sent the browser to %s, want the issuer's sign-in page %s/login", res.LoginURL, env.issuer)
			}
			checkPNG(t, shot, filepath.Join(os.TempDir(), "gatehouse-browser-signin-page.png"))
			checkPNG(t, after, tc.keep)
			tc.check(t, res, hits)
			if t.Failed() {
				t.Logf("browser result: %+v", res)
			}
		})
	}
}
