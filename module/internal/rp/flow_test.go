package rp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

const (
	site        = "https://app.example.com/"
	callbackURL = "https://app.example.com/.gatehouse/callback"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// env is one protected site, its provider and a browser.
type env struct {
	t    *testing.T
	clk  *clock
	op   *fakeOP
	prov *OIDCProvider
	flow *Flow
	jar  *cookiejar.Jar
}

func newEnv(t *testing.T, secret string, mod ...func(*FlowConfig)) *env {
	t.Helper()
	clk := &clock{time.Now().Truncate(time.Second)}
	op := newFakeOP(t, clk.Now, "webapp", secret)
	prov, err := NewOIDCProvider(context.Background(), OIDCConfig{
		Issuer: op.issuer(), ClientID: "webapp", ClientSecret: secret,
		HTTPClient: op.srv.Client(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeys([][]byte{bytes.Repeat([]byte{9}, seal.SecretSize)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := FlowConfig{Provider: prov, Keys: keys, RedirectURI: callbackURL, Secure: true, Now: clk.Now}
	for _, m := range mod {
		m(&cfg)
	}
	flow, err := NewFlow(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	return &env{t: t, clk: clk, op: op, prov: prov, flow: flow, jar: jar}
}

func (e *env) siteURL() *url.URL { u, _ := url.Parse(site); return u }

// request builds a request to target carrying the browser's cookies.
func (e *env) request(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range e.jar.Cookies(e.siteURL()) {
		r.AddCookie(c)
	}
	return r
}

func (e *env) keep(rec *httptest.ResponseRecorder) {
	e.jar.SetCookies(e.siteURL(), rec.Result().Cookies())
}

// start runs Flow.Start and returns the provider authorization URL.
func (e *env) start(returnTo string) string {
	e.t.Helper()
	rec := httptest.NewRecorder()
	if err := e.flow.Start(rec, e.request(site+"orders"), returnTo); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	if rec.Code != http.StatusFound {
		e.t.Fatalf("Start answered %d, want 302", rec.Code)
	}
	e.keep(rec)
	return rec.Header().Get("Location")
}

// authorize lets the provider approve and returns the callback URL.
func (e *env) authorize(authURL string) string {
	e.t.Helper()
	c := e.op.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// callback runs Flow.Callback for target with the browser's cookies.
func (e *env) callback(target string) (*Tokens, string, *httptest.ResponseRecorder, error) {
	rec := httptest.NewRecorder()
	tok, ret, err := e.flow.Callback(rec, e.request(target))
	e.keep(rec)
	return tok, ret, rec, err
}

func withParam(raw, k, v string) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestLoginHappyPath(t *testing.T) {
	for _, tc := range []struct{ name, secret string }{
		{"confidential client logs in with secret and PKCE", "s3cret/+&"},
		{"public client logs in with PKCE only", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.secret)
			authURL := e.start("/orders?id=1")

			if got := e.jar.Cookies(e.siteURL()); len(got) != 1 || got[0].Name != "__Host-gatehouse-login" {
				t.Fatalf("pending cookie = %v, want one __Host-gatehouse-login", got)
			}
			u, _ := url.Parse(authURL)
			q := u.Query()
			for k, want := range map[string]string{
				"response_type": "code", "client_id": "webapp", "redirect_uri": callbackURL,
				"code_challenge_method": "S256",
			} {
				if q.Get(k) != want {
					t.Errorf("auth param %s = %q, want %q", k, q.Get(k), want)
				}
			}
			if !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
				t.Errorf("scope %q lacks openid", q.Get("scope"))
			}
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(k)) < 43 { // 256 bits base64url
					t.Errorf("%s %q is shorter than 256 bits", k, q.Get(k))
				}
			}
			if q.Get("state") == q.Get("nonce") {
				t.Error("state equals nonce")
			}

			tok, ret, rec, err := e.callback(e.authorize(authURL))
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if ret != "/orders?id=1" {
				t.Errorf("returnTo = %q", ret)
			}
			if tok.Subject != "alice" || tok.Issuer != e.op.issuer() || tok.Claims["email"] != "alice@example.com" {
				t.Errorf("tokens = %+v", tok)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" || tok.Expiry.IsZero() {
				t.Errorf("tokens incomplete: %+v", tok)
			}
			if _, pkce, _ := e.op.counts(); pkce != 1 {
				t.Errorf("provider verified PKCE %d times, want 1", pkce)
			}
			if form := e.op.lastForm; tc.secret == "" && form.Get("client_id") != "webapp" {
				t.Errorf("public client did not send client_id: %v", form)
			}
			if !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
				t.Error("pending cookie not cleared after the login completed")
			}
			if len(e.jar.Cookies(e.siteURL())) != 0 {
				t.Error("browser still holds the pending cookie")
			}
		})
	}
}

func TestCallbackRejections(t *testing.T) {
	tests := []struct {
		name string
		// run performs the login up to the callback and returns what Callback said.
		run       func(e *env) (string, error)
		want      error
		exchanges int // expected token endpoint calls
	}{
		{
			name: "state that matches no pending login is rejected",
			run: func(e *env) (string, error) {
				cb := withParam(e.authorize(e.start("/")), "state", "forged-state-forged-state-forged-state-1234")
				_, ret, _, err := e.callback(cb)
				return ret, err
			},
			want: ErrStateMismatch,
		},
		{
			name: "callback without state is rejected",
			run: func(e *env) (string, error) {
				cb := withParam(e.authorize(e.start("/")), "state", "")
				_, ret, _, err := e.callback(cb)
				return ret, err
			},
			want: ErrStateMismatch,
		},
		{
			name: "callback with two state parameters is rejected",
			run: func(e *env) (string, error) {
				cb := e.authorize(e.start("/"))
				u, _ := url.Parse(cb)
				_, ret, _, err := e.callback(cb + "&state=" + url.QueryEscape(u.Query().Get("state")))
				return ret, err
			},
			want: ErrStateMismatch,
		},
		{
			name: "callback without the pending cookie is rejected",
			run: func(e *env) (string, error) {
				cb := e.authorize(e.start("/"))
				e.jar, _ = cookiejar.New(nil) // another browser
				_, ret, _, err := e.callback(cb)
				return ret, err
			},
			want: ErrNoPendingLogin,
		},
		{
			name: "callback after the pending login expired is rejected",
			run: func(e *env) (string, error) {
				cb := e.authorize(e.start("/"))
				e.clk.now = e.clk.now.Add(DefaultPendingTTL + time.Second)
				_, ret, _, err := e.callback(cb)
				return ret, err
			},
			want: ErrNoPendingLogin,
		},
		{
			name: "ID token with another nonce is rejected",
			run: func(e *env) (string, error) {
				e.op.set(func(op *fakeOP) { op.nonceOverride = "nonce-from-another-login" })
				_, ret, _, err := e.callback(e.authorize(e.start("/x")))
				return ret, err
			},
			want:      ErrNonceMismatch,
			exchanges: 1,
		},
		{
			name: "ID token signed by an unknown key fails the exchange",
			run: func(e *env) (string, error) {
				other := newFakeOP(e.t, e.clk.Now, "webapp", "")
				e.op.set(func(op *fakeOP) { op.signWith = other.key })
				_, ret, _, err := e.callback(e.authorize(e.start("/x")))
				return ret, err
			},
			want:      ErrExchange,
			exchanges: 1,
		},
		{
			name: "wrong PKCE verifier fails the exchange",
			run: func(e *env) (string, error) {
				e.flow.provider = verifierTamperer{e.prov}
				_, ret, _, err := e.callback(e.authorize(e.start("/x")))
				return ret, err
			},
			want:      ErrExchange,
			exchanges: 1,
		},
		{
			name: "callback without code is rejected",
			run: func(e *env) (string, error) {
				_, ret, _, err := e.callback(withParam(e.authorize(e.start("/x")), "code", ""))
				return ret, err
			},
			want: ErrMissingCode,
		},
		{
			name: "callback naming another issuer is rejected",
			run: func(e *env) (string, error) {
				_, ret, _, err := e.callback(withParam(e.authorize(e.start("/x")), "iss", "https://evil.example"))
				return ret, err
			},
			want: ErrIssuerMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "")
			_, err := tt.run(e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Callback error = %v, want %v", err, tt.want)
			}
			if calls, _, _ := e.op.counts(); calls != tt.exchanges {
				t.Fatalf("token endpoint called %d times, want %d", calls, tt.exchanges)
			}
		})
	}
}

// verifierTamperer sends a different PKCE verifier than the one in the cookie.
type verifierTamperer struct{ *OIDCProvider }

func (v verifierTamperer) Exchange(ctx context.Context, code, verifier, redirectURI string) (*Tokens, error) {
	return v.OIDCProvider.Exchange(ctx, code, verifier[1:]+"x", redirectURI)
}

func TestCallbackWithMatchingIssuerParameterSucceeds(t *testing.T) {
	e := newEnv(t, "")
	cb := withParam(e.authorize(e.start("/x")), "iss", e.op.issuer())
	if _, _, _, err := e.callback(cb); err != nil {
		t.Fatalf("Callback: %v", err)
	}
}

func TestReplayedCallback(t *testing.T) {
	e := newEnv(t, "s")
	authURL := e.start("/")
	before := e.jar.Cookies(e.siteURL())
	cb := e.authorize(authURL)
	if _, _, _, err := e.callback(cb); err != nil {
		t.Fatalf("first callback: %v", err)
	}

	t.Run("replay in the same browser finds no pending login", func(t *testing.T) {
		if _, _, _, err := e.callback(cb); !errors.Is(err, ErrNoPendingLogin) {
			t.Fatalf("replay = %v, want ErrNoPendingLogin", err)
		}
	})
	t.Run("replay with a copy of the old cookie is stopped by the single-use code", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, cb, nil)
		for _, c := range before {
			r.AddCookie(c)
		}
		_, _, err := e.flow.Callback(httptest.NewRecorder(), r)
		if !errors.Is(err, ErrExchange) {
			t.Fatalf("replay = %v, want ErrExchange", err)
		}
		if _, _, reuse := e.op.counts(); reuse != 1 {
			t.Fatalf("provider saw %d code reuses, want 1", reuse)
		}
	})
}

func TestProviderErrorOnCallback(t *testing.T) {
	e := newEnv(t, "")
	authURL := e.start("/reports")
	state := mustQuery(t, authURL).Get("state")
	cb := callbackURL + "?" + url.Values{
		"error": {"access_denied"}, "error_description": {"user said no"}, "state": {state},
	}.Encode()
	_, ret, _, err := e.callback(cb)
	var pe *ProviderError
	if !errors.As(err, &pe) || !pe.AccessDenied() || pe.Description != "user said no" {
		t.Fatalf("Callback error = %v, want access_denied ProviderError", err)
	}
	if ret != "/reports" {
		t.Errorf("returnTo = %q, want /reports", ret)
	}
	if calls, _, _ := e.op.counts(); calls != 0 {
		t.Errorf("token endpoint called %d times after a provider error", calls)
	}
	if _, _, _, err := e.callback(cb); !errors.Is(err, ErrNoPendingLogin) {
		t.Errorf("pending login not consumed by the error: %v", err)
	}

	t.Run("provider error with a forged state is a state mismatch", func(t *testing.T) {
		e := newEnv(t, "")
		e.start("/")
		_, _, _, err := e.callback(callbackURL + "?error=access_denied&state=nope")
		if !errors.Is(err, ErrStateMismatch) {
			t.Fatalf("Callback error = %v, want ErrStateMismatch", err)
		}
	})
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestConcurrentPendingLogins(t *testing.T) {
	e := newEnv(t, "", func(c *FlowConfig) { c.MaxPending = 3 })
	var auths []string
	for i := range 4 {
		auths = append(auths, e.start("/tab"+string(rune('0'+i))))
	}
	// Tab 0 was evicted by the fourth login.
	if _, _, _, err := e.callback(e.authorize(auths[0])); !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("evicted login = %v, want ErrStateMismatch", err)
	}
	for _, i := range []int{2, 1, 3} {
		_, ret, _, err := e.callback(e.authorize(auths[i]))
		if err != nil {
			t.Fatalf("tab %d: %v", i, err)
		}
		if want := "/tab" + string(rune('0'+i)); ret != want {
			t.Fatalf("tab %d returnTo = %q, want %q", i, ret, want)
		}
	}
}

func TestStartSanitisesReturnTo(t *testing.T) {
	e := newEnv(t, "")
	_, ret, _, err := e.callback(e.authorize(e.start("//evil.example/phish")))
	if err != nil {
		t.Fatal(err)
	}
	if ret != "/" {
		t.Fatalf("returnTo = %q, want /", ret)
	}
}

func TestStartFailsClosedWithoutRandomness(t *testing.T) {
	e := newEnv(t, "", func(c *FlowConfig) { c.Random = bytes.NewReader(nil) })
	rec := httptest.NewRecorder()
	if err := e.flow.Start(rec, e.request(site), "/"); err == nil {
		t.Fatal("Start succeeded without randomness")
	}
	if rec.Code != http.StatusOK || len(rec.Header()) != 0 {
		t.Fatal("failed Start wrote a response")
	}
}

func TestLoopbackFlowUsesPlainCookieName(t *testing.T) {
	e := newEnv(t, "", func(c *FlowConfig) { c.Secure = false })
	if e.flow.CookieName() != "gatehouse-login" {
		t.Fatalf("CookieName = %q", e.flow.CookieName())
	}
}

func TestNewFlowRejectsBadConfig(t *testing.T) {
	e := newEnv(t, "")
	keys, _ := seal.NewKeys([][]byte{bytes.Repeat([]byte{1}, 64)})
	for _, tc := range []struct {
		name string
		cfg  FlowConfig
	}{
		{"missing provider", FlowConfig{Keys: keys, RedirectURI: callbackURL}},
		{"missing keys", FlowConfig{Provider: e.prov, RedirectURI: callbackURL}},
		{"missing redirect URI", FlowConfig{Provider: e.prov, Keys: keys}},
		{"too many pending logins", FlowConfig{Provider: e.prov, Keys: keys, RedirectURI: callbackURL, MaxPending: 100}},
	} {
		if _, err := NewFlow(tc.cfg); err == nil {
			t.Errorf("%s: NewFlow accepted it", tc.name)
		}
	}
}

func TestLongReturnPathsEvictOlderPendingLogins(t *testing.T) {
	e := newEnv(t, "")
	long := func(i int) string { return "/" + strings.Repeat(string(rune('a'+i)), MaxReturnPathLen-1) }
	var auths []string
	for i := range DefaultMaxPending {
		auths = append(auths, e.start(long(i)))
	}
	_, ret, _, err := e.callback(e.authorize(auths[len(auths)-1]))
	if err != nil {
		t.Fatalf("newest login: %v", err)
	}
	if ret != long(len(auths)-1) {
		t.Fatal("newest login lost its return path")
	}
	if _, _, _, err := e.callback(e.authorize(auths[0])); !errors.Is(err, ErrStateMismatch) && !errors.Is(err, ErrNoPendingLogin) {
		t.Fatalf("oldest login = %v, want it evicted", err)
	}
}

func TestStartWithPromptAsksTheProvider(t *testing.T) {
	e := newEnv(t, "")
	rec := httptest.NewRecorder()
	if err := e.flow.StartWith(rec, e.request(site), "/x", StartOptions{Prompt: "login"}); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, rec.Header().Get("Location")).Get("prompt"); got != "login" {
		t.Fatalf("prompt = %q, want login", got)
	}
	if got := mustQuery(t, e.start("/")).Get("prompt"); got != "" {
		t.Fatalf("a plain Start sent prompt %q", got)
	}
}

// TestRestartAfterAStaleCallback covers the callback whose login cookie
// expired while the provider's form was open: it may be restarted once, the
// restarted login completes normally, and a restarted login whose callback
// matches nothing again (a browser that keeps no cookies) is not restarted
// a second time.
func TestRestartAfterAStaleCallback(t *testing.T) {
	e := newEnv(t, "")
	stale := e.authorize(e.start("/orders"))
	e.clk.now = e.clk.now.Add(DefaultPendingTTL + time.Second)
	r := e.request(stale)
	_, _, err := e.flow.Callback(httptest.NewRecorder(), r)
	if !errors.Is(err, ErrNoPendingLogin) || !Restartable(r, err) || RestartFailed(r, err) {
		t.Fatalf("stale callback: %v, Restartable %v, RestartFailed %v; want a restartable ErrNoPendingLogin", err, Restartable(r, err), RestartFailed(r, err))
	}
	if calls, _, _ := e.op.counts(); calls != 0 {
		t.Fatalf("the stale callback's code was redeemed (%d token calls)", calls)
	}

	rec := httptest.NewRecorder()
	if err := e.flow.StartWith(rec, r, "/", StartOptions{Restart: true}); err != nil {
		t.Fatal(err)
	}
	e.keep(rec)
	restarted := e.authorize(rec.Header().Get("Location"))
	if st := mustQuery(t, restarted).Get("state"); !strings.HasPrefix(st, restartPrefix) || len(st) < len(restartPrefix)+43 {
		t.Fatalf("restarted state %q lacks the marker or 256 random bits", st)
	}

	t.Run("the restarted login's callback without its cookie is not restartable", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, restarted, nil) // no cookies
		_, _, err := e.flow.Callback(httptest.NewRecorder(), r)
		if !errors.Is(err, ErrNoPendingLogin) || Restartable(r, err) || !RestartFailed(r, err) {
			t.Fatalf("%v: Restartable %v, RestartFailed %v; want RestartFailed only", err, Restartable(r, err), RestartFailed(r, err))
		}
	})
	t.Run("the restarted login completes with its cookie", func(t *testing.T) {
		tok, ret, _, err := e.callback(restarted)
		if err != nil || tok.Subject != "alice" || ret != "/" {
			t.Fatalf("Callback = %v, %q, %v", tok, ret, err)
		}
	})
	t.Run("a callback with a provider error is never restartable", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, callbackURL+"?error=login_required&state=gone", nil)
		_, _, err := e.flow.Callback(httptest.NewRecorder(), r)
		if Restartable(r, err) || RestartFailed(r, err) {
			t.Fatalf("%v: Restartable %v, RestartFailed %v", err, Restartable(r, err), RestartFailed(r, err))
		}
	})
	t.Run("other failures are neither", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, callbackURL, nil)
		for _, err := range []error{ErrExchange, ErrNonceMismatch, &ProviderError{Code: "access_denied"}} {
			if Restartable(r, err) || RestartFailed(r, err) {
				t.Errorf("%v counted as a stale callback", err)
			}
		}
	})
}
