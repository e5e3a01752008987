package module

import (
	"fmt"
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
		{"client credentials for a public client", domain(`client app {
				grant_types client_credentials
			}`), "client_credentials"},
		{"two users with one username", domain(`user alice {
			}
			user alice {
			}`), "alice"},
		{"issuer over http on a public host", strings.Replace(domain(""), "https://auth.example.com", "http://auth.example.com", 1), "http"},
		{"issuer directive names an unknown domain", domain("") + "auth.example.com {\n\tgatehouse_issuer nope\n}\n", `domain "nope" is not configured`},
		{"gate names an undefined policy", domain(`policy p {
				all {
					rule {
						claim x
					}
				}
			}`) + "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\taudience api\n\t\t}\n\t\tpolicy q\n\t}\n}\n", `"q"`},
		{"gate login client not registered", domain("") + "app.example.com {\n\tgatehouse {\n\t\tlogin ghost\n\t}\n}\n", `client "ghost" is not registered`},
		{"bearer without audience", domain("") + "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\tscopes a\n\t\t}\n\t}\n}\n", "no audience; add `audience"},
		{"gate owns the Authorization header", domain("") + "app.example.com {\n\tgatehouse {\n\t\tbearer {\n\t\t\taudience api\n\t\t}\n\t\tforward Authorization sub\n\t}\n}\n", "cannot own header"},
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
