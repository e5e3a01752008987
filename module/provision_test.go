package module

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestProvisionErrors checks the configuration errors found when the
// config is provisioned (after the Caddyfile parsed): each names the
// problem and the fix.
func TestProvisionErrors(t *testing.T) {
	// A config without a store path opens the SQLite file in Caddy's data
	// directory: keep it in the test's own, never the user's (where a file
	// from another Gatehouse build, with a newer schema, fails the test).
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(t.TempDir(), "config"))
	domain := func(body string) string {
		return fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer https://auth.example.com
%s
		}
	}
}
`, filepath.Join(t.TempDir(), "gh.db"), body)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, caddyfile, want string
	}{
		{"redirect uri with a query", domain(`client app {
				redirect_uris https://app.example.com/cb?x=1
			}`), "query"},
		{"redirect uri over http on a public host", domain(`client app {
				redirect_uris http://app.example.com/cb
			}`), "https"},
		{"client names an undefined policy", domain(`client app {
				redirect_uris https://app.example.com/cb
				policies nobody
			}`), "policies [nobody] but the domain defines none"},
		{"back-channel logout over http on a public host", domain(`client app {
				redirect_uris https://app.example.com/cb
				backchannel_logout_uri http://app.example.com/logout
			}`), "backchannel_logout_uri"},
		{"back-channel session required without a URI", domain(`client app {
				redirect_uris https://app.example.com/cb
				backchannel_logout_session_required
			}`), "needs a backchannel_logout_uri"},
		{"client credentials for a public client", domain(`client app {
				grant_types client_credentials
			}`), "client_credentials"},
		{"client named like a user", domain(`user alice {
			}
			client alice {
				secret alice-secret-0123456789abcdef
				grant_types client_credentials
			}`), `client_id "alice" is also the sub of user "alice"`},
		{"two users with one username", domain(`user alice {
			}
			user alice {
			}`), "alice"},
		{"issuer over http on a public host", strings.Replace(domain(""), "https://auth.example.com", "http://auth.example.com", 1), "http"},
		{"issuer directive names an unknown domain", domain("") + "auth.example.com {\n\tgatehouse_issuer nope\n}\n", `domain "nope" is not configured`},
		// A gate naming a policy its configured domain does not define is
		// not refused here: the policy may be stored, and the store is read
		// when the app starts, where a policy defined nowhere fails the
		// start (integration: TestPropagation_*).
		{"gate login client not registered", domain("") + "app.example.com {\n\tgatehouse {\n\t\tlogin ghost\n\t}\n}\n", `client "ghost" is not registered`},
		{"userinfo on the gate's callback path", domain(`client webapp {
				redirect_uris https://app.example.com/.gatehouse/callback
			}`) + "app.example.com {\n\tgatehouse {\n\t\tlogin webapp\n\t\tuserinfo /.gatehouse/callback\n\t}\n}\n", "is also the gate's callback path"},
		{"bearer without audience", domain("") + "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\tscopes a\n\t\t}\n\t}\n}\n", "no audience; add `audience"},
		{"gate owns the Authorization header", domain("") + "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\taudience api\n\t\t}\n\t\tforward Authorization sub\n\t}\n}\n", "cannot own header"},
		{"claim map with an unknown key", strings.Replace(domain(""), "issuer https://auth.example.com", "issuer https://auth.example.com\n\t\t\tclaims_map "+writeTemp(t, "map.yaml", "mode: merge\ntransformations:\n  - source: a\n    tagret: b\n"), 1), "map.yaml:4:5"},
		{"policy file with an error", strings.Replace(domain(""), "issuer https://auth.example.com", "issuer https://auth.example.com\n\t\t\tpolicy_file "+writeTemp(t, "p.yaml", "policy:\n  - id: p\n    all: []\n"), 1), "p.yaml:3"},
		{"key encryption secret too short", strings.Replace(domain(""), "\t\tdomain {", "\t\tkey_encryption_key tooshort\n\t\tdomain {", 1), "use at least 32 random bytes"},
		{"key encryption secret from an unset variable", strings.Replace(domain(""), "\t\tdomain {", "\t\tkey_encryption_key {env.GATEHOUSE_TEST_UNSET_KEK}\n\t\tdomain {", 1), "expands to nothing"},
		{"user without a way to sign in", domain(`user bob {
				email bob@example.com
			}`), `default domain: user "bob": has no way to sign in: add a ` + "`password_hash`"},
		{"password hash from an unset variable", domain(`user bob {
				password_hash {env.GATEHOUSE_TEST_UNSET_HASH}
			}`), `user "bob": password_hash "{env.GATEHOUSE_TEST_UNSET_HASH}" expands to nothing`},
		{"client names a provider the domain does not define", domain(`client app {
				redirect_uris https://app.example.com/cb
				providers github
			}`), `client "app": providers [github]: the domain defines no login provider of that name (Gatehouse cannot define login providers yet); remove providers`},
		{"deny_local_login leaves no way to sign in", domain(`client app {
				redirect_uris https://app.example.com/cb
				deny_local_login
			}`), `client "app": users have no way to sign in: local login is denied (deny_local_login`},
		{"relative policy file that is not there", strings.Replace(domain(""), "issuer https://auth.example.com", "issuer https://auth.example.com\n\t\t\tpolicy_file no-such-policies.yaml", 1),
			"policy_file no-such-policies.yaml: reading " + filepath.Join(cwd, "no-such-policies.yaml") + " (relative to the working directory): no such file or directory"},
		{"relative claim map that is not there", strings.Replace(domain(""), "issuer https://auth.example.com", "issuer https://auth.example.com\n\t\t\tclaims_map no-such-map.yaml", 1),
			"claims_map no-such-map.yaml: reading " + filepath.Join(cwd, "no-such-map.yaml") + " (relative to the working directory)"},
		{"gate callback path not among the client's redirect URIs", domain(`client webapp {
				redirect_uris https://app.example.com/oidc/callback
			}`) + "app.example.com {\n\tgatehouse {\n\t\tlogin webapp\n\t}\n}\n",
			`client "webapp" has no redirect URI with the gate's callback path /.gatehouse/callback (its redirect_uris: https://app.example.com/oidc/callback)`},
		{"gate site not among the client's redirect URIs", domain(`client webapp {
				redirect_uris https://other.example.com/.gatehouse/callback
			}`) + "app.example.com {\n\thandle {\n\t\tgatehouse {\n\t\t\tlogin webapp\n\t\t}\n\t}\n}\n",
			"client \"webapp\" has no redirect URI for the gate's site app.example.com (its redirect_uris: https://other.example.com/.gatehouse/callback); add `redirect_uris https://app.example.com/.gatehouse/callback` to the client"},
		{"gate with a custom callback the client did not register", domain(`client webapp {
				redirect_uris https://app.example.com/.gatehouse/callback
			}`) + "app.example.com {\n\tgatehouse {\n\t\tlogin webapp {\n\t\t\tcallback /auth/cb\n\t\t}\n\t}\n}\n",
			"callback path /auth/cb"},
		{"login method listed twice", domain(`login_method password
			login_method password`), `login method "password" is configured twice`},
		{"gate without a gatehouse app", "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\taudience api\n\t\t}\n\t}\n}\n", "no gatehouse domain is configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			err = caddy.Validate(mustConfig(t, cfg))
			if err == nil {
				t.Fatalf("expected an error containing %q", tc.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func mustConfig(t *testing.T, raw []byte) *caddy.Config {
	t.Helper()
	var cfg caddy.Config
	if err := caddyJSONUnmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func writeTemp(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProvisionRefusesTokenHeadersCaddyLogs: a JSON config that forwards a
// token in any header but Authorization is refused, saying why (Caddy's
// logs write other headers in full), and so is forwarding both tokens.
func TestProvisionRefusesTokenHeadersCaddyLogs(t *testing.T) {
	src := fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer https://auth.example.com
			client webapp {
				redirect_uris https://app.example.com/.gatehouse/callback
			}
		}
	}
}
app.example.com {
	gatehouse {
		login webapp
		forward_access_token
	}
}
`, filepath.Join(t.TempDir(), "gh.db"))
	raw, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"forward_access_token":"Authorization"`) {
		t.Fatalf("unexpected JSON: %s", raw)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"access token in X-Access-Token": {`"forward_access_token":"Authorization"`, `"forward_access_token":"X-Access-Token"`, "write every request header except Authorization"},
		"ID token in X-ID-Token":         {`"forward_access_token":"Authorization"`, `"forward_id_token":"x-id-token"`, "forward_id_token x-id-token"},
		"both tokens":                    {`"forward_access_token":"Authorization"`, `"forward_access_token":"Authorization","forward_id_token":"authorization"`, "one Authorization header"},
	} {
		t.Run(name, func(t *testing.T) {
			err := caddy.Validate(mustConfig(t, []byte(strings.Replace(string(raw), tc.from, tc.to, 1))))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
		})
	}
}

// TestProvisionReportsEveryProblemAtOnce: one run names every problem of the
// gatehouse app, each on its own line with its domain and object, instead of
// stopping at the first.
func TestProvisionReportsEveryProblemAtOnce(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "data"))
	cf := fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		key_encryption_key {env.GATEHOUSE_TEST_UNSET_KEK}
		domain {
			issuer https://auth.example.com
			policy_file no-such-policies.yaml
			user alice {
			}
			user bob {
				password_hash $2a$14$notahash
			}
			client webapp {
				redirect_uris https://app.example.com/cb
				providers github
				deny_local_login
			}
		}
		domain acme {
			issuer https://acme.example.com
			client api {
				secret {env.GATEHOUSE_TEST_UNSET_SECRET}
				grant_types client_credentials
			}
			client spa {
				redirect_uris https://spa.example.com/cb
				policies admins
			}
		}
	}
}
`, filepath.Join(t.TempDir(), "gh.db"))
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	err = caddy.Validate(mustConfig(t, cfg))
	if err == nil {
		t.Fatal("the configuration was accepted")
	}
	t.Log(err)
	want := []string{
		"provision gatehouse: 8 configuration problems:",
		"\n\tkey_encryption_key \"{env.GATEHOUSE_TEST_UNSET_KEK}\" expands to nothing",
		"\n\tdefault domain: user \"alice\": has no way to sign in",
		"\n\tdefault domain: client \"webapp\": providers [github]: the domain defines no login provider",
		"\n\tdefault domain: user \"bob\": password_hash: ",
		"\n\tdefault domain: client \"webapp\": users have no way to sign in: local login is denied",
		"\n\tdefault domain: policy_file no-such-policies.yaml: reading ",
		"\n\tdomain \"acme\": client \"api\": its secret \"{env.GATEHOUSE_TEST_UNSET_SECRET}\" expands to nothing",
		"\n\tdomain \"acme\": client \"spa\": names policies [admins] but the domain defines none",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the report lacks %q", w)
		}
	}
}

// TestProvisionGateCallbackOnItsSite: a gate's login client must have the
// gate's callback on the gate's site among its redirect URIs. The site is
// known from the route's host matchers: wildcards match one label, and
// every site that uses an identical gate is checked.
func TestProvisionGateCallbackOnItsSite(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "data"))
	config := func(redirects, sites string) string {
		return fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer https://auth.example.com
			client webapp {
				redirect_uris %s
			}
		}
	}
}
%s`, filepath.Join(t.TempDir(), "gh.db"), redirects, sites)
	}
	gate := "{\n\tgatehouse {\n\t\tlogin webapp\n\t}\n\trespond ok\n}\n"
	cases := []struct {
		name, redirects, sites, wantErr string
	}{
		{"the site's own callback", "https://app.example.com/.gatehouse/callback", "app.example.com " + gate, ""},
		{"a wildcard site", "https://app.example.com/.gatehouse/callback", "*.example.com " + gate, ""},
		{"one site of several names", "https://www.example.com/.gatehouse/callback", "example.com, www.example.com " + gate, ""},
		{"a site on any host", "https://app.example.com/.gatehouse/callback", ":8443 " + gate, ""},
		{"two sites with one gate, both registered", "https://a.example.com/.gatehouse/callback https://b.example.com/.gatehouse/callback",
			"a.example.com " + gate + "b.example.com " + gate, ""},
		{"two sites with one gate, one registered", "https://a.example.com/.gatehouse/callback",
			"a.example.com " + gate + "b.example.com " + gate, "has no redirect URI for the gate's site b.example.com"},
		{"a wildcard does not match two labels", "https://x.app.example.com/.gatehouse/callback", "*.example.com " + gate, "has no redirect URI for the gate's site *.example.com"},
		{"a site on any host still needs the path", "https://app.example.com/callback", ":8443 " + gate, "has no redirect URI with the gate's callback path /.gatehouse/callback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config(tc.redirects, tc.sites)), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			err = caddy.Validate(mustConfig(t, cfg))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted; want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %v\nwant %q", err, tc.wantErr)
			}
		})
	}
}

// TestProvisionAcceptsADisabledUserWithoutPassword: an account that cannot
// sign in anyway needs no password.
func TestProvisionAcceptsADisabledUserWithoutPassword(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "data"))
	cf := fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer https://auth.example.com
			user former {
				disabled
			}
		}
	}
}
`, filepath.Join(t.TempDir(), "gh.db"))
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if err := caddy.Validate(mustConfig(t, cfg)); err != nil {
		t.Fatal(err)
	}
}
