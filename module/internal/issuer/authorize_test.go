package issuer

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// assertErrorPage checks that a response is an HTML error page and not a
// redirect.
func assertErrorPage(t *testing.T, resp *http.Response, wantInBody string) {
	t.Helper()
	b := body(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 error page; body %s", resp.StatusCode, b)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Fatalf("error page redirects to %s", loc)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	if wantInBody != "" && !strings.Contains(b, wantInBody) {
		t.Fatalf("page lacks %q: %s", wantInBody, b)
	}
}

// assertRedirectError checks an error redirect to the client.
func assertRedirectError(t *testing.T, resp *http.Response, redirect, code, state string) url.Values {
	t.Helper()
	loc := location(t, resp)
	resp.Body.Close()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %s, want %s", got, redirect)
	}
	q := loc.Query()
	if q.Get("error") != code {
		t.Fatalf("error %q (%s), want %q", q.Get("error"), q.Get("error_description"), code)
	}
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	return q
}

func TestAuthorize_GETAndPOSTBothAccepted(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	// GET
	if code := f.code(c, authParams("spa", spaRedirect)); code == "" {
		t.Fatal("GET gave no code")
	}
	// POST (form), reusing the SSO session
	resp, err := c.PostForm(f.url+"/authorize", authParams("spa", spaRedirect))
	if err != nil {
		t.Fatal(err)
	}
	loc := location(t, resp)
	if loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-123" {
		t.Fatalf("POST authorize redirected to %s", loc)
	}
}

func TestAuthorize_UnknownParametersIgnoredScopeOrderIrrelevant(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	p := authParams("spa", spaRedirect)
	p.Set("scope", "email openid profile")
	p.Set("x-unknown", "whatever")
	p.Set("foo", "bar")
	code := f.code(c, p)
	tr := f.token(codeForm(code, spaRedirect), "spa", "")
	if tr.status != 200 || tr.resp.IDToken == "" {
		t.Fatalf("token: %d %v", tr.status, tr.raw)
	}
	_, id := claims(t, tr.resp.IDToken)
	if id["email"] != "Alice@Example.com" || id["name"] != "Alice Liddell" {
		t.Fatalf("claims %v", id)
	}
}

func TestAuthorize_RedirectURIMustMatchExactly(t *testing.T) {
	f := newFixture(t)
	cases := map[string]string{
		"prefix":          "http://127.0.0.1:9999/callback/evil",
		"suffix removed":  "http://127.0.0.1:9999/callbac",
		"case":            "http://127.0.0.1:9999/Callback",
		"trailing slash":  "http://127.0.0.1:9999/callback/",
		"query added":     "http://127.0.0.1:9999/callback?x=1",
		"fragment":        "http://127.0.0.1:9999/callback#x",
		"other host":      "https://evil.example.com/callback",
		"other port":      "http://127.0.0.1:9998/callback",
		"encoded":         "http://127.0.0.1:9999/%63allback",
		"userinfo":        "http://evil@127.0.0.1:9999/callback",
		"scheme switched": "https://127.0.0.1:9999/callback",
	}
	for name, ru := range cases {
		t.Run(name, func(t *testing.T) {
			p := authParams("spa", ru)
			assertErrorPage(t, f.get(f.browser(), f.authorizeURL(p)), "redirect_uri is not registered")
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		assertErrorPage(t, f.get(f.browser(), f.authorizeURL(authParams("nobody", spaRedirect))), "client_id")
	})
	t.Run("missing client_id", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Del("client_id")
		assertErrorPage(t, f.get(f.browser(), f.authorizeURL(p)), "client_id")
	})
	t.Run("repeated redirect_uri", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Add("redirect_uri", spaRedirect)
		assertErrorPage(t, f.get(f.browser(), f.authorizeURL(p)), "repeated")
	})
}

func TestAuthorize_MissingRedirectURIWhenAmbiguousIsAnErrorPage(t *testing.T) {
	f := newFixture(t)
	p := authParams("web", "")
	p.Del("redirect_uri")
	assertErrorPage(t, f.get(f.browser(), f.authorizeURL(p)), "redirect_uri is missing")

	// With exactly one registered URI it may be omitted; the token request
	// then omits it too.
	c := f.browser()
	p = authParams("spa", "")
	p.Del("redirect_uri")
	code := f.code(c, p)
	form := codeForm(code, "")
	form.Del("redirect_uri")
	if tr := f.token(form, "spa", ""); tr.status != 200 {
		t.Fatalf("token without redirect_uri: %d %v", tr.status, tr.raw)
	}
}

func TestAuthorize_ResponseTypeMissingOrUnsupported(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ rt, want string }{
		{"", "invalid_request"},
		{"token", "unsupported_response_type"},
		{"id_token", "unsupported_response_type"},
		{"code id_token", "unsupported_response_type"},
		{"code token", "unsupported_response_type"},
	}
	for _, c := range cases {
		t.Run("response_type="+c.rt, func(t *testing.T) {
			p := authParams("spa", spaRedirect)
			if c.rt == "" {
				p.Del("response_type")
			} else {
				p.Set("response_type", c.rt)
			}
			q := assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, c.want, "st-123")
			if q.Get("code") != "" {
				t.Fatal("a code was issued")
			}
		})
	}
}

func TestAuthorize_PKCE(t *testing.T) {
	f := newFixture(t)
	t.Run("public client without code_challenge is refused", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Del("code_challenge")
		p.Del("code_challenge_method")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "st-123")
	})
	t.Run("confidential client requires PKCE by default", func(t *testing.T) {
		p := authParams("web", webRedirect)
		p.Del("code_challenge")
		p.Del("code_challenge_method")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), webRedirect, "invalid_request", "st-123")
	})
	t.Run("plain is refused unless the client allows it", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Set("code_challenge", testVerifier)
		p.Set("code_challenge_method", "plain")
		q := assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "st-123")
		if !strings.Contains(q.Get("error_description"), "plain") {
			t.Fatalf("description %q", q.Get("error_description"))
		}
	})
	t.Run("missing method means plain and is refused", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Del("code_challenge_method")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "st-123")
	})
	t.Run("plain is accepted for a client that allows it", func(t *testing.T) {
		c := f.browser()
		p := authParams("legacy", webRedirect)
		p.Set("code_challenge", testVerifier)
		p.Set("code_challenge_method", "plain")
		code := f.code(c, p)
		if tr := f.token(codeForm(code, webRedirect), "legacy", webSecret); tr.status != 200 {
			t.Fatalf("plain PKCE token: %d %v", tr.status, tr.raw)
		}
	})
	for name, ch := range map[string]string{
		"too short":       "abc",
		"too long":        strings.Repeat("a", 44),
		"bad charset":     strings.Repeat("a", 42) + "!",
		"unknown method":  "",
		"padding in s256": strings.Repeat("a", 42) + "=",
	} {
		t.Run("challenge "+name, func(t *testing.T) {
			p := authParams("spa", spaRedirect)
			if ch == "" {
				p.Set("code_challenge_method", "S512")
			} else {
				p.Set("code_challenge", ch)
			}
			assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "st-123")
		})
	}
	t.Run("confidential client may skip PKCE when configured", func(t *testing.T) {
		c := f.browser()
		p := authParams("legacy", webRedirect)
		p.Del("code_challenge")
		p.Del("code_challenge_method")
		code := f.code(c, p)
		form := codeForm(code, webRedirect)
		form.Del("code_verifier")
		if tr := f.token(form, "legacy", webSecret); tr.status != 200 {
			t.Fatalf("token: %d %v", tr.status, tr.raw)
		}
	})
}

func TestAuthorize_StateEchoedAndIssAdded(t *testing.T) {
	f := newFixture(t)
	loc := f.signIn(f.browser(), authParams("spa", spaRedirect), "alice", alicePassword)
	q := loc.Query()
	if q.Get("state") != "st-123" || q.Get("iss") != f.url || q.Get("code") == "" {
		t.Fatalf("response %s", loc)
	}
	// Also on errors.
	p := authParams("spa", spaRedirect)
	p.Set("response_type", "token")
	eq := assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "unsupported_response_type", "st-123")
	if eq.Get("iss") != f.url {
		t.Fatalf("iss %q on error", eq.Get("iss"))
	}
}

func TestAuthorize_NonceCarriedIntoIDToken(t *testing.T) {
	f := newFixture(t)
	p := authParams("spa", spaRedirect)
	p.Set("nonce", "nonce-xyz")
	tr := f.token(codeForm(f.code(f.browser(), p), spaRedirect), "spa", "")
	_, id := claims(t, tr.resp.IDToken)
	if id["nonce"] != "nonce-xyz" {
		t.Fatalf("nonce %v", id["nonce"])
	}
}

func TestAuthorize_PromptNoneWithoutSessionIsLoginRequired(t *testing.T) {
	f := newFixture(t)
	p := authParams("spa", spaRedirect)
	p.Set("prompt", "none")
	assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "login_required", "st-123")
}

func TestAuthorize_PromptNoneWithSessionSignsInSilently(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	f.code(c, authParams("spa", spaRedirect))
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	loc := location(t, f.get(c, f.authorizeURL(p)))
	if loc.Query().Get("code") == "" {
		t.Fatalf("second client did not sign in silently: %s", loc)
	}
}

// authTimeAfter signs in, waits, re-authorizes with extra parameters and
// returns (first auth_time, second auth_time, whether the login page was shown).
func authTimes(t *testing.T, f *fixture, extra url.Values) (float64, float64, bool) {
	t.Helper()
	c := f.browser()
	tr := f.token(codeForm(f.code(c, authParams("spa", spaRedirect)), spaRedirect), "spa", "")
	_, id1 := claims(t, tr.resp.IDToken)
	f.clock.Advance(10 * time.Minute)
	p := authParams("spa", spaRedirect)
	for k, v := range extra {
		p[k] = v
	}
	resp := f.get(c, f.authorizeURL(p))
	loc := location(t, resp)
	shown := strings.HasPrefix(loc.String(), f.url+"/login")
	code := f.code(c, p)
	tr = f.token(codeForm(code, spaRedirect), "spa", "")
	_, id2 := claims(t, tr.resp.IDToken)
	return id1["auth_time"].(float64), id2["auth_time"].(float64), shown
}

func TestAuthorize_PromptLoginForcesReauthenticationAndAuthTimeReflectsIt(t *testing.T) {
	f := newFixture(t)
	a1, a2, shown := authTimes(t, f, url.Values{"prompt": {"login"}})
	if !shown || a2-a1 != 600 {
		t.Fatalf("login shown %v, auth_time %v then %v", shown, a1, a2)
	}
}

func TestAuthorize_MaxAgeForcesReauthentication(t *testing.T) {
	f := newFixture(t)
	a1, a2, shown := authTimes(t, f, url.Values{"max_age": {"300"}})
	if !shown || a2-a1 != 600 {
		t.Fatalf("max_age=300 after 600s: login shown %v, auth_time %v then %v", shown, a1, a2)
	}
	f2 := newFixture(t)
	a1, a2, shown = authTimes(t, f2, url.Values{"max_age": {"3600"}})
	if shown || a1 != a2 {
		t.Fatalf("max_age=3600 after 600s: login shown %v, auth_time %v then %v", shown, a1, a2)
	}
}

func TestAuthorize_DisplayUILocalesLoginHintAcrValuesClaimsDoNotError(t *testing.T) {
	f := newFixture(t)
	p := authParams("spa", spaRedirect)
	p.Set("display", "popup")
	p.Set("ui_locales", "fr-CA fr en")
	p.Set("login_hint", "alice@example.com")
	p.Set("acr_values", "urn:mace:incommon:iap:silver")
	p.Set("claims", `{"id_token":{"email":{"essential":true}}}`)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(p)))
	if !strings.HasPrefix(loc.String(), f.url+"/login?") {
		t.Fatalf("redirected to %s", loc)
	}
	page := body(t, f.get(c, loc.String()))
	if !strings.Contains(page, `value="alice@example.com"`) {
		t.Fatal("login_hint not prefilled")
	}
	if f.code(c, p) == "" {
		t.Fatal("no code")
	}
}

func TestAuthorize_UserCancelsIsAccessDenied(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(c, loc.String())))
	form.Set("cancel", "1")
	resp, err := c.PostForm(f.url+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	assertRedirectError(t, resp, spaRedirect, "access_denied", "st-123")
}

func TestAuthorize_PolicyDenialIsAccessDeniedAndAudited(t *testing.T) {
	f := newFixture(t)
	f.policy.deny["u-alice"] = true
	loc := f.signIn(f.browser(), authParams("guarded", spaRedirect), "alice", alicePassword)
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" || loc.Query().Get("state") != "st-123" {
		t.Fatalf("redirect %s", loc)
	}
	if !f.auditHas(evPolicy, outcomeDenied) {
		t.Fatal("policy denial not audited")
	}
	// Policies see the aggregated ID + access claims.
	last := f.policy.last
	if last["department"] != "research" || last["client_id"] != "guarded" || last["sub"] != "u-alice" || last["role"] == nil {
		t.Fatalf("policy claims %v", last)
	}
	// Bob is allowed.
	loc = f.signIn(f.browser(), authParams("guarded", spaRedirect), "bob", alicePassword)
	if loc.Query().Get("code") == "" {
		t.Fatalf("bob: %s", loc)
	}
}

func TestAuthorize_OversizedOrMalformedRequestsAreClean400s(t *testing.T) {
	f := newFixture(t)
	cases := map[string]string{
		"huge query": f.url + "/authorize?client_id=spa&x=" + strings.Repeat("a", maxQueryBytes),
		"bad escape": f.url + "/authorize?client_id=%zz",
	}
	for name, u := range cases {
		t.Run(name, func(t *testing.T) { assertErrorPage(t, f.get(f.browser(), u), "") })
	}
	t.Run("huge state redirects without it", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Set("state", strings.Repeat("s", maxStateLen+1))
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "")
	})
	t.Run("repeated scope", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Add("scope", "openid")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_request", "st-123")
	})
	t.Run("POST with a wrong content type", func(t *testing.T) {
		resp, err := http.Post(f.url+"/authorize", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		assertErrorPage(t, resp, "")
	})
	t.Run("request object", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Set("request", "eyJhbGciOiJub25lIn0.e30.")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "request_not_supported", "st-123")
	})
	t.Run("resource not an audience", func(t *testing.T) {
		p := authParams("spa", spaRedirect)
		p.Set("resource", "https://evil.example.com")
		assertRedirectError(t, f.get(f.browser(), f.authorizeURL(p)), spaRedirect, "invalid_target", "st-123")
	})
	t.Run("client without the code grant", func(t *testing.T) {
		p := authParams("service", spaRedirect)
		assertErrorPage(t, f.get(f.browser(), f.authorizeURL(p)), "")
	})
}

func TestLogin_WrongPasswordUnknownUserAndDisabledAccountShowOneMessage(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ login, password, reason string }{
		{"alice", "wrong", "wrong password"},
		{"nobody", alicePassword, "no account"},
		{"carol", alicePassword, "disabled"},
	} {
		b := f.browser()
		loc := location(t, f.get(b, f.authorizeURL(authParams("spa", spaRedirect))))
		form := loginForm(t, body(t, f.get(b, loc.String())))
		form.Set("login", c.login)
		form.Set("password", c.password)
		resp, err := b.PostForm(f.url+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Incorrect username or password.") {
			t.Fatalf("%s: status %d page %s", c.login, resp.StatusCode, page)
		}
		if strings.Contains(page, alicePassword) {
			t.Fatal("password echoed in page")
		}
		found := false
		for _, e := range f.audit.All() {
			m := e.ContextMap()
			if m["event"] == evSignIn && m["outcome"] == outcomeFailed && strings.Contains(m["reason"].(string), c.reason) {
				found = true
			}
			for _, v := range m {
				if s, ok := v.(string); ok && strings.Contains(s, alicePassword) {
					t.Fatal("password in audit log")
				}
			}
		}
		if !found {
			t.Fatalf("%s: failure not audited with reason %q", c.login, c.reason)
		}
	}
}

func TestLogin_EmailIsCaseInsensitive(t *testing.T) {
	f := newFixture(t)
	loc := f.signIn(f.browser(), authParams("spa", spaRedirect), "alice@EXAMPLE.com", alicePassword)
	if loc.Query().Get("code") == "" {
		t.Fatalf("%s", loc)
	}
}

func TestLogin_CSRFTokenBoundToBrowserAndRequest(t *testing.T) {
	f := newFixture(t)
	victim, attacker := f.browser(), f.browser()
	// The attacker's form (his cookie, his request) posted from the victim's
	// browser must fail: login CSRF.
	loc := location(t, f.get(attacker, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(attacker, loc.String())))
	form.Set("login", "bob")
	form.Set("password", alicePassword)
	f.get(victim, loc.String()).Body.Close() // victim has its own CSRF cookie
	resp, err := victim.PostForm(f.url+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	resp.Body.Close()
	// A CSRF token for one pending request does not work for another.
	loc2 := location(t, f.get(victim, f.authorizeURL(authParams("spa", spaRedirect))))
	form2 := loginForm(t, body(t, f.get(victim, loc2.String())))
	loc3 := location(t, f.get(victim, f.authorizeURL(authParams("web", webRedirect))))
	form3 := loginForm(t, body(t, f.get(victim, loc3.String())))
	form2.Set("req", form3.Get("req"))
	form2.Set("login", "alice")
	form2.Set("password", alicePassword)
	resp, _ = victim.PostForm(f.url+"/login", form2)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("swapped request: status %d, want 403", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestLogin_ExpiredOrForgedPendingRequestIsAnErrorPage(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	f.clock.Advance(16 * time.Minute)
	assertErrorPage(t, f.get(c, loc.String()), "no longer valid")
	assertErrorPage(t, f.get(c, f.url+"/login?req=AAAA"+strings.Repeat("B", 100)), "no longer valid")
}

func TestAuthorize_SSOSessionCookieAttributes(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(c, loc.String())))
	form.Set("login", "alice")
	form.Set("password", alicePassword)
	resp, _ := c.PostForm(f.url+"/login", form)
	resp.Body.Close()
	var sso *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == f.iss.ssoCookie {
			sso = ck
		}
	}
	if sso == nil || !sso.HttpOnly || sso.SameSite != http.SameSiteLaxMode || sso.Path != "/" || len(sso.Value) < 40 {
		t.Fatalf("sso cookie %+v", sso)
	}
	// https issuers use the __Host- prefix and Secure.
	iss := &Issuer{issuer: "https://a.example", secure: true, ssoCookie: "__Host-gatehouse-sso"}
	if ck := iss.cookie(iss.ssoCookie, "v", 10); !ck.Secure || !strings.HasPrefix(ck.Name, "__Host-") || ck.Domain != "" {
		t.Fatalf("https cookie %+v", ck)
	}
}
