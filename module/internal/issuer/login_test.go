package issuer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// testTx is a sign-in transaction for the spa client, expiring at exp.
func testTx(id string, exp time.Time) *authn.Transaction {
	req, _ := json.Marshal(&pendingRequest{ID: id, ClientID: "spa", RedirectURI: spaRedirect, State: "st-123", Expires: exp.Unix()})
	return &authn.Transaction{ID: id, Request: req, ClientID: "spa", Expires: exp}
}

var formActionRe = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// formActions lists the actions of a page's forms.
func formActions(page string) []string {
	var out []string
	for _, m := range formActionRe.FindAllStringSubmatch(page, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// form is a form of the login page: the hidden fields, and extra values.
func pageForm(t testing.TB, page string, kv ...string) url.Values {
	t.Helper()
	v := loginForm(t, page)
	v.Del("method")
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func post(t testing.TB, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// magicMethod stands in for a one-step method (a magic word) that is not
// the password: it signs bob in.
type magicMethod struct{}

func (magicMethod) Name() string                  { return "magic" }
func (magicMethod) Offered(*identity.Client) bool { return true }
func (magicMethod) Render(v *authn.View) (template.HTML, error) {
	return template.HTML(`<form method="post" action="` + template.HTMLEscapeString(v.Action) + `">` + string(v.Hidden) +
		`<label for="magic">Magic word</label><input id="magic" name="magic"><button type="submit">Use magic</button></form>`), nil
}
func (magicMethod) Serve(h authn.Host, w http.ResponseWriter, r *http.Request, path string) {
	tx, form := h.Form(w, r)
	if tx == nil {
		return
	}
	if form.Get("magic") != "open-sesame" {
		h.Audit(tx, authn.OutcomeFailed, "bad magic", "")
		h.Continue(w, r, tx, http.StatusUnauthorized, "That is not the magic word.")
		return
	}
	h.Complete(w, r, tx, authn.Authentication{Subject: "u-bob", AMR: []string{"magic"}})
}

func withMethods(ms ...authn.Method) fixtureOpt {
	return withConfig(func(c *Config, _ *identity.Domain) { c.LoginMethods = ms })
}

func TestLogin_PluggableMethodSignsIn(t *testing.T) {
	f := newFixture(t, withMethods(authn.Password{}, magicMethod{}))
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	page := body(t, f.get(c, loc.String()))
	if got, want := formActions(page), []string{f.url + "/login/password", f.url + "/login/magic", f.url + "/login"}; !slices.Equal(got, want) {
		t.Fatalf("forms post to %v, want the password's, the magic's and cancel's %v", got, want)
	}
	form := pageForm(t, page, "magic", "wrong")
	resp := post(t, c, f.url+"/login/magic", form)
	wrong := body(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(wrong, `role="alert">That is not the magic word.<`) || strings.Contains(wrong, "Incorrect username or password.") {
		t.Fatalf("wrong magic: %d, the page does not say what the method said:\n%s", resp.StatusCode, wrong)
	}
	// The form posted to <issuer>/login with the method named works too.
	form.Set("method", "magic")
	form.Set("magic", "open-sesame")
	code := location(t, post(t, c, f.url+"/login", form)).Query().Get("code")
	tr := f.token(codeForm(code, spaRedirect), "spa", "")
	if _, id := claims(t, tr.resp.IDToken); id["sub"] != "u-bob" || !slices.Equal(anyStrings(id["amr"]), []string{"magic"}) {
		t.Fatalf("signed in as %v with amr %v", id["sub"], id["amr"])
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestLogin_PageShowsOnlyTheMethodsOffered(t *testing.T) {
	f := newFixture(t, withMethods(authn.Password{}, magicMethod{}), withConfig(func(_ *Config, d *identity.Domain) {
		d.Clients = append(d.Clients, &identity.Client{ID: "kiosk", Type: identity.Public, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{spaRedirect}, AllowLocalLogin: false, Providers: []string{"corp"}})
	}))
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("kiosk", spaRedirect))))
	page := body(t, f.get(c, loc.String()))
	if got, want := formActions(page), []string{f.url + "/login/magic", f.url + "/login"}; !slices.Equal(got, want) {
		t.Fatalf("forms post to %v, want %v", got, want)
	}
	if strings.Contains(page, `name="password"`) || strings.Contains(page, `value="pwd"`) {
		t.Fatalf("a client with deny_local_login is shown the password form:\n%s", page)
	}
	// Posting a password anyway is refused: the method is not offered.
	form := pageForm(t, page, "login", "alice", "password", alicePassword)
	assertErrorPage(t, post(t, c, f.url+"/login/password", form), "not available")
	form.Set("method", "pwd")
	assertErrorPage(t, post(t, c, f.url+"/login", form), "not available")

	// With the password method alone, such a client can not sign in.
	f2 := newFixture(t, withConfig(func(_ *Config, d *identity.Domain) {
		d.Clients = append(d.Clients, &identity.Client{ID: "kiosk", Type: identity.Public, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{spaRedirect}, AllowLocalLogin: false, Providers: []string{"corp"}})
	}))
	loc = location(t, f2.get(c, f2.authorizeURL(authParams("kiosk", spaRedirect))))
	resp := f2.get(c, loc.String())
	if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "No sign-in method is enabled") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestLogin_MethodRoutes(t *testing.T) {
	f := newFixture(t, withMethods(authn.Password{}, magicMethod{}))
	c := f.browser()
	for path, want := range map[string]int{
		"/login/nope":       http.StatusNotFound,
		"/login/pwd":        http.StatusNotFound, // an alias is a form value, not a route
		"/login/":           http.StatusNotFound,
		"/login/password":   http.StatusMethodNotAllowed,
		"/login/password/x": http.StatusNotFound,
	} {
		resp := f.get(c, f.url+path)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	r, _ := http.NewRequest(http.MethodGet, f.url+"/login/nope", nil)
	if f.iss.Handles(r) {
		t.Error("the issuer claims /login/nope: another handler of the site could not serve it")
	}
	r, _ = http.NewRequest(http.MethodGet, f.url+"/login/magic/callback", nil)
	if !f.iss.Handles(r) {
		t.Error("the issuer does not claim a method's route")
	}
}

func TestNew_LoginMethodNamesAreChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		methods []authn.Method
		want    string
	}{
		"twice":              {[]authn.Method{authn.Password{}, authn.Password{}}, `login method "password" is configured twice`},
		"alias taken":        {[]authn.Method{namedMethod("pwd"), authn.Password{}}, `login method "pwd" is configured twice`},
		"not a path segment": {[]authn.Method{namedMethod("a/b")}, "not a path segment"},
		"upper case":         {[]authn.Method{namedMethod("Magic")}, "not a path segment"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			_, err := New(t.Context(), Config{Directory: f.directory(), Store: f.st, Keys: f.keys, LoginMethods: tc.methods})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

type namedMethod string

func (n namedMethod) Name() string                                               { return string(n) }
func (namedMethod) Offered(*identity.Client) bool                                { return true }
func (namedMethod) Render(*authn.View) (template.HTML, error)                    { return "", nil }
func (namedMethod) Serve(authn.Host, http.ResponseWriter, *http.Request, string) {}

// codeMethod is a two-step method: a username first (it pretends to have
// checked a password, amr "pwd"), then a one-time code it "sends" on codes
// (amr "otp"), valid for lifetime. completeAs, when set, makes it finish as
// another user than it identified (a broken method).
type codeMethod struct {
	codes      chan string
	lifetime   time.Duration
	completeAs string
}

func (*codeMethod) Name() string                  { return "code" }
func (*codeMethod) Offered(*identity.Client) bool { return true }
func (*codeMethod) Render(v *authn.View) (template.HTML, error) {
	if v.Tx.Stage == "code" {
		return template.HTML(`<form method="post" action="` + template.HTMLEscapeString(v.Action+"/verify") + `">` + string(v.Hidden) +
			`<label for="code">Code</label><input id="code" name="code"><button type="submit">Verify</button></form>`), nil
	}
	return template.HTML(`<form method="post" action="` + template.HTMLEscapeString(v.Action+"/start") + `">` + string(v.Hidden) +
		`<label for="user">Username</label><input id="user" name="user"><button type="submit">Send a code</button></form>`), nil
}

func codeHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (m *codeMethod) Serve(h authn.Host, w http.ResponseWriter, r *http.Request, path string) {
	tx, form := h.Form(w, r)
	if tx == nil {
		return
	}
	switch path {
	case "/start":
		if tx.Stage != "" {
			h.Fail(w, http.StatusBadRequest, "Sign-in refused", "This step is out of order.")
			return
		}
		u, err := h.Users().UserByLogin(r.Context(), form.Get("user"))
		if err != nil || u == nil {
			h.Continue(w, r, tx, http.StatusUnauthorized, "No such user.")
			return
		}
		code := randomString(8)
		m.codes <- code
		tx.Method, tx.Stage, tx.Subject, tx.AMR = "code", "code", u.Subject, []string{"pwd"}
		tx.State = map[string]string{"code": codeHash(code)}
		tx.Expires = h.Now().Add(m.lifetime)
		h.Continue(w, r, tx, http.StatusOK, "Enter the code we sent you.")
	case "/verify":
		if tx.Stage != "code" {
			h.Fail(w, http.StatusBadRequest, "Sign-in refused", "This step is out of order.")
			return
		}
		if subtle.ConstantTimeCompare([]byte(codeHash(form.Get("code"))), []byte(tx.State["code"])) != 1 {
			h.Continue(w, r, tx, http.StatusUnauthorized, "Wrong code.")
			return
		}
		sub := tx.Subject
		if m.completeAs != "" {
			sub = m.completeAs
		}
		h.Complete(w, r, tx, authn.Authentication{Subject: sub, AMR: []string{"otp"}})
	default:
		h.Fail(w, http.StatusNotFound, "Not found", "No such page.")
	}
}

// startCode opens the login page and runs the code method's first step as
// alice; it returns the first page and the second.
func startCode(t *testing.T, f *fixture, c *http.Client) (first, second string) {
	t.Helper()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	first = body(t, f.get(c, loc.String()))
	resp := post(t, c, f.url+"/login/code/start", pageForm(t, first, "user", "alice"))
	second = body(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("step 1: %d %s", resp.StatusCode, second)
	}
	return first, second
}

func TestLogin_TwoStepMethodCarriesItsStageAndFactors(t *testing.T) {
	m := &codeMethod{codes: make(chan string, 4), lifetime: 5 * time.Minute}
	f := newFixture(t, withMethods(authn.Password{}, m))
	c := f.browser()
	first, second := startCode(t, f, c)
	code := <-m.codes
	// The next step shows the running method alone, at its stage.
	if got, want := formActions(second), []string{f.url + "/login/code/verify", f.url + "/login"}; !slices.Equal(got, want) {
		t.Fatalf("step 2 forms post to %v, want %v", got, want)
	}
	if !strings.Contains(second, `role="alert">Enter the code we sent you.<`) {
		t.Fatalf("step 2 does not say what the method said:\n%s", second)
	}

	// Skipping step 1: the first page's transaction is at no stage.
	assertErrorPage(t, post(t, c, f.url+"/login/code/verify", pageForm(t, first, "code", code)), "out of order")
	// Another method does not take the code method's transaction.
	assertErrorPage(t, post(t, c, f.url+"/login/password", pageForm(t, second, "login", "alice", "password", alicePassword)), "not available")
	// Another browser (its own CSRF cookie) cannot use the form.
	other := f.browser()
	f.get(other, location(t, f.get(other, f.authorizeURL(authParams("spa", spaRedirect)))).String()).Body.Close()
	if resp := post(t, other, f.url+"/login/code/verify", pageForm(t, second, "code", code)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("step 2 from another browser: %d, want 403", resp.StatusCode)
	}
	// A wrong code: the method says so, at the same stage.
	resp := post(t, c, f.url+"/login/code/verify", pageForm(t, second, "code", "nope"))
	if b := body(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b, "Wrong code.") || !strings.Contains(b, "/login/code/verify") {
		t.Fatalf("wrong code: %d %s", resp.StatusCode, b)
	}
	loc := location(t, post(t, c, f.url+"/login/code/verify", pageForm(t, second, "code", code)))
	tr := f.token(codeForm(loc.Query().Get("code"), spaRedirect), "spa", "")
	_, id := claims(t, tr.resp.IDToken)
	if id["sub"] != "u-alice" || !slices.Equal(anyStrings(id["amr"]), []string{"pwd", "otp"}) {
		t.Fatalf("signed in as %v with amr %v, want u-alice with the factors of both steps", id["sub"], id["amr"])
	}
}

func TestLogin_TwoStepTransactionExpires(t *testing.T) {
	for name, tc := range map[string]struct {
		lifetime, wait time.Duration
	}{
		"the method's shorter lifetime":                   {2 * time.Minute, 3 * time.Minute},
		"the login timeout, which a method cannot extend": {time.Hour, 16 * time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			m := &codeMethod{codes: make(chan string, 1), lifetime: tc.lifetime}
			f := newFixture(t, withMethods(m))
			c := f.browser()
			_, second := startCode(t, f, c)
			f.clock.Advance(tc.wait)
			assertErrorPage(t, post(t, c, f.url+"/login/code/verify", pageForm(t, second, "code", <-m.codes)), "Sign-in expired")
		})
	}
}

func TestLogin_CompleteRefusesAnotherUserThanTheOneIdentified(t *testing.T) {
	m := &codeMethod{codes: make(chan string, 1), lifetime: time.Minute, completeAs: "u-bob"}
	f := newFixture(t, withMethods(m))
	c := f.browser()
	_, second := startCode(t, f, c)
	resp := post(t, c, f.url+"/login/code/verify", pageForm(t, second, "code", <-m.codes))
	assertErrorPage(t, resp, "Sign-in failed")
	if !f.auditHas(evSignIn, outcomeFailed) || f.auditHas(evSignIn, outcomeOK) {
		t.Fatal("the refused completion is not audited as a failure")
	}
}

// fedMethod stands in for a method that finishes at a callback (a
// federated provider): it carries the sealed transaction and a CSRF token
// through the round trip and completes with the user the "provider" names.
type fedMethod struct{}

func (fedMethod) Name() string                  { return "fed" }
func (fedMethod) Offered(*identity.Client) bool { return true }
func (fedMethod) Render(v *authn.View) (template.HTML, error) {
	return template.HTML(`<form method="post" action="` + template.HTMLEscapeString(v.Action+"/begin") + `">` + string(v.Hidden) +
		`<button type="submit">Sign in with Fed</button></form>`), nil
}
func (fedMethod) Serve(h authn.Host, w http.ResponseWriter, r *http.Request, path string) {
	switch path {
	case "/begin":
		tx, form := h.Form(w, r)
		if tx == nil {
			return
		}
		tx.Method = "fed"
		state, err := h.Seal(tx)
		if err != nil {
			h.Fail(w, http.StatusInternalServerError, "Sign-in failed", err.Error())
			return
		}
		// The provider would send the browser back with these.
		q := url.Values{"state": {state}, "csrf": {h.CSRF(w, r, tx)}, "sub": {form.Get("as")}}
		http.Redirect(w, r, h.URL("/callback")+"?"+q.Encode(), http.StatusSeeOther)
	case "/callback":
		q := r.URL.Query()
		tx, err := h.Open(q.Get("state"))
		if err != nil {
			h.Fail(w, http.StatusBadRequest, "Sign-in expired", "Start again.")
			return
		}
		if !h.CheckCSRF(r, tx, q.Get("csrf")) {
			h.Fail(w, http.StatusForbidden, "Sign-in refused", "Not this browser's sign-in.")
			return
		}
		h.Complete(w, r, tx, authn.Authentication{Subject: q.Get("sub"), AMR: []string{"fed"},
			External: &authn.External{Provider: "fed", Subject: "ext-" + q.Get("sub")}})
	default:
		h.Fail(w, http.StatusNotFound, "Not found", "No such page.")
	}
}

func TestLogin_CompleteLoginForRedirectBasedMethods(t *testing.T) {
	f := newFixture(t, withMethods(fedMethod{}))
	begin := func(c *http.Client, as string) *url.URL {
		loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
		page := body(t, f.get(c, loc.String()))
		return location(t, post(t, c, f.url+"/login/fed/begin", pageForm(t, page, "as", as)))
	}
	c := f.browser()
	cb := begin(c, "u-alice")
	if !strings.HasPrefix(cb.String(), f.url+"/login/fed/callback?") {
		t.Fatalf("begin went to %s", cb)
	}
	got := location(t, f.get(c, cb.String()))
	if got.Query().Get("code") == "" || got.Query().Get("state") != "st-123" {
		t.Fatalf("callback: %s", got)
	}
	// A forged transaction is refused.
	forged := cb.Query()
	forged.Set("state", "forged")
	assertErrorPage(t, f.get(c, f.url+"/login/fed/callback?"+forged.Encode()), "Sign-in expired")
	// The callback in another browser is refused.
	if resp := f.get(f.browser(), begin(f.browser(), "u-alice").String()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("callback in another browser: %d, want 403", resp.StatusCode)
	}
	// A disabled user, and an external identity linked to no user, are refused.
	for _, as := range []string{"u-carol", ""} {
		c := f.browser()
		assertErrorPage(t, f.get(c, begin(c, as).String()), "Sign-in failed")
	}
	found := false
	for _, e := range f.audit.All() {
		if m := e.ContextMap(); m["event"] == evSignIn && m["outcome"] == outcomeFailed && m["reason"] == "no account is linked to the fed identity" {
			found = true
		}
	}
	if !found {
		t.Fatal("an unlinked external identity is not audited")
	}
}

func TestLogin_PasswordSignInIDTokenCarriesAMR(t *testing.T) {
	f := newFixture(t)
	tr := f.token(codeForm(f.code(f.browser(), authParams("spa", spaRedirect)), spaRedirect), "spa", "")
	if _, id := claims(t, tr.resp.IDToken); !slices.Equal(anyStrings(id["amr"]), []string{"pwd"}) {
		t.Fatalf("amr %v, want [pwd]", id["amr"])
	}
}
