package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// multiGateEnv is one Caddy with two domains (each its own issuer) and
// several gates on loopback ports. Browsers share cookies across the ports
// of one host, so every gate sees every gate's cookies, as on a real
// loopback deployment (and as under one registrable domain with
// Domain-scoped cookies).
type multiGateEnv struct {
	dir      string
	issuer   string // the default domain's issuer
	issuer2  string // domain tenant2's issuer
	admins   string // default domain, client webapp, gate policy admins-only
	app      string // default domain, client webapp, no gate policy (shares admins' session)
	console  string // default domain, client admin-console (client policy admins-only at the issuer)
	tenant   string // domain tenant2, client webapp
	upstream *recorder
}

func startMultiGate(t *testing.T) *multiGateEnv {
	t.Helper()
	loop := func() string { return fmt.Sprintf("http://127.0.0.1:%d", freePort(t)) }
	env := &multiGateEnv{dir: t.TempDir(), issuer: loop(), issuer2: loop(), admins: loop(), app: loop(), console: loop(), tenant: loop(), upstream: newRecorder(t)}
	hash := bcryptHash(t, testPassword)
	gate := func(site, body string) string {
		return fmt.Sprintf(`
%s {
	gatehouse {
%s
		forward X-Auth-Subject sub
		forward X-Auth-Groups groups
	}
	reverse_proxy %s
}
`, site, body, env.upstream.addr())
	}
	cf := fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
			user alice {
				password_hash %s
				claims {
					groups admins
				}
			}
			user mallory {
				password_hash %s
				claims {
					groups guests
				}
			}
			client webapp {
				secret webapp-secret-0123456789abcdef
				redirect_uris %s/.gatehouse/callback %s/.gatehouse/callback
				scopes openid profile offline_access
			}
			client admin-console {
				secret admin-secret-0123456789abcdef
				redirect_uris %s/.gatehouse/callback
				scopes openid profile offline_access
				policies admins-only
			}
			policy admins-only {
				all {
					rule {
						claim groups
						in admins
					}
				}
			}
		}
		domain tenant2 {
			issuer %s
			# Whoever runs tenant2 names its users as they like: here one
			# with the sub of a user of the default domain, in its admins.
			user mallory {
				password_hash %s
				claims {
					groups admins
				}
			}
			client webapp {
				secret tenant2-secret-0123456789abcdef
				redirect_uris %s/.gatehouse/callback
				scopes openid profile offline_access
			}
		}
	}
}

%s {
	gatehouse_issuer
}

%s {
	gatehouse_issuer tenant2
}
`, filepath.Join(env.dir, "gatehouse.db"), env.issuer, hash, hash, env.admins, env.app, env.console, env.issuer2, hash, env.tenant, env.issuer, env.issuer2)
	cf += gate(env.admins, "\t\tlogin webapp\n\t\tpolicy admins-only")
	cf += gate(env.app, "\t\tlogin webapp")
	cf += gate(env.console, "\t\tlogin admin-console")
	cf += gate(env.tenant, "\t\tdomain tenant2\n\t\tlogin webapp")
	startCaddy(t, cf)
	return env
}

// signInAt runs a gate's browser login for user in browser b (which may
// already hold an SSO session at the issuer) and returns the callback's
// response status.
func signInAt(t *testing.T, b *http.Client, app, user string) int {
	t.Helper()
	resp, _ := do(t, b, "GET", app+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil {
		t.Fatalf("%s: no redirect to sign in: %d", app, resp.StatusCode)
	}
	back := signIn(t, b, loc.String(), user, testPassword)
	if !strings.HasPrefix(back.String(), app+"/.gatehouse/callback") {
		t.Fatalf("%s: sign-in did not come back to the gate: %s", app, back)
	}
	resp, _ = do(t, b, "GET", back.String(), nil)
	return resp.StatusCode
}

// TestGate_SessionFromAnotherDomainIsRefused is the regression test for a
// session cookie that worked at every gate: a user of domain tenant2 (whose
// users its operator names freely) signed in through tenant2's gate, and the
// browser sent the same cookie to a gate of the default domain, which let
// it in as the default domain's "mallory", with tenant2's groups deciding
// the default domain's policy. A session now opens only at gates with the
// same domain, issuer and login client, and gates that cannot share a
// session use different cookies, so signing in at one never signs the
// browser out of another.
func TestGate_SessionFromAnotherDomainIsRefused(t *testing.T) {
	env := startMultiGate(t)
	b := browser(t)
	if code := signInAt(t, b, env.tenant, "mallory"); code != 302 {
		t.Fatalf("sign-in at tenant2's gate: callback %d", code)
	}
	if resp, _ := do(t, b, "GET", env.tenant+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Groups") != "admins" {
		t.Fatalf("tenant2's gate after its sign-in: %d", resp.StatusCode)
	}
	hits := env.upstream.hits.Load()
	resp, _ := do(t, b, "GET", env.admins+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/authorize") {
		t.Fatalf("tenant2's session at a default-domain gate: %d %v (subject %q), want a redirect to the default domain's issuer",
			resp.StatusCode, loc, env.upstream.header().Get("X-Auth-Subject"))
	}
	if resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "application/json"}); resp.StatusCode != 401 {
		t.Fatalf("tenant2's session at another default-domain gate: %d, want 401", resp.StatusCode)
	}
	if env.upstream.hits.Load() != hits {
		t.Fatal("a request with another domain's session reached the upstream")
	}

	// Signing in at the default domain leaves tenant2's session alone: the
	// two gates use different cookies.
	if code := signInAt(t, b, env.app, "mallory"); code != 302 {
		t.Fatalf("sign-in at the default domain's gate: callback %d", code)
	}
	if resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Groups") != "guests" {
		t.Fatalf("default domain's gate: %d groups %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Groups"))
	}
	if resp, _ := do(t, b, "GET", env.tenant+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Groups") != "admins" {
		t.Fatalf("tenant2's gate after signing in at the default domain: %d groups %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Groups"))
	}
	// The default domain's gates with the same client share the session:
	// the admins gate judges the default domain's mallory (a guest).
	if resp, _ := do(t, b, "GET", env.admins+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 403 {
		t.Fatalf("the admins-only gate with the default domain's guest: %d, want 403", resp.StatusCode)
	}
	names := map[string]bool{}
	u, _ := url.Parse(env.app)
	for _, c := range b.Jar.Cookies(u) {
		if isSessionCookie(c.Name) {
			names[c.Name] = true
		}
	}
	if len(names) != 2 {
		t.Fatalf("session cookies %v: want one per domain", names)
	}
}

// TestGate_SessionFromAnotherClientIsRefused is the regression test for a
// client's policies being checked only at sign-in: a user the
// admin-console client refuses (its policy admins-only) signed in through
// the gate of another client of the same domain, and the browser's cookie
// then let them through the admin console's gate. A session opens only at
// gates of the client it was made for, so the admin console's gate sends
// the user to sign in, where the client's policy refuses them.
func TestGate_SessionFromAnotherClientIsRefused(t *testing.T) {
	env := startMultiGate(t)
	b := browser(t)
	if code := signInAt(t, b, env.app, "mallory"); code != 302 {
		t.Fatalf("sign-in at the webapp gate: callback %d", code)
	}
	hits := env.upstream.hits.Load()
	resp, _ := do(t, b, "GET", env.console+"/", map[string]string{"Accept": "text/html"})
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), env.issuer+"/authorize") || loc.Query().Get("client_id") != "admin-console" {
		t.Fatalf("another client's session at the admin console's gate: %d %v, want a redirect to sign in with admin-console", resp.StatusCode, loc)
	}
	if env.upstream.hits.Load() != hits {
		t.Fatal("a request with another client's session reached the upstream")
	}
	// Signing in there: the issuer applies admin-console's policy.
	if code := signInAt(t, b, env.console, "mallory"); code != 403 {
		t.Fatalf("mallory signing in to the admin console: %d, want 403 (client policy)", code)
	}
	if env.upstream.hits.Load() != hits {
		t.Fatal("mallory reached the admin console's upstream")
	}

	// Gates of one client (and domain) share the session across ports.
	a := browser(t)
	if code := signInAt(t, a, env.app, "alice"); code != 302 {
		t.Fatalf("alice at the webapp gate: callback %d", code)
	}
	if resp, _ := do(t, a, "GET", env.admins+"/", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "alice" {
		t.Fatalf("a gate of the same client with alice's session: %d", resp.StatusCode)
	}
}
