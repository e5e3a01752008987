package integration

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// securityHeaders are the response headers every HTML page Gatehouse
// renders carries.
var securityHeaders = []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control"}

// TestGate_AccessDeniedPageCannotBeFramed is the regression test for the
// gate's 403 page lacking the issuer's page headers: without
// frame-ancestors / X-Frame-Options another site could frame it (and its
// sign-out link) under a decoy. Every page Gatehouse renders carries the
// same security headers as the issuer's.
func TestGate_AccessDeniedPageCannotBeFramed(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "mallory")
	resp, body := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 403 || !strings.Contains(body, "Access denied") {
		t.Fatalf("policy denial: %d %q", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("403 page Content-Security-Policy %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("403 page X-Frame-Options %q, X-Content-Type-Options %q", resp.Header.Get("X-Frame-Options"), resp.Header.Get("X-Content-Type-Options"))
	}
	// The same headers as the issuer's own error page (the gate's page
	// allows its form to lead on to the issuer: form-action names it).
	issuerPage, _ := do(t, nil, "GET", env.issuer+"/authorize?client_id=nobody&response_type=code", nil)
	if ct := issuerPage.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("the issuer's error page is %q", ct)
	}
	for _, h := range securityHeaders {
		got, want := resp.Header.Get(h), issuerPage.Header.Get(h)
		if h == "Content-Security-Policy" {
			got = strings.Replace(got, "form-action 'self' "+env.issuer+";", "form-action 'self';", 1)
		}
		if got != want || want == "" {
			t.Errorf("%s: gate page %q, issuer page %q", h, got, want)
		}
	}
}

// htmlNav marks a request as a browser's top-level navigation.
var htmlNav = map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

// checkGatePage fails unless resp is one of the gate's HTML pages with the
// given status and heading, carrying the security headers, a language and a
// title.
func checkGatePage(t *testing.T, resp *http.Response, body string, status int, heading string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, "<h1>"+html.EscapeString(heading)+"</h1>") {
		t.Fatalf("want the %q page with %d, got %d:\n%s", heading, status, resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "<title>") {
		t.Errorf("%q page: Content-Type %q, body %s", heading, resp.Header.Get("Content-Type"), body)
	}
	for _, h := range securityHeaders {
		if resp.Header.Get(h) == "" {
			t.Errorf("%q page without %s", heading, h)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%q page: CSP %q, Cache-Control %q", heading, resp.Header.Get("Content-Security-Policy"), resp.Header.Get("Cache-Control"))
	}
}

var pageLink = regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`)

// links returns the page's links as text → href.
func links(body string) map[string]string {
	m := map[string]string{}
	for _, l := range pageLink.FindAllStringSubmatch(body, -1) {
		m[l[2]] = html.UnescapeString(l[1])
	}
	return m
}

// dropCookies deletes the browser's cookies for site whose names start with
// prefix, as a browser does when they expire.
func dropCookies(b *http.Client, site, prefix string) int {
	u, _ := url.Parse(site)
	var gone []*http.Cookie
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, prefix) {
			gone = append(gone, &http.Cookie{Name: c.Name, Path: "/", MaxAge: -1})
		}
	}
	b.Jar.SetCookies(u, gone)
	return len(gone)
}

// startAt navigates to a protected page and returns the issuer URL the
// gate sent the browser to.
func startAt(t *testing.T, b *http.Client, page string) string {
	t.Helper()
	resp, _ := do(t, b, "GET", page, htmlNav)
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("%s: no redirect to sign in: %d", page, resp.StatusCode)
	}
	return loc.String()
}

// TestGate_StaleCallbackStartsTheLoginAgain: a callback whose login cookie
// expired while the issuer's form was open answered 400 with an empty body,
// and the browser showed its own "HTTP ERROR 400". Now a navigation to it
// starts the login again (the issuer's SSO session completes it at once),
// without redeeming the code it carried; a restarted login that fails the
// same way (a browser that keeps no cookies) gets a page instead of another
// round, and so does a callback that is not a navigation.
func TestGate_StaleCallbackStartsTheLoginAgain(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`)

	b := browser(t)
	back := signIn(t, b, startAt(t, b, env.app+"/orders?id=7"), "alice", testPassword)
	if dropCookies(b, env.app, "gatehouse-login-") != 1 {
		t.Fatal("no pending-login cookie to expire")
	}
	// Not a navigation (a script, curl): a page, never a new login.
	resp, body := do(t, b, "GET", back.String(), nil)
	checkGatePage(t, resp, body, 400, "Sign-in expired")
	if l := links(body); l["Try signing in again"] != "/" {
		t.Errorf("links %v, want Try signing in again → /", l)
	}
	// A navigation starts the login again, marked as a restart.
	resp, _ = do(t, b, "GET", back.String(), htmlNav)
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/authorize?") || !strings.HasPrefix(loc.Query().Get("state"), "r.") {
		t.Fatalf("stale callback: %d %v, want a restarted login at the issuer", resp.StatusCode, loc)
	}
	// The issuer's SSO session completes it without a form.
	resp, _ = do(t, b, "GET", loc.String(), nil)
	cb, _ := resp.Location()
	if resp.StatusCode != 302 || cb == nil || !strings.HasPrefix(cb.String(), env.app+"/.gatehouse/callback?") || cb.Query().Get("code") == "" {
		t.Fatalf("restarted authorize: %d %v, want a code at once", resp.StatusCode, cb)
	}
	if cb.Query().Get("code") == back.Query().Get("code") {
		t.Fatal("the restarted login reused the stale code")
	}
	resp, _ = do(t, b, "GET", cb.String(), htmlNav)
	if l := resp.Header.Get("Location"); resp.StatusCode != 302 || l != "/" {
		t.Fatalf("restarted callback: %d %v, want the site", resp.StatusCode, l)
	}
	if resp, _ := do(t, b, "GET", env.app+"/x", nil); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "alice" {
		t.Fatalf("after the restarted login: %d, subject %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Subject"))
	}

	t.Run("a restart that fails again shows a page", func(t *testing.T) {
		b := browser(t)
		back := signIn(t, b, startAt(t, b, env.app+"/"), "alice", testPassword)
		dropCookies(b, env.app, "gatehouse-login-")
		resp, _ := do(t, b, "GET", back.String(), htmlNav)
		loc, _ := resp.Location()
		if resp.StatusCode != 302 || loc == nil {
			t.Fatalf("stale callback: %d", resp.StatusCode)
		}
		dropCookies(b, env.app, "gatehouse-login-") // a browser that keeps none
		resp, _ = do(t, b, "GET", loc.String(), nil)
		cb, _ := resp.Location()
		resp, body := do(t, b, "GET", cb.String(), htmlNav)
		checkGatePage(t, resp, body, 400, "Sign-in could not be completed")
		if !strings.Contains(body, "blocking cookies") || links(body)["Try signing in again"] != "/" {
			t.Errorf("page %s", body)
		}
	})

	t.Run("a provider error nobody can match shows a page without its text", func(t *testing.T) {
		q := url.Values{"error": {"access_denied"}, "error_description": {"Call 555-0100 to restore your access"}, "state": {"whatever"}}
		resp, body := do(t, browser(t), "GET", env.app+"/.gatehouse/callback?"+q.Encode(), htmlNav)
		checkGatePage(t, resp, body, 403, "Sign-in refused")
		if strings.Contains(body, "555") {
			t.Errorf("a forged error_description is shown: %s", body)
		}
	})
}

// cancelSignIn follows authURL to the issuer's sign-in form and presses
// Cancel; it returns where the issuer sends the browser.
func cancelSignIn(t *testing.T, c *http.Client, authURL string) *url.URL {
	t.Helper()
	resp, _ := do(t, c, "GET", authURL, nil)
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil {
		t.Fatalf("authorize: %d, want the sign-in form", resp.StatusCode)
	}
	resp, page := do(t, c, "GET", loc.String(), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in form: %d", resp.StatusCode)
	}
	form := url.Values{"cancel": {"1"}}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	post, err := c.PostForm(loc.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	back, err := post.Location()
	if err != nil {
		t.Fatalf("cancel: %d, want a redirect", post.StatusCode)
	}
	return back
}

// TestGate_CancelledOrRefusedSignInHasItsOwnPage: Cancel on the issuer's
// sign-in form came back as access_denied and the gate showed its 403 page,
// "You are signed in, but…" — to someone who is not. A cancelled sign-in
// now gets a page that says so with a link that starts it again; a sign-in
// the issuer refused (the client's policies) says so, shows the issuer's
// reason and offers to sign in as someone else, which asks the issuer for
// credentials even though it has a session.
func TestGate_CancelledOrRefusedSignInHasItsOwnPage(t *testing.T) {
	env := startGate(t, `
			login admin-console
			forward X-Auth-Subject sub`)

	t.Run("cancelled", func(t *testing.T) {
		b := browser(t)
		back := cancelSignIn(t, b, startAt(t, b, env.app+"/reports?q=1&r=2"))
		if !strings.HasPrefix(back.String(), env.app+"/.gatehouse/callback?") || back.Query().Get("error") != "access_denied" {
			t.Fatalf("cancel went to %s", back)
		}
		resp, body := do(t, b, "GET", back.String(), htmlNav)
		checkGatePage(t, resp, body, 403, "Sign-in cancelled")
		if strings.Contains(body, "You are signed in") || strings.Contains(body, "Access denied") {
			t.Errorf("the cancelled page claims a session: %s", body)
		}
		retry := links(body)["Try signing in again"]
		if retry != "/reports?q=1&r=2" {
			t.Fatalf("Try signing in again → %q, want the page asked for", retry)
		}
		// The link starts the sign-in again.
		if l := startAt(t, b, env.app+retry); !strings.HasPrefix(l, env.issuer+"/authorize?") {
			t.Fatalf("retry went to %s", l)
		}
	})

	t.Run("refused", func(t *testing.T) {
		b := browser(t)
		back := signIn(t, b, startAt(t, b, env.app+"/admin"), "mallory", testPassword)
		resp, body := do(t, b, "GET", back.String(), htmlNav)
		checkGatePage(t, resp, body, 403, "Sign-in refused")
		if !strings.Contains(body, "access denied by policy") || links(body)["Try signing in again"] != "/admin" {
			t.Errorf("refused page: %s", body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+env.issuer) {
			t.Errorf("the page's form leads to the issuer, but its CSP is %q", csp)
		}
		form := formFields(t, body, "Sign in as someone else")
		if form.Get("switch") != "1" || form.Get("return") != "/admin" {
			t.Fatalf("switch form %v", form)
		}
		// Another account: the issuer asks for credentials although
		// mallory's SSO session is alive.
		post, err := b.PostForm(env.app+"/.gatehouse/logout", form)
		if err != nil {
			t.Fatal(err)
		}
		post.Body.Close()
		auth, _ := post.Location()
		if post.StatusCode != 302 || auth == nil || auth.Query().Get("prompt") != "login" {
			t.Fatalf("switch: %d %v, want a login with prompt=login", post.StatusCode, auth)
		}
		back = signIn(t, b, auth.String(), "alice", testPassword)
		resp, _ = do(t, b, "GET", back.String(), htmlNav)
		if l := resp.Header.Get("Location"); resp.StatusCode != 302 || l != "/admin" {
			t.Fatalf("callback as alice: %d %v", resp.StatusCode, l)
		}
		if resp, _ := do(t, b, "GET", env.app+"/admin", nil); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "alice" {
			t.Fatalf("as alice: %d %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Subject"))
		}
	})
}

var formRe = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)">(.*?)</form>`)
var inputRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// formFields returns the hidden fields of the page's form whose button says
// button, failing unless it posts to the gate's logout path.
func formFields(t *testing.T, body, button string) url.Values {
	t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[2], ">"+button+"</button>") {
			continue
		}
		if m[1] != "/.gatehouse/logout" {
			t.Fatalf("the %q form posts to %q", button, m[1])
		}
		v := url.Values{}
		for _, f := range inputRe.FindAllStringSubmatch(m[2], -1) {
			v.Set(f[1], html.UnescapeString(f[2]))
		}
		return v
	}
	t.Fatalf("no %q form on the page:\n%s", button, body)
	return nil
}

// TestGate_LogoutLandsOnASignedOutPage: after logout the browser went back
// to "/", which started a login at once — the user saw the sign-in form
// again instead of being told they had signed out. The gate's logout now
// ends at its own signed-out page (after the issuer's logout, which accepts
// that page on the client's site through its sealed hint without a
// registration), unless post_logout_redirect names another place.
func TestGate_LogoutLandsOnASignedOutPage(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "alice")

	// Signed in, the page is not for this browser: it goes to the site.
	resp, _ := do(t, b, "GET", env.app+"/.gatehouse/signed-out", htmlNav)
	if l := resp.Header.Get("Location"); resp.StatusCode != 303 || l != "/" {
		t.Fatalf("signed-out page while signed in: %d %v", resp.StatusCode, l)
	}

	resp, _ = do(t, b, "GET", env.app+"/.gatehouse/logout", sameOrigin)
	end, _ := resp.Location()
	if resp.StatusCode != 302 || end == nil || !strings.HasPrefix(end.String(), env.issuer+"/logout?") || end.Query().Get("post_logout_redirect_uri") != env.app+"/.gatehouse/signed-out" {
		t.Fatalf("logout: %d %v", resp.StatusCode, end)
	}
	resp, _ = do(t, b, "GET", end.String(), nil)
	landing, _ := resp.Location()
	if resp.StatusCode != 302 || landing == nil || landing.String() != env.app+"/.gatehouse/signed-out" {
		t.Fatalf("the issuer's logout: %d %v, want the gate's signed-out page", resp.StatusCode, landing)
	}
	resp, body := do(t, b, "GET", landing.String(), htmlNav)
	checkGatePage(t, resp, body, 200, "You are signed out")
	if links(body)["Sign in again"] != "/" {
		t.Errorf("links %v", links(body))
	}
	// Both sessions ended: the site asks for credentials again.
	auth := startAt(t, b, env.app+"/")
	if resp, _ := do(t, b, "GET", auth, nil); resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/login?") {
		t.Fatalf("after logout the issuer signed the browser in silently: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Without a session, the logout path goes straight to the page.
	resp, _ = do(t, browser(t), "GET", env.app+"/.gatehouse/logout", sameOrigin)
	if l := resp.Header.Get("Location"); resp.StatusCode != 302 || l != "/.gatehouse/signed-out" {
		t.Fatalf("logout without a session: %d %v", resp.StatusCode, l)
	}
}

// TestGate_PostLogoutRedirectOnTheSite: a configured post_logout_redirect
// path on the gate's site needs no registration at the embedded issuer
// either; a URL elsewhere must be registered exactly.
func TestGate_PostLogoutRedirectOnTheSite(t *testing.T) {
	env := startGate(t, `
			login webapp {
				post_logout_redirect /goodbye
			}
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "alice")
	resp, _ := do(t, b, "GET", env.app+"/.gatehouse/logout", sameOrigin)
	end, _ := resp.Location()
	if end == nil {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	resp, _ = do(t, b, "GET", end.String(), nil)
	if l, _ := resp.Location(); resp.StatusCode != 302 || l == nil || l.String() != env.app+"/goodbye" {
		t.Fatalf("the issuer's logout: %d %v, want %s/goodbye", resp.StatusCode, l, env.app)
	}
}

// TestGate_DeniedPageNamesTheAccountAndOffersAnother: the 403 page said
// "You are signed in" without saying as whom, and offered only a sign-out
// link that ended at the same account again (the issuer's session signed it
// straight back in). It now names the account and has a "Sign in as someone
// else" button: a POST to the logout path with the logout CSRF token that
// ends the gate's session and asks the issuer for credentials. A cross-site
// POST without the token gets the logout confirmation page, not a logout.
func TestGate_DeniedPageNamesTheAccountAndOffersAnother(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "mallory")
	resp, body := do(t, b, "GET", env.app+"/wiki?page=1", htmlNav)
	checkGatePage(t, resp, body, 403, "Access denied")
	if !strings.Contains(body, "You are signed in as <strong>mallory</strong>") || !strings.Contains(body, "<code>admins-only</code>") {
		t.Fatalf("denied page does not name the account and policy:\n%s", body)
	}
	form := formFields(t, body, "Sign in as someone else")
	if form.Get("switch") != "1" || form.Get("return") != "/wiki?page=1" || form.Get("csrf") == "" {
		t.Fatalf("switch form %v", form)
	}
	stillSignedIn := func() bool {
		resp, _ := do(t, b, "GET", env.app+"/wiki", map[string]string{"Accept": "application/json"})
		return resp.StatusCode == 403
	}

	// A cross-site POST without the token: the confirmation page.
	forged := url.Values{"switch": {"1"}, "return": {"/"}}
	req, _ := http.NewRequest("POST", env.app+"/.gatehouse/logout", strings.NewReader(forged.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	fresp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fbody, _ := io.ReadAll(fresp.Body)
	fresp.Body.Close()
	if fresp.StatusCode != 403 || !strings.Contains(string(fbody), "Sign out?") || !stillSignedIn() {
		t.Fatalf("a cross-site switch without the token: %d, signed in %v", fresp.StatusCode, stillSignedIn())
	}

	// The button (its POST carries the token; no Sec-Fetch-Site needed).
	u, _ := url.Parse(env.app)
	stolen := browser(t)
	stolen.Jar.SetCookies(u, b.Jar.Cookies(u))
	post, err := b.PostForm(env.app+"/.gatehouse/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	auth, _ := post.Location()
	if post.StatusCode != 302 || auth == nil || !strings.HasPrefix(auth.String(), env.issuer+"/authorize?") || auth.Query().Get("prompt") != "login" {
		t.Fatalf("switch: %d %v", post.StatusCode, auth)
	}
	if resp, _ := do(t, stolen, "GET", env.app+"/wiki", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
		t.Fatalf("mallory's session after the switch: %d, want 401", resp.StatusCode)
	}
	back := signIn(t, b, auth.String(), "alice", testPassword)
	resp, _ = do(t, b, "GET", back.String(), htmlNav)
	if l := resp.Header.Get("Location"); resp.StatusCode != 302 || l != "/wiki?page=1" {
		t.Fatalf("callback as alice: %d %v", resp.StatusCode, l)
	}
	if resp, _ := do(t, b, "GET", env.app+"/wiki?page=1", nil); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "alice" {
		t.Fatalf("as alice: %d %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Subject"))
	}
}

// TestGate_UnreachableProviderShowsAPage: a gate whose external provider
// cannot be reached answered a navigation 502 with an empty body (the
// browser's own error page); it now shows a page with a link to try again,
// while API-style requests keep their 401.
func TestGate_UnreachableProviderShowsAPage(t *testing.T) {
	down := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	env := startGate(t, `
			login {
				issuer `+down+`
				client_id webapp
			}
			forward X-Auth-Subject sub`)
	resp, body := do(t, browser(t), "GET", env.app+"/orders?id=1", htmlNav)
	checkGatePage(t, resp, body, 502, "Sign-in unavailable")
	if links(body)["Try signing in again"] != "/orders?id=1" {
		t.Errorf("links %v", links(body))
	}
	if resp, _ := do(t, nil, "GET", env.app+"/orders", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
		t.Errorf("an API request: %d, want 401", resp.StatusCode)
	}
}
