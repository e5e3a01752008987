package integration

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGate_LogoutEndsSessionsWithoutRefreshTokens is the regression test
// for a logout that ended nothing on the server when the client gets no
// refresh token: logout then had no token to revoke, so a copy of the
// session cookie taken before (a stolen cookie, another tab's jar) stayed
// valid until the access token expired, at a gate of the embedded issuer
// and at a gate of an external provider alike. Logout now revokes the
// session's own id in the store, which the gates of every instance refuse.
func TestGate_LogoutEndsSessionsWithoutRefreshTokens(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	external := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	var cf string
	cf = issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	gatehouse {
		login webapp
		forward X-Auth-Subject sub
	}
	reverse_proxy %s
}

%s {
	gatehouse {
		login {
			issuer %s
			client_id webapp
			client_secret webapp-secret-0123456789abcdef
			scopes openid profile
		}
		forward X-Auth-Subject sub
	}
	reverse_proxy %s
}`, env.app, env.upstream.addr(), external, env.issuer, env.upstream.addr()))
	webapp := "client webapp {\n\t\t\t\tsecret webapp-secret-0123456789abcdef\n\t\t\t\tredirect_uris " + env.redirect + "\n"
	if !strings.Contains(cf, webapp) {
		t.Fatal("cannot find the webapp client")
	}
	// No refresh tokens for this client; the external gate's callback too.
	cf = strings.Replace(cf, webapp, strings.TrimSuffix(webapp, "\n")+" "+external+"/.gatehouse/callback\n\t\t\t\tgrant_types authorization_code\n", 1)
	cf = strings.Replace(cf, "\t\tdomain {\n", "\t\trevocation_poll 1h\n\t\tdomain {\n", 1)
	startCaddy(t, cf)

	for _, site := range []struct{ name, app string }{{"embedded issuer", env.app}, {"external provider", external}} {
		t.Run(site.name, func(t *testing.T) {
			b := browser(t)
			if code := signInAt(t, b, site.app, "alice"); code != 302 {
				t.Fatalf("callback: %d", code)
			}
			u, _ := url.Parse(site.app)
			stolen := browser(t)
			stolen.Jar.SetCookies(u, b.Jar.Cookies(u))
			if resp, _ := do(t, stolen, "GET", site.app+"/x", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
				t.Fatalf("copied cookie before logout: %d", resp.StatusCode)
			}
			if resp, _ := do(t, b, "GET", site.app+"/.gatehouse/logout", map[string]string{"Sec-Fetch-Site": "same-origin"}); resp.StatusCode != 302 {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
			if resp, _ := do(t, stolen, "GET", site.app+"/x", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
				t.Fatalf("copied cookie after logout: %d, want 401", resp.StatusCode)
			}
		})
	}

	// The revocation is in the store, so another instance honours it: here
	// one that starts after the logout (a reload with other poll settings
	// builds the watcher anew, from the store) refuses a copy of a cookie
	// logged out before it started.
	b := browser(t)
	if code := signInAt(t, b, env.app, "alice"); code != 302 {
		t.Fatalf("callback: %d", code)
	}
	u, _ := url.Parse(env.app)
	stolen := browser(t)
	stolen.Jar.SetCookies(u, b.Jar.Cookies(u))
	do(t, b, "GET", env.app+"/.gatehouse/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
	db, err := sql.Open("sqlite", "file:"+filepath.Join(env.dir, "gatehouse.db")+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM revocations WHERE id LIKE 'gate-session:%' AND expires_at > ?`, time.Now().UnixMicro()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d live session revocations in the store, want 3 (one per logout)", n)
	}
	reloadCaddy(t, strings.Replace(cf, "revocation_poll 1h", "revocation_poll 59m", 1))
	req, _ := http.NewRequest("GET", env.app+"/x", nil)
	req.Header.Set("Accept", "application/json")
	for _, c := range stolen.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	resp := getAfterReload(t, &http.Client{Transport: withHeaders{req.Header, http.DefaultTransport}, Timeout: 10 * time.Second}, env.app+"/x")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a copy of a logged-out cookie at an instance that started later: %d, want 401", resp.StatusCode)
	}
}

// TestGate_CrossSiteLogoutIsRefused is the regression test for logout CSRF:
// any site could end a user's session silently with a cross-site GET (an
// <img> or a link) to /.gatehouse/logout. The gate now logs out at once
// only on a same-origin, same-site or user-typed request (Sec-Fetch-Site)
// or a POST carrying the CSRF token of its confirmation page; anything else
// gets that page, which cannot be framed.
func TestGate_CrossSiteLogoutIsRefused(t *testing.T) {
	env := startGate(t, `
			login webapp
			forward X-Auth-Subject sub`)
	b := loginAs(t, env, "alice")
	logout := env.app + "/.gatehouse/logout"
	signedIn := func() bool {
		resp, _ := do(t, b, "GET", env.app+"/x", map[string]string{"Accept": "application/json"})
		return resp.StatusCode == 200
	}
	var page string
	for name, hdr := range map[string]map[string]string{
		"cross-site GET":            {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
		"GET without fetch headers": {},
	} {
		resp, body := do(t, b, "GET", logout, hdr)
		if resp.StatusCode != 200 || !strings.Contains(body, `method="post"`) || !strings.Contains(body, `name="csrf"`) {
			t.Fatalf("%s: %d %q, want the confirmation page", name, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("%s: the confirmation page can be framed: %v", name, resp.Header)
		}
		if !signedIn() {
			t.Fatalf("%s ended the session", name)
		}
		page = body
	}
	// A cross-site form POST without the page's token: no logout either.
	req, _ := http.NewRequest("POST", logout, strings.NewReader("csrf=forged"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 302 || !signedIn() {
		t.Fatalf("a cross-site POST with a forged token: %d, signed in %v", resp.StatusCode, signedIn())
	}

	// Confirming on the page logs out, and a copy of the cookie is dead.
	m := hiddenField.FindStringSubmatch(page)
	if m == nil || m[1] != "csrf" {
		t.Fatalf("no CSRF token on the confirmation page:\n%s", page)
	}
	u, _ := url.Parse(env.app)
	stolen := browser(t)
	stolen.Jar.SetCookies(u, b.Jar.Cookies(u))
	resp, err = b.PostForm(logout, url.Values{"csrf": {m[2]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/logout") {
		t.Fatalf("confirmed logout: %d %v", resp.StatusCode, loc)
	}
	if r, _ := do(t, stolen, "GET", env.app+"/x", map[string]string{"Accept": "application/json"}); r.StatusCode != 401 {
		t.Fatalf("after the confirmed logout: %d", r.StatusCode)
	}

	// The site's own sign-out link (same-origin) and a typed URL log out at once.
	for _, site := range []string{"same-origin", "none"} {
		b = loginAs(t, env, "alice")
		resp, _ := do(t, b, "GET", logout, map[string]string{"Sec-Fetch-Site": site})
		if resp.StatusCode != 302 || signedIn() {
			t.Fatalf("Sec-Fetch-Site %s: %d, signed in %v", site, resp.StatusCode, signedIn())
		}
	}
}
