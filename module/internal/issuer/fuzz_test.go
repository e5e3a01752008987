package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzAuthorizeRequest(f *testing.F) {
	fx := newFixture(f)
	for _, seed := range []string{
		authParams("spa", spaRedirect).Encode(),
		authParams("web", webRedirect).Encode() + "&prompt=none&max_age=0",
		"client_id=spa&redirect_uri=" + url.QueryEscape(spaRedirect) + "&response_type=token",
		"client_id=spa&redirect_uri=" + url.QueryEscape(spaRedirect+"/x"),
		"client_id=legacy&response_type=code&code_challenge=abc&code_challenge_method=plain",
		"client_id=spa&client_id=web",
		"%zz=1",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		p, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		snap, err := fx.iss.snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, _, _, aerr := fx.iss.parseAuthorize(snap, p)
		if aerr != nil {
			if aerr.redirectURI != "" {
				c := fx.domain.Client(p.Get("client_id"))
				if c == nil || !c.HasRedirectURI(aerr.redirectURI) {
					t.Fatalf("error would redirect to unregistered %q", aerr.redirectURI)
				}
			}
			return
		}
		c := fx.domain.Client(req.ClientID)
		if c == nil || !c.HasRedirectURI(req.RedirectURI) {
			t.Fatalf("accepted request for %q → %q", req.ClientID, req.RedirectURI)
		}
		if c.PKCERequired() && req.Challenge == "" {
			t.Fatal("accepted a request without PKCE")
		}
		if req.Method == "plain" && !c.AllowPlainPKCE {
			t.Fatal("accepted plain PKCE")
		}
	})
}

func FuzzTokenEndpoint(f *testing.F) {
	fx := newFixture(f)
	f.Add("grant_type=client_credentials", "service", serviceSecret)
	f.Add("grant_type=client_credentials&scope=orders%3Aread&resource=orders-api", "service", serviceSecret)
	f.Add("grant_type=authorization_code&code=abc&code_verifier="+testVerifier, "spa", "")
	f.Add("grant_type=refresh_token&refresh_token=abc", "web", webSecret)
	f.Add("grant_type=password&username=a&password=b", "", "")
	f.Add("grant_type=%zz", "x", "y")
	f.Fuzz(func(t *testing.T, form, user, pass string) {
		r := httptest.NewRequest(http.MethodPost, fx.url+"/token", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" || pass != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		fx.iss.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("no Cache-Control: no-store")
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", w.Body)
		}
		if d, _ := m["error_description"].(string); strings.ContainsAny(d, "\r\n\"\\") {
			t.Fatalf("unclean description %q", d)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
	})
}

func FuzzSealedRequest(f *testing.F) {
	fx := newFixture(f)
	good, _ := fx.iss.sealer.sealTx(testTx("x", fx.clock.Now().Add(time.Minute)), fx.clock.Now(), time.Hour)
	f.Add(good)
	f.Add(good[:len(good)-1] + "A")
	f.Add("")
	f.Add(strings.Repeat("A", 100))
	f.Fuzz(func(t *testing.T, v string) {
		p, err := fx.iss.sealer.openTx(v)
		if err == nil && v != good {
			t.Fatalf("forged sealed request accepted: %+v", p)
		}
	})
}

func FuzzLoginForm(f *testing.F) {
	fx := newFixture(f)
	f.Add("req=abc&csrf=def&login=alice&password=x&method=pwd", "gatehouse-csrf=abc")
	f.Add("cancel=1", "")
	f.Add("%zz", "gatehouse-sso=1")
	f.Fuzz(func(t *testing.T, form, cookie string) {
		r := httptest.NewRequest(http.MethodPost, fx.url+"/login", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		fx.iss.ServeHTTP(w, r)
		if w.Code >= 500 || w.Code == 200 || w.Header().Get("Location") != "" {
			t.Fatalf("status %d location %q", w.Code, w.Header().Get("Location"))
		}
	})
}
