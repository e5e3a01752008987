package integration

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestGate_UserinfoSaysWhoIsSignedIn: /.gatehouse/userinfo answers the
// caller's subject and the claims the gate forwards, as JSON, for a browser
// session and a bearer token alike; never a token, never a login redirect.
func TestGate_UserinfoSaysWhoIsSignedIn(t *testing.T) {
	env := startGate(t, `
			login webapp
			bearer {
				audience https://api.example.com
			}
			forward X-Auth-Subject sub
			forward X-Auth-Email email
			forward X-Auth-Groups groups
			forward X-Auth-Missing no_such_claim
			forward_access_token`)
	const path = "/.gatehouse/userinfo"
	decode := func(t *testing.T, body string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("not JSON: %v: %s", err, body)
		}
		return m
	}

	t.Run("browser session", func(t *testing.T) {
		b := loginAs(t, env, "alice")
		hits := env.upstream.hits.Load()
		resp, body := do(t, b, "GET", env.app+path, htmlNav)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
		want := map[string]any{"sub": "alice", "subject_kind": "user", "claims": map[string]any{
			"sub": "alice", "email": "alice@example.com", "groups": []any{"admins", "dev"},
		}}
		if got := decode(t, body); !reflect.DeepEqual(got, want) {
			t.Errorf("userinfo = %v, want %v", got, want)
		}
		if strings.Contains(body, "eyJ") {
			t.Errorf("userinfo carries a token: %s", body)
		}
		if env.upstream.hits.Load() != hits {
			t.Error("the userinfo request reached the upstream")
		}
		if resp, _ := do(t, b, "POST", env.app+path, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})

	t.Run("no credentials: 401, even for a navigation", func(t *testing.T) {
		resp, _ := do(t, browser(t), "GET", env.app+path, htmlNav)
		if resp.StatusCode != 401 || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%d Location %q WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		tok := serviceToken(t, env)
		resp, body := do(t, nil, "GET", env.app+path, map[string]string{"Authorization": "Bearer " + tok})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		want := map[string]any{"sub": "service", "subject_kind": "client", "claims": map[string]any{"sub": "service"}}
		if got := decode(t, body); !reflect.DeepEqual(got, want) {
			t.Errorf("userinfo = %v, want %v", got, want)
		}
		if strings.Contains(body, tok) {
			t.Error("userinfo echoes the token")
		}
		if resp, _ := do(t, nil, "GET", env.app+path, map[string]string{"Authorization": "Bearer not-a-token"}); resp.StatusCode != 401 {
			t.Errorf("an invalid token: %d", resp.StatusCode)
		}
	})
}

// TestGate_UserinfoFollowsPoliciesAndMoves: a caller the policies refuse
// gets 403 (JSON) there as everywhere, and `userinfo <path>` moves it.
func TestGate_UserinfoFollowsPoliciesAndMoves(t *testing.T) {
	env := startGate(t, `
			login webapp
			policy admins-only
			forward X-Auth-Subject sub
			userinfo /whoami`)
	b := loginAs(t, env, "mallory")
	resp, body := do(t, b, "GET", env.app+"/whoami", htmlNav)
	if resp.StatusCode != 403 || !strings.Contains(body, `"access_denied"`) {
		t.Fatalf("refused caller: %d %s", resp.StatusCode, body)
	}
	alice := loginAs(t, env, "alice")
	if resp, body := do(t, alice, "GET", env.app+"/whoami", nil); resp.StatusCode != 200 || !strings.Contains(body, `"sub":"alice"`) {
		t.Fatalf("alice: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, alice, "GET", env.app+"/.gatehouse/userinfo", nil); resp.StatusCode != 200 || body != "upstream saw /.gatehouse/userinfo" {
		t.Fatalf("the default path after moving it: %d %s", resp.StatusCode, body)
	}
}

// TestGate_UserinfoOff: `userinfo off` leaves the path to the upstream.
func TestGate_UserinfoOff(t *testing.T) {
	env := startGate(t, `
			bearer {
				audience https://api.example.com
			}
			userinfo off`)
	resp, body := do(t, nil, "GET", env.app+"/.gatehouse/userinfo", map[string]string{"Authorization": "Bearer " + serviceToken(t, env)})
	if resp.StatusCode != 200 || body != "upstream saw /.gatehouse/userinfo" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
