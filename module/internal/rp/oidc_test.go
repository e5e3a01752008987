package rp

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRefresh(t *testing.T) {
	login := func(t *testing.T, e *env) *Tokens {
		t.Helper()
		tok, _, _, err := e.callback(e.authorize(e.start("/")))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t.Run("refresh renews the access token and rotates the refresh token", func(t *testing.T) {
		e := newEnv(t, "sec")
		tok := login(t, e)
		sess := NewSession(tok, e.clk.now.Add(8*time.Hour))
		e.clk.now = e.clk.now.Add(4 * time.Minute)
		got, err := Refresh(context.Background(), e.prov, sess)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if got.AccessToken == sess.AccessToken || got.RefreshToken == sess.RefreshToken || got.IDToken == sess.IDToken {
			t.Errorf("tokens not renewed: %+v", got)
		}
		if !got.SessionExpiry.Equal(sess.SessionExpiry) || got.Subject != "alice" {
			t.Errorf("session identity changed: %+v", got)
		}
		if sess.AccessToken != tok.AccessToken {
			t.Error("Refresh modified its input")
		}
		// The old refresh token was rotated away.
		if _, err := Refresh(context.Background(), e.prov, sess); err == nil {
			t.Error("old refresh token still works")
		}
	})
	t.Run("refresh without ID token keeps claims and ID token", func(t *testing.T) {
		e := newEnv(t, "")
		e.op.set(func(op *fakeOP) { op.noIDOnRefresh = true })
		sess := NewSession(login(t, e), time.Time{})
		got, err := Refresh(context.Background(), e.prov, sess)
		if err != nil {
			t.Fatal(err)
		}
		if got.IDToken != sess.IDToken || got.Claims["email"] != "alice@example.com" || got.AccessToken == sess.AccessToken {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("refresh that is not rotated keeps the refresh token", func(t *testing.T) {
		e := newEnv(t, "")
		e.op.set(func(op *fakeOP) { op.noRotate = true })
		sess := NewSession(login(t, e), time.Time{})
		got, err := Refresh(context.Background(), e.prov, sess)
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshToken != sess.RefreshToken {
			t.Errorf("refresh token changed without rotation")
		}
	})
	t.Run("refreshed ID token for another subject is rejected", func(t *testing.T) {
		e := newEnv(t, "")
		sess := NewSession(login(t, e), time.Time{})
		e.op.set(func(op *fakeOP) { op.refreshSub = "mallory" })
		if _, err := Refresh(context.Background(), e.prov, sess); !errors.Is(err, ErrSubjectChanged) {
			t.Fatalf("Refresh = %v, want ErrSubjectChanged", err)
		}
	})
	t.Run("session without refresh token cannot refresh", func(t *testing.T) {
		e := newEnv(t, "")
		sess := NewSession(login(t, e), time.Time{})
		sess.RefreshToken = ""
		if _, err := Refresh(context.Background(), e.prov, sess); !errors.Is(err, ErrNoRefreshToken) {
			t.Fatalf("Refresh = %v", err)
		}
	})
	t.Run("unknown refresh token is refused by the provider", func(t *testing.T) {
		e := newEnv(t, "")
		if _, err := e.prov.Refresh(context.Background(), "rt-unknown"); err == nil {
			t.Fatal("unknown refresh token accepted")
		}
	})
}

func TestUserInfoClaimsAreAddedButIDTokenWins(t *testing.T) {
	e := newEnv(t, "")
	p, err := NewOIDCProvider(context.Background(), OIDCConfig{
		Issuer: e.op.issuer(), ClientID: "webapp", HTTPClient: e.op.srv.Client(), Now: e.clk.Now, UserInfo: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.flow.provider = p
	tok, _, _, err := e.callback(e.authorize(e.start("/")))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims["locale"] != "nl" {
		t.Errorf("userinfo claim missing: %v", tok.Claims)
	}
	if tok.Claims["email"] != "alice@example.com" {
		t.Errorf("userinfo overrode the ID token's email: %v", tok.Claims["email"])
	}
}

func TestClientAuthenticationFollowsDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		methods []string
		wantErr bool
	}{
		{"client_secret_basic by default", nil, false},
		{"client_secret_post when only post is supported", []string{"client_secret_post"}, false},
		{"provider without secret methods is refused", []string{"private_key_jwt"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{time.Now()}
			op := newFakeOP(t, clk.Now, "webapp", "sec")
			op.authMethods = tc.methods
			p, err := NewOIDCProvider(context.Background(), OIDCConfig{
				Issuer: op.issuer(), ClientID: "webapp", ClientSecret: "sec", HTTPClient: op.srv.Client(), Now: clk.Now,
			})
			if tc.wantErr {
				if err == nil {
					t.Fatal("NewOIDCProvider accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The fake enforces the secret; a refresh round trip proves the style works.
			op.set(func(op *fakeOP) { op.refresh["rt-known"] = "alice" })
			if _, err := p.Refresh(context.Background(), "rt-known"); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			_, hasSecret := op.lastForm["client_secret"]
			if want := tc.methods != nil; hasSecret != want {
				t.Errorf("client_secret in body = %v, want %v", hasSecret, want)
			}
		})
	}
}

func TestRevokeEndsTheRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		methods      []string
	}{
		{"confidential client with client_secret_basic", "sec", nil},
		{"confidential client with client_secret_post", "sec", []string{"client_secret_post"}},
		{"public client", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{time.Now()}
			op := newFakeOP(t, clk.Now, "webapp", tc.secret)
			op.authMethods = tc.methods
			p, err := NewOIDCProvider(context.Background(), OIDCConfig{
				Issuer: op.issuer(), ClientID: "webapp", ClientSecret: tc.secret, HTTPClient: op.srv.Client(), Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			op.set(func(op *fakeOP) { op.refresh["rt-known"] = "alice" })
			if err := p.Revoke(context.Background(), "rt-known"); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if op.revoked != 1 || op.lastForm.Get("token_type_hint") != "refresh_token" {
				t.Fatalf("revoked %d, form %v", op.revoked, op.lastForm)
			}
			if _, err := p.Refresh(context.Background(), "rt-known"); err == nil {
				t.Fatal("the revoked refresh token still refreshes")
			}
		})
	}
	t.Run("a wrong secret is an error, not a silent success", func(t *testing.T) {
		clk := &clock{time.Now()}
		op := newFakeOP(t, clk.Now, "webapp", "sec")
		p, err := NewOIDCProvider(context.Background(), OIDCConfig{Issuer: op.issuer(), ClientID: "webapp", ClientSecret: "wrong", HTTPClient: op.srv.Client(), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Revoke(context.Background(), "rt-x"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Revoke = %v, want a 401 error", err)
		}
	})
	t.Run("a provider without revocation_endpoint says so", func(t *testing.T) {
		clk := &clock{time.Now()}
		op := newFakeOP(t, clk.Now, "webapp", "")
		op.noRevocation = true
		p, err := NewOIDCProvider(context.Background(), OIDCConfig{Issuer: op.issuer(), ClientID: "webapp", HTTPClient: op.srv.Client(), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Revoke(context.Background(), "rt-x"); !errors.Is(err, ErrNoRevocation) {
			t.Fatalf("Revoke = %v, want ErrNoRevocation", err)
		}
	})
}

func TestNewSessionRecordsWhenTheTokenWasObtained(t *testing.T) {
	before := time.Now()
	s := NewSession(&Tokens{AccessToken: "a", Expiry: before.Add(time.Minute), AccessTokenID: "fam.1"}, time.Time{})
	if s.Obtained.Before(before) || s.Obtained.After(time.Now()) || s.TokenID != "fam.1" {
		t.Fatalf("Obtained %v TokenID %q", s.Obtained, s.TokenID)
	}
	if got := s.RefreshSkew(30 * time.Second); got < 14*time.Second || got > 15*time.Second {
		t.Fatalf("RefreshSkew of a 1m token = %v, want a quarter of it", got)
	}
}

func TestNewOIDCProviderRejects(t *testing.T) {
	clk := &clock{time.Now()}
	op := newFakeOP(t, clk.Now, "webapp", "")
	for _, tc := range []struct {
		name string
		cfg  OIDCConfig
	}{
		{"missing issuer", OIDCConfig{ClientID: "x"}},
		{"missing client id", OIDCConfig{Issuer: op.issuer()}},
		{"issuer differing from discovery (trailing slash)", OIDCConfig{Issuer: op.issuer() + "/", ClientID: "webapp"}},
		{"unreachable issuer", OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "webapp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.HTTPClient = op.srv.Client()
			if _, err := NewOIDCProvider(context.Background(), tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestEndSessionURL(t *testing.T) {
	e := newEnv(t, "")
	got := e.prov.EndSessionURL("idtok", "https://app.example.com/", "st")
	u, err := url.Parse(got)
	if err != nil || !strings.HasPrefix(got, e.op.issuer()+"/logout?") {
		t.Fatalf("EndSessionURL = %q", got)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"tenant": "x", "client_id": "webapp", "id_token_hint": "idtok",
		"post_logout_redirect_uri": "https://app.example.com/", "state": "st",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if endSessionURL("", "c", "i", "p", "s") != "" {
		t.Error("no endpoint should give no URL")
	}
}

func TestScopesAlwaysIncludeOpenID(t *testing.T) {
	clk := &clock{time.Now()}
	op := newFakeOP(t, clk.Now, "webapp", "")
	p, err := NewOIDCProvider(context.Background(), OIDCConfig{
		Issuer: op.issuer(), ClientID: "webapp", Scopes: []string{"email"}, HTTPClient: op.srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p.AuthCodeURL("s", "n", "c", callbackURL, ""))
	if got := u.Query().Get("scope"); got != "openid email" {
		t.Fatalf("scope = %q", got)
	}
}

func TestAuthorizedParty(t *testing.T) {
	for _, tc := range []struct {
		name          string
		extraAud, azp string
		wantErr       bool
	}{
		{"several audiences without azp are rejected", "other-api", "", true},
		{"several audiences with azp of another client are rejected", "other-api", "other-api", true},
		{"several audiences with our azp are accepted", "other-api", "webapp", false},
		{"single audience with another azp is rejected", "", "other-api", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			e.op.set(func(op *fakeOP) { op.extraAud, op.azp = tc.extraAud, tc.azp })
			_, _, _, err := e.callback(e.authorize(e.start("/")))
			if tc.wantErr != (err != nil) {
				t.Fatalf("Callback error = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, ErrExchange) {
				t.Fatalf("error %v does not wrap ErrExchange", err)
			}
		})
	}
}
