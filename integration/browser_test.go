package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// pageCapture is one page pages.mjs recorded.
type pageCapture struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Status int    `json:"status"`
	Lang   string `json:"lang"`
	Title  string `json:"title"`
	H1     string `json:"h1"`
	Text   string `json:"text"`
	Links  []struct {
		Text string `json:"text"`
		Href string `json:"href"`
	} `json:"links"`
	Buttons []string `json:"buttons"`
}

// link returns the href of the link whose text is text.
func (c *pageCapture) link(text string) (string, bool) {
	for _, l := range c.Links {
		if l.Text == text {
			return l.Href, true
		}
	}
	return "", false
}

// step is one step of a pages.mjs plan.
type step map[string]any

// runBrowserPages runs pages.mjs with plan in a fresh headless Chromium and
// returns its captures by name.
func runBrowserPages(t *testing.T, node string, plan []step) map[string]*pageCapture {
	t.Helper()
	raw, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(repoRoot(t), "integration", "browser", "pages.mjs"), string(raw))
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("pages.mjs took %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("pages.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var res struct {
		Captures []*pageCapture `json:"captures"`
		Hops     []string       `json:"hops"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("pages.mjs printed no JSON result: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("hops: %s", strings.Join(res.Hops, " -> "))
	out := map[string]*pageCapture{}
	for _, c := range res.Captures {
		out[c.Name] = c
	}
	return out
}

// screenshotKeepEnv names a folder where the page tests keep their
// screenshots for people to look at (they are checked in the test's
// temporary folder either way).
const screenshotKeepEnv = "GATEHOUSE_SCREENSHOTS"

// TestBrowser_GatePages walks through the gate's own pages in headless
// Chromium — the ones that replaced the browser's error pages and a
// misleading 403 — and checks each page's text, its accessibility basics
// (lang, title, one heading, link text) and a screenshot:
//
//   - a login cookie that expired while the sign-in form was open: the
//     login starts again and completes; a restarted login that cannot be
//     matched either shows "Sign-in could not be completed";
//   - Cancel on the sign-in form: "Sign-in cancelled", whose link starts it
//     again;
//   - logout: "You are signed out", whose link signs in again;
//   - a policy refusal: "Access denied" naming the account, whose "Sign in
//     as someone else" button leads through the sign-in form (the form's
//     CSP must let the POST's redirects reach the issuer) to the page as
//     another user.
func TestBrowser_GatePages(t *testing.T) {
	node := requireNodeTests(t, true, filepath.Join(repoRoot(t), "integration", "browser"))
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub`)
	shots := t.TempDir()
	keep := os.Getenv(screenshotKeepEnv)
	shot := func(name string) string { return filepath.Join(shots, name+".png") }
	checkShot := func(t *testing.T, name string) {
		t.Helper()
		k := ""
		if keep != "" {
			k = filepath.Join(keep, "gatehouse-page-"+name+".png")
		}
		checkPNG(t, shot(name), k)
	}
	// checkPage checks a gate page's basics.
	checkPage := func(t *testing.T, c *pageCapture, status int, heading string) {
		t.Helper()
		if c == nil {
			t.Fatal("page not captured")
		}
		if c.Status != status || c.H1 != heading || c.Lang != "en" || c.Title == "" {
			t.Fatalf("%s: status %d h1 %q lang %q title %q, want %d %q; text:\n%s", c.URL, c.Status, c.H1, c.Lang, c.Title, status, heading, c.Text)
		}
		if strings.Contains(c.Text, "HTTP ERROR") {
			t.Fatalf("the browser's own error page: %s", c.Text)
		}
	}
	signinPage := func(t *testing.T, c *pageCapture) {
		t.Helper()
		if c == nil || !strings.HasPrefix(c.URL, env.issuer+"/login?") || c.H1 != "Sign in" {
			t.Fatalf("want the issuer's sign-in form, got %+v", c)
		}
	}

	t.Run("stale callback", func(t *testing.T) {
		got := runBrowserPages(t, node, []step{
			{"goto": env.app + "/orders?id=7"},
			{"dropCookies": "gatehouse-login-"}, // expired while the form was open
			{"signIn": []string{"alice", testPassword}},
			{"capture": "restarted"},
			{"goto": env.app + "/.gatehouse/callback?state=r.restarted-elsewhere&code=stale"},
			{"capture": "stale", "shot": shot("stale")},
		})
		if c := got["restarted"]; c == nil || c.Status != 200 || c.URL != env.app+"/" || strings.TrimSpace(c.Text) != "upstream saw /" {
			t.Fatalf("after a stale callback the login did not complete: %+v", c)
		}
		c := got["stale"]
		checkPage(t, c, 400, "Sign-in could not be completed")
		if !strings.Contains(c.Text, "blocking cookies") {
			t.Errorf("text %q", c.Text)
		}
		if href, ok := c.link("Try signing in again"); !ok || href != "/" {
			t.Errorf("links %+v", c.Links)
		}
		checkShot(t, "stale")
	})

	t.Run("cancelled sign-in", func(t *testing.T) {
		got := runBrowserPages(t, node, []step{
			{"goto": env.app + "/reports?q=1"},
			{"cancel": true},
			{"capture": "cancelled", "shot": shot("cancelled")},
			{"click": "Try signing in again"},
			{"capture": "retry"},
		})
		c := got["cancelled"]
		checkPage(t, c, 403, "Sign-in cancelled")
		if !strings.Contains(c.Text, "not signed in") || strings.Contains(c.Text, "You are signed in") {
			t.Errorf("text %q", c.Text)
		}
		if href, ok := c.link("Try signing in again"); !ok || href != "/reports?q=1" {
			t.Errorf("links %+v", c.Links)
		}
		checkShot(t, "cancelled")
		signinPage(t, got["retry"])
	})

	t.Run("signed out", func(t *testing.T) {
		got := runBrowserPages(t, node, []step{
			{"goto": env.app + "/"},
			{"signIn": []string{"alice", testPassword}},
			{"goto": env.app + "/.gatehouse/logout"},
			{"capture": "signed-out", "shot": shot("signed-out")},
			{"click": "Sign in again"},
			{"capture": "again"},
		})
		c := got["signed-out"]
		checkPage(t, c, 200, "You are signed out")
		if c.URL != env.app+"/.gatehouse/signed-out" {
			t.Errorf("landed at %s", c.URL)
		}
		if href, ok := c.link("Sign in again"); !ok || href != "/" {
			t.Errorf("links %+v", c.Links)
		}
		checkShot(t, "signed-out")
		signinPage(t, got["again"]) // the issuer's session ended too
	})

	t.Run("access denied", func(t *testing.T) {
		got := runBrowserPages(t, node, []step{
			{"goto": env.app + "/wiki"},
			{"signIn": []string{"mallory", testPassword}},
			{"capture": "denied", "shot": shot("denied")},
			{"click": "Sign in as someone else"},
			{"capture": "switch"},
			{"signIn": []string{"alice", testPassword}},
			{"capture": "switched"},
		})
		c := got["denied"]
		checkPage(t, c, 403, "Access denied")
		if !strings.Contains(c.Text, "You are signed in as mallory") || !strings.Contains(c.Text, "admins-only") {
			t.Errorf("text %q", c.Text)
		}
		if !slices.Contains(c.Buttons, "Sign in as someone else") {
			t.Errorf("buttons %q", c.Buttons)
		}
		checkShot(t, "denied")
		signinPage(t, got["switch"])
		if s := got["switched"]; s == nil || s.Status != 200 || s.URL != env.app+"/wiki" || env.upstream.header().Get("X-Auth-Subject") != "alice" {
			t.Fatalf("after signing in as someone else: %+v, subject %q", s, env.upstream.header().Get("X-Auth-Subject"))
		}
	})
}
