package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// accessLogSnippet is the (access-log) snippet of the quickstart example:
// the filter the examples ship is the one this test runs.
func accessLogSnippet(t *testing.T, output string) string {
	t.Helper()
	src, err := os.ReadFile("../caddyfile-examples/quickstart.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\n(access-log) {\n")
	body, _, ok2 := strings.Cut(rest, "\n}\n")
	if !ok || !ok2 || !strings.Contains(body, "\tlog {\n") {
		t.Fatal("the quickstart example has no (access-log) snippet with a log block")
	}
	return "(access-log) {\n" + strings.Replace(body, "\tlog {\n", "\tlog {\n\t\toutput file "+output+"\n", 1) + "\n}\n"
}

// TestGate_NoSecretInDebugOrAccessLogs is the regression test for tokens in
// Caddy's logs: with debug logging, reverse_proxy's "upstream roundtrip"
// entry writes every request header in full except Authorization, Cookie
// and Proxy-Authorization, so an access token the gate forwarded in
// X-Access-Token was logged (and worked at /userinfo). The gate now
// forwards tokens only as Authorization: Bearer and refuses other header
// names. Authorization codes, state and ID tokens travel in URIs and
// Location headers, which the access log writes: the examples' access-log
// filter deletes them. Everything secret this test uses is then looked for
// in every log: debug, access and audit.
func TestGate_NoSecretInDebugOrAccessLogs(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	debugLog, accessLog := filepath.Join(env.dir, "debug.log"), filepath.Join(env.dir, "access.log")
	cf := issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	import access-log
	handle /api/* {
		gatehouse {
			login webapp
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub
			forward_access_token
		}
		reverse_proxy %s
	}
	handle /id/* {
		gatehouse {
			login webapp
			forward_id_token
		}
		reverse_proxy %s
	}
	handle {
		gatehouse {
			login webapp
		}
		reverse_proxy %s
	}
}`, env.app, env.upstream.addr(), env.upstream.addr(), env.upstream.addr()))
	issuerSite := "\n\n" + env.issuer + " {\n\tgatehouse_issuer\n}"
	if !strings.Contains(cf, issuerSite) {
		t.Fatal("cannot find the issuer's site")
	}
	cf = strings.Replace(cf, issuerSite, "\n\n"+accessLogSnippet(t, accessLog)+"\n"+env.issuer+" {\n\timport access-log\n\tgatehouse_issuer\n}", 1)
	cf = strings.Replace(cf, "\tgatehouse {\n\t\tstore", fmt.Sprintf("\tlog default {\n\t\toutput file %s\n\t\tlevel DEBUG\n\t}\n\tgatehouse {\n\t\tstore", debugLog), 1)
	startCaddy(t, cf)

	secrets := map[string]string{
		"password":              testPassword,
		"webapp client secret":  "webapp-secret-0123456789abcdef",
		"service client secret": "service-secret-0123456789abcdef",
	}
	// A browser signs in through the gate.
	b := browser(t)
	cookies := func(stage string, origins ...string) {
		for _, o := range origins {
			u, _ := url.Parse(o)
			for _, c := range b.Jar.Cookies(u) {
				if len(c.Value) >= 16 {
					secrets[stage+" cookie "+c.Name] = c.Value
				}
			}
		}
	}
	resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("no redirect to sign in: %d", resp.StatusCode)
	}
	secrets["gate state"] = loc.Query().Get("state")
	back := signIn(t, b, loc.String(), "alice", testPassword)
	secrets["gate code"] = back.Query().Get("code")
	cookies("before callback", env.app, env.issuer)
	if resp, _ := do(t, b, "GET", back.String(), nil); resp.StatusCode != 302 {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	cookies("session", env.app, env.issuer)

	// The gates forward the session's access token and ID token.
	if resp, _ := do(t, b, "GET", env.app+"/api/orders", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("api with the session: %d", resp.StatusCode)
	}
	secrets["forwarded access token"] = forwardedToken(t, env.upstream.header())
	if resp, _ := do(t, b, "GET", env.app+"/id/me", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("id with the session: %d", resp.StatusCode)
	}
	secrets["forwarded ID token"] = forwardedToken(t, env.upstream.header())

	// An API client with its own token.
	svc := serviceToken(t, env, "orders:read")
	secrets["service token"] = svc
	if resp, _ := do(t, nil, "GET", env.app+"/api/orders", map[string]string{"Authorization": "Bearer " + svc}); resp.StatusCode != 200 {
		t.Fatalf("api with a bearer token: %d", resp.StatusCode)
	}

	// A relying party's code flow at the issuer: code, tokens, userinfo.
	verifier := oauth2.GenerateVerifier()
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: "webapp-secret-0123456789abcdef", RedirectURL: env.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.issuer + "/authorize", TokenURL: env.issuer + "/token"}, Scopes: []string{"openid", "offline_access", "orders:read"}}
	rp := signIn(t, b, conf.AuthCodeURL("rp-state-0123456789abcdef", oauth2.S256ChallengeOption(verifier)), "alice", testPassword)
	secrets["rp code"] = rp.Query().Get("code")
	secrets["pkce verifier"] = verifier
	tok, err := conf.Exchange(context.Background(), rp.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	secrets["rp access token"] = tok.AccessToken
	secrets["rp refresh token"] = tok.RefreshToken
	secrets["rp ID token"], _ = tok.Extra("id_token").(string)
	if resp, _ := do(t, nil, "GET", env.issuer+"/userinfo", map[string]string{"Authorization": "Bearer " + tok.AccessToken}); resp.StatusCode != 200 {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	// Logout last: the issuer's logout may carry an id_token_hint.
	// The gate's logout sends the browser to the issuer's with a sealed
	// logout_hint, which the access log must not keep either.
	out, _ := do(t, b, "GET", env.app+"/.gatehouse/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
	end, _ := out.Location()
	if end == nil || end.Query().Get("logout_hint") == "" {
		t.Fatalf("the gate's logout did not go on to the issuer's with a logout_hint: %d %v", out.StatusCode, end)
	}
	secrets["logout hint"] = end.Query().Get("logout_hint")
	do(t, b, "GET", end.String(), nil)
	do(t, nil, "GET", env.issuer+"/logout?id_token_hint="+url.QueryEscape(secrets["rp ID token"])+"&client_id=webapp", nil)

	// The access log is written after each response: wait for the last.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(accessLog)
		if strings.Contains(string(b), `/logout`) && strings.Count(string(b), `/logout`) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log never recorded the logouts:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := map[string]string{}
	for _, f := range []string{debugLog, accessLog, filepath.Join(env.dir, "audit.log")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs[filepath.Base(f)] = string(b)
	}
	// The logs are real: debug entries of the proxy, access entries of the
	// callback with its (filtered) query.
	if !strings.Contains(logs["debug.log"], "upstream roundtrip") || !strings.Contains(logs["access.log"], "/.gatehouse/callback") {
		t.Fatalf("debug or access logging is not on:\ndebug: %.500s\naccess: %.500s", logs["debug.log"], logs["access.log"])
	}
	for name, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("%s %q is too short to look for", name, secret)
		}
		for file, content := range logs {
			if i := strings.Index(content, secret); i >= 0 {
				line := content[strings.LastIndexByte(content[:i], '\n')+1:]
				line, _, _ = strings.Cut(line, "\n")
				t.Errorf("%s is in %s: %.400s", name, file, line)
			}
		}
	}
}

// forwardedToken returns the token the upstream got in Authorization.
func forwardedToken(t *testing.T, h http.Header) string {
	t.Helper()
	v, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || v == "" {
		t.Fatalf("no token forwarded: %v", h)
	}
	return v
}
