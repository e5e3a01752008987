package integration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse/module"
)

// A login method that exists only in this test build: it proves that a
// method outside the issuer, configured as a Caddy guest module, can take
// several steps and complete a real authorization request.
func init() {
	caddy.RegisterModule(TwoStepLoginMethod{})
}

// TwoStepLoginMethod (gatehouse.login_methods.twostep) signs in with a
// username and password first (amr "pwd"), then a one-time code it writes
// to CodeFile (amr "otp"), valid for CodeLifetime. A code is used once.
type TwoStepLoginMethod struct {
	CodeFile     string         `json:"code_file,omitempty"`
	CodeLifetime caddy.Duration `json:"code_lifetime,omitempty"`
}

func (TwoStepLoginMethod) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "gatehouse.login_methods.twostep", New: func() caddy.Module { return new(TwoStepLoginMethod) }}
}

func (m *TwoStepLoginMethod) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "code_file":
			if !d.NextArg() {
				return d.ArgErr()
			}
			m.CodeFile = d.Val()
		case "code_lifetime":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Err(err.Error())
			}
			m.CodeLifetime = caddy.Duration(dur)
		default:
			return d.Errf("unknown twostep option %q", d.Val())
		}
	}
	return nil
}

func (m TwoStepLoginMethod) LoginMethod() (module.LoginMethod, error) {
	if m.CodeFile == "" || m.CodeLifetime <= 0 {
		return nil, fmt.Errorf("twostep needs code_file and code_lifetime")
	}
	return &twoStep{file: m.CodeFile, lifetime: time.Duration(m.CodeLifetime), used: map[string]bool{}}, nil
}

type twoStep struct {
	file     string
	lifetime time.Duration
	mu       sync.Mutex
	used     map[string]bool // transactions whose code was used
}

func (*twoStep) Name() string                       { return "twostep" }
func (*twoStep) Offered(c *module.LoginClient) bool { return c.AllowLocalLogin }

var twoStepForms = template.Must(template.New("").Parse(`{{define "start"}}<form method="post" action="{{.Action}}/start">
{{.Hidden}}<label for="ts-login">Username</label><input id="ts-login" name="login">
<label for="ts-password">Password</label><input id="ts-password" name="password" type="password">
<button type="submit">Continue</button></form>{{end}}
{{define "code"}}<form method="post" action="{{.Action}}/code">
{{.Hidden}}<label for="ts-code">Code</label><input id="ts-code" name="code" autocomplete="one-time-code">
<button type="submit">Verify</button></form>{{end}}`))

func (*twoStep) Render(v *module.LoginView) (template.HTML, error) {
	name := "start"
	if v.Tx.Stage == "code" {
		name = "code"
	}
	var b strings.Builder
	err := twoStepForms.ExecuteTemplate(&b, name, v)
	return template.HTML(b.String()), err
}

func hashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (m *twoStep) Serve(h module.LoginHost, w http.ResponseWriter, r *http.Request, path string) {
	if r.Method != http.MethodPost {
		h.Fail(w, http.StatusMethodNotAllowed, "Method not allowed", "Use POST.")
		return
	}
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
		u, err := h.Users().UserByLogin(r.Context(), form.Get("login"))
		if err != nil || u == nil || u.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(form.Get("password"))) != nil {
			h.Continue(w, r, tx, http.StatusUnauthorized, "That username and password do not match.")
			return
		}
		code := rand.Text()
		if err := os.WriteFile(m.file, []byte(code), 0o600); err != nil {
			h.Fail(w, http.StatusInternalServerError, "Sign-in failed", "The code could not be sent.")
			return
		}
		tx.Method, tx.Stage, tx.Subject, tx.AMR = "twostep", "code", u.Subject, []string{"pwd"}
		tx.State = map[string]string{"code": hashCode(code)}
		tx.Expires = h.Now().Add(m.lifetime)
		h.Continue(w, r, tx, http.StatusOK, "Enter the code we sent you.")
	case "/code":
		if tx.Stage != "code" {
			h.Fail(w, http.StatusBadRequest, "Sign-in refused", "This step is out of order.")
			return
		}
		if subtle.ConstantTimeCompare([]byte(hashCode(form.Get("code"))), []byte(tx.State["code"])) != 1 {
			h.Continue(w, r, tx, http.StatusUnauthorized, "Wrong code.")
			return
		}
		m.mu.Lock()
		replay := m.used[tx.ID]
		m.used[tx.ID] = true
		m.mu.Unlock()
		if replay {
			h.Fail(w, http.StatusBadRequest, "Sign-in refused", "This code was used already.")
			return
		}
		h.Complete(w, r, tx, module.LoginAuthentication{Subject: tx.Subject, AMR: []string{"otp"}})
	default:
		h.Fail(w, http.StatusNotFound, "Not found", "No such page.")
	}
}

var (
	loginFormRe = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)">(.*?)</form>`)
	alertRe     = regexp.MustCompile(`role="alert">([^<]*)<`)
)

// loginPage is a fetched login page: its forms (action → hidden fields)
// in order, and its alert.
type loginPage struct {
	status  int
	actions []string
	hidden  map[string]url.Values
	alert   string
	body    string
}

func readLoginPage(t *testing.T, resp *http.Response) *loginPage {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &loginPage{status: resp.StatusCode, hidden: map[string]url.Values{}, body: string(b)}
	for _, m := range loginFormRe.FindAllStringSubmatch(p.body, -1) {
		action := html.UnescapeString(m[1])
		v := url.Values{}
		for _, h := range hiddenField.FindAllStringSubmatch(m[2], -1) {
			v.Set(h[1], html.UnescapeString(h[2]))
		}
		p.actions = append(p.actions, action)
		p.hidden[action] = v
	}
	if m := alertRe.FindStringSubmatch(p.body); m != nil {
		p.alert = html.UnescapeString(m[1])
	}
	return p
}

// form is the hidden fields of the page's form posting to action, with kv.
func (p *loginPage) form(t *testing.T, action string, kv ...string) url.Values {
	t.Helper()
	h, ok := p.hidden[action]
	if !ok {
		t.Fatalf("the page has no form posting to %s; it has %v:\n%s", action, p.actions, p.body)
	}
	v := url.Values{}
	for k, vs := range h {
		v[k] = slices.Clone(vs)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func browserPost(t *testing.T, c *http.Client, u string, v url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// refused checks a response is an error page (no redirect) with status
// and text.
func refused(t *testing.T, what string, resp *http.Response, status int, text string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Location") != "" || !strings.Contains(string(b), text) {
		t.Fatalf("%s: status %d, location %q, want a %d page saying %q; body:\n%s", what, resp.StatusCode, resp.Header.Get("Location"), status, text, b)
	}
}

// TestLoginMethod_TwoStepGuestModuleCompletesAnAuthorizationRequest: a
// login method from a test build, configured with `login_method`, takes a
// real browser session through two steps to an authorization code, and the
// ID token carries the factors of both. Its transaction cannot skip the
// first step, be forged, change browsers, be replayed or outlive its
// lifetime.
func TestLoginMethod_TwoStepGuestModuleCompletesAnAuthorizationRequest(t *testing.T) {
	env := newIssuerEnv(t)
	codeFile := filepath.Join(env.dir, "code")
	startCaddy(t, fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
			login_method password
			login_method twostep {
				code_file %s
				code_lifetime 2s
			}
			user alice {
				email alice@example.com
				password_hash %s
			}
			client spa {
				redirect_uris %s
				scopes openid email
			}
		}
	}
}

%s {
	gatehouse_issuer
}
`, filepath.Join(env.dir, "gatehouse.db"), env.issuer, codeFile, bcryptHash(t, testPassword), env.redirect, env.issuer))

	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	provider, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: env.redirect, Scopes: []string{oidc.ScopeOpenID, "email"}}
	start, code := env.issuer+"/login/twostep/start", env.issuer+"/login/twostep/code"

	// open returns the login page of a new authorization request.
	open := func(b *http.Client, state, verifier string) *loginPage {
		resp, err := b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || !strings.HasPrefix(loc.String(), env.issuer+"/login?") {
			t.Fatalf("authorize answered %d %v, want the login page", resp.StatusCode, loc)
		}
		resp, err = b.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		return readLoginPage(t, resp)
	}
	// step1 signs in with the password at the method's first step.
	step1 := func(b *http.Client, first *loginPage) *loginPage {
		p := readLoginPage(t, browserPost(t, b, start, first.form(t, start, "login", "alice", "password", testPassword)))
		if p.status != http.StatusOK || p.alert != "Enter the code we sent you." {
			t.Fatalf("step 1: %d %q", p.status, p.alert)
		}
		return p
	}
	readCode := func() string {
		b, err := os.ReadFile(codeFile)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	b := browser(t)
	verifier := oauth2.GenerateVerifier()
	first := open(b, "st-1", verifier)
	if want := []string{env.issuer + "/login/password", start, env.issuer + "/login"}; !slices.Equal(first.actions, want) {
		t.Fatalf("the login page's forms post to %v, want the password's, the two-step method's and cancel's %v", first.actions, want)
	}
	second := step1(b, first)
	if want := []string{code, env.issuer + "/login"}; !slices.Equal(second.actions, want) {
		t.Fatalf("step 2's forms post to %v, want the code form alone and cancel %v", second.actions, want)
	}
	otp := readCode()

	// The first page's transaction has not been through step 1.
	refused(t, "skipping step 1", browserPost(t, b, code, first.form(t, start, "code", otp)), http.StatusBadRequest, "out of order")
	// A transaction changed by hand does not open.
	forged := second.form(t, code, "code", otp)
	req := []byte(forged.Get("req"))
	req[len(req)/2] ^= 0x01
	forged.Set("req", string(req))
	refused(t, "a forged transaction", browserPost(t, b, code, forged), http.StatusBadRequest, "Sign-in expired")
	// Another browser, with a CSRF cookie of its own, cannot take it over.
	other := browser(t)
	open(other, "st-x", oauth2.GenerateVerifier())
	refused(t, "step 2 in another browser", browserPost(t, other, code, second.form(t, code, "code", otp)), http.StatusForbidden, "could not be verified")
	// The password method does not take the two-step method's transaction.
	refused(t, "another method", browserPost(t, b, env.issuer+"/login/password", second.form(t, code, "login", "alice", "password", testPassword)),
		http.StatusBadRequest, "not available")
	// A wrong code: the method's own words, at the same step.
	if p := readLoginPage(t, browserPost(t, b, code, second.form(t, code, "code", "nope"))); p.status != http.StatusUnauthorized || p.alert != "Wrong code." || p.actions[0] != code {
		t.Fatalf("wrong code: %d %q %v", p.status, p.alert, p.actions)
	}

	resp := browserPost(t, b, code, second.form(t, code, "code", otp))
	resp.Body.Close()
	back, err := resp.Location()
	if err != nil || back.Query().Get("code") == "" || back.Query().Get("state") != "st-1" || !strings.HasPrefix(back.String(), env.redirect+"?") {
		t.Fatalf("step 2: %d %v, want the client's redirect with a code", resp.StatusCode, back)
	}
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR   []string `json:"amr"`
		Email string   `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || claims.Email != "alice@example.com" || !slices.Equal(claims.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("ID token: sub %q, claims %+v; want alice with amr [pwd otp]", idt.Subject, claims)
	}
	// The used step cannot be replayed.
	refused(t, "a replayed step 2", browserPost(t, b, code, second.form(t, code, "code", otp)), http.StatusBadRequest, "used already")

	// A transaction past the method's lifetime gets the clear page. The
	// sealed expiry is in whole seconds, so it ends between 1s and 2s after
	// step 1 (there is no clock to move inside a running Caddy).
	late := browser(t)
	lateStep2 := step1(late, open(late, "st-2", oauth2.GenerateVerifier()))
	lateCode := readCode()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := late.Get(env.issuer + "/login?req=" + url.QueryEscape(lateStep2.form(t, code).Get("req")))
		if err != nil {
			t.Fatal(err)
		}
		p := readLoginPage(t, r)
		if p.status != http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transaction outlived its 2s lifetime")
		}
		time.Sleep(100 * time.Millisecond)
	}
	refused(t, "an expired transaction", browserPost(t, late, code, lateStep2.form(t, code, "code", lateCode)), http.StatusBadRequest, "Sign-in expired")
}
