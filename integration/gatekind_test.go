package integration

import (
	"fmt"
	"testing"
	"time"
)

// TestGate_ForwardsWhetherAUserOrAClientIsCalling is the regression test
// for colliding subjects: a client_credentials token's sub is its client
// id, and a client could be named like a user ("client alice" next to
// "user alice"), so an upstream reading X-Auth-Subject could not tell a
// machine from the person. Such a configuration is now refused (see
// TestProvisionErrors), and the gate tells the upstream which kind of
// subject it is: forward_subject_kind and {http.auth.subject_kind}, from
// the embedded issuer's client_credentials marker (gty) or, for another
// issuer, gty or RFC 9068's sub == client_id.
func TestGate_ForwardsWhetherAUserOrAClientIsCalling(t *testing.T) {
	ext := newExternalIssuer(t)
	ext.addKey("k1")
	env := startGate(t, fmt.Sprintf(`
			login webapp
			bearer {
				audience https://api.example.com
			}
			bearer {
				issuer %s
				audience https://api.example.com
			}
			forward X-Auth-Subject sub
			forward_subject_kind X-Auth-Subject-Kind`, ext.srv.URL))
	kind := func(name string, c map[string]string) string {
		t.Helper()
		c["X-Auth-Subject-Kind"] = "user" // a client's own copy is deleted
		resp, body := do(t, nil, "GET", env.app+"/x", c)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", name, resp.StatusCode, body)
		}
		h := env.upstream.header()
		if len(h.Values("X-Auth-Subject-Kind")) != 1 {
			t.Fatalf("%s: X-Auth-Subject-Kind %q", name, h.Values("X-Auth-Subject-Kind"))
		}
		return h.Get("X-Auth-Subject-Kind")
	}
	if got := kind("client_credentials", map[string]string{"Authorization": "Bearer " + serviceToken(t, env, "orders:read")}); got != "client" {
		t.Errorf("a client_credentials token is a %q", got)
	}
	if got := kind("user token", map[string]string{"Authorization": "Bearer " + userToken(t, env, "alice")}); got != "user" {
		t.Errorf("alice's token is a %q", got)
	}
	external := func(extra map[string]any) map[string]string {
		now := time.Now().Unix()
		c := map[string]any{"iss": ext.srv.URL, "aud": "https://api.example.com", "exp": now + 300, "iat": now, "jti": randomString(t), "client_id": "partner-app"}
		for k, v := range extra {
			c[k] = v
		}
		return map[string]string{"Authorization": "Bearer " + ext.sign(t, "k1", c)}
	}
	for name, tc := range map[string]struct {
		claims map[string]any
		want   string
	}{
		"another issuer, sub = client_id (RFC 9068)": {map[string]any{"sub": "partner-app"}, "client"},
		"another issuer, gty client-credentials":     {map[string]any{"sub": "partner-app@clients", "gty": "client-credentials"}, "client"},
		"another issuer, a user":                     {map[string]any{"sub": "u-123"}, "user"},
	} {
		if got := kind(name, external(tc.claims)); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
	b := loginAs(t, env, "alice")
	if resp, _ := do(t, b, "GET", env.app+"/x", map[string]string{"Accept": "text/html", "X-Auth-Subject-Kind": "client"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject-Kind") != "user" {
		t.Fatalf("a browser session: %d %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Subject-Kind"))
	}
}

// TestGate_SubjectKindPlaceholder: {http.auth.subject_kind} is set next to
// {http.auth.user.id}, and a claim named like it cannot shadow it.
func TestGate_SubjectKindPlaceholder(t *testing.T) {
	env := &gateEnv{issuerEnv: newIssuerEnv(t), upstream: newRecorder(t)}
	env.app = fmt.Sprintf("http://127.0.0.1:%d", env.rpPort)
	env.redirect = env.app + "/.gatehouse/callback"
	startCaddy(t, issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	route {
		gatehouse {
			bearer {
				audience https://api.example.com
			}
		}
		respond "{http.auth.subject_kind} {http.auth.user.id}"
	}
}`, env.app)))
	if resp, body := do(t, nil, "GET", env.app+"/", map[string]string{"Authorization": "Bearer " + serviceToken(t, env)}); resp.StatusCode != 200 || body != "client service" {
		t.Fatalf("service: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, nil, "GET", env.app+"/", map[string]string{"Authorization": "Bearer " + userToken(t, env, "alice")}); resp.StatusCode != 200 || body != "user alice" {
		t.Fatalf("alice: %d %q", resp.StatusCode, body)
	}
}
