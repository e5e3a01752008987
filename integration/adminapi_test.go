package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// adminCall sends a request to an instance's Caddy admin endpoint and
// returns the status and the JSON answer.
func adminCall(t *testing.T, in *fleetInstance, method, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+in.admin+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d %s is not a JSON answer: %v\n%s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), err, raw)
	}
	if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
		t.Fatalf("%s %s: 405 without Allow: POST", method, path)
	}
	return resp.StatusCode, out
}

// TestAdminAPI_RotateKeysAndRevokeSessions runs a real Caddy process with
// its admin endpoint on a free loopback port and uses the routes of
// admin.api.gatehouse:
//
//   - keys/rotate publishes a new signing key at once, in the JWKS, and
//     tokens carry it from the instant the answer names (a quarter of the
//     rotation period later); a second rotation adds nothing and says why.
//   - users/{sub}/revoke ends what the user holds: the gate's session (at
//     once on this instance), the refresh token, the SSO session at the
//     issuer; the user is not disabled and signs in again.
//   - unknown domains, users, routes and methods are refused with a
//     message that names the problem; every call is audited.
func TestAdminAPI_RotateKeysAndRevokeSessions(t *testing.T) {
	domain := fmt.Sprintf(`			key_rotation 1m
			user alice {
				email alice@example.com
				password_hash %s
			}`, bcryptHash(t, testPassword))
	f := newFleet(t, sqliteFleetStore(t), domain, fleetRole{gate: true, admin: true})
	a := f.start(0)

	// Rotation.
	first := publishedKIDs(t, a.issuer)
	if len(first) != 1 {
		t.Fatalf("JWKS before the rotation: %v", first)
	}
	if kid, _ := jwtHeader(t, f.serviceToken(a))["kid"].(string); kid != first[0] {
		t.Fatalf("a token before the rotation has kid %q, want %s", kid, first[0])
	}
	asked := time.Now()
	status, rot := adminCall(t, a, "POST", "/gatehouse/domains/corp/keys/rotate")
	next, _ := rot["next_kid"].(string)
	from, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rot["next_signs_from"]))
	if status != 200 || rot["domain"] != "corp" || rot["rotated"] != true || rot["signing_kid"] != first[0] || next == "" || next == first[0] || err != nil {
		t.Fatalf("rotate: %d %v (%v)", status, rot, err)
	}
	if lead := from.Sub(asked); lead < 14*time.Second || lead > 16*time.Second {
		t.Fatalf("the new key signs %s after the request, want the publish lead of a 1m rotation (15s)", lead)
	}
	if got := publishedKIDs(t, a.issuer); !slices.Contains(got, next) || !slices.Contains(got, first[0]) {
		t.Fatalf("JWKS after the rotation: %v, want %s and %s", got, first[0], next)
	}
	if kid, _ := jwtHeader(t, f.serviceToken(a))["kid"].(string); kid != first[0] {
		t.Fatalf("a token right after the rotation has kid %q: the new key signed before it was published ahead", kid)
	}
	status, again := adminCall(t, a, "POST", "/gatehouse/domains/corp/keys/rotate")
	if status != 200 || again["rotated"] != false || again["next_kid"] != next || !strings.Contains(fmt.Sprint(again["reason"]), "already published") {
		t.Fatalf("a second rotation: %d %v", status, again)
	}

	// Revoking alice's sessions: the gate's session and a refresh token
	// from a code flow in the same browser.
	b := f.gateSignIn(a, "alice", testPassword)
	tok := f.refreshToken(b, "alice", testPassword)
	if s := gateCall(t, a, b, ""); s != 200 {
		t.Fatalf("alice's session before the revocation: %d", s)
	}
	status, rev := adminCall(t, a, "POST", "/gatehouse/domains/corp/users/alice/revoke")
	if status != 200 || rev["sub"] != "alice" || rev["revoked_families"] != float64(2) || rev["ended_sessions"] != float64(1) {
		t.Fatalf("revoke: %d %v, want 2 families (the gate's and the code flow's) and 1 SSO session", status, rev)
	}
	if s := gateCall(t, a, b, ""); s != http.StatusUnauthorized {
		t.Fatalf("alice's gate session right after the revocation: %d, want 401", s)
	}
	if s, e := f.refreshAt(a, tok); s != 400 || e != "invalid_grant" {
		t.Fatalf("alice's refresh token after the revocation: %d %s", s, e)
	}
	if silentSignIn(t, b, f.oauthConfig(a)) {
		t.Fatal("alice's SSO session at the issuer survived the revocation")
	}
	// Not disabled: she signs in again.
	b = f.gateSignIn(a, "alice", testPassword)
	if s := gateCall(t, a, b, ""); s != 200 {
		t.Fatalf("alice signed in again: %d", s)
	}

	// Refusals.
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/gatehouse/domains/nope/keys/rotate", 404, `domain "nope" is not served here`},
		{"POST", "/gatehouse/domains/nope/users/alice/revoke", 404, `domain "nope" does not exist`},
		{"POST", "/gatehouse/domains/corp/users/mallory/revoke", 404, `user "mallory" does not exist in domain "corp"`},
		{"GET", "/gatehouse/domains/corp/keys/rotate", 405, "use POST"},
		{"POST", "/gatehouse/domains/corp/keys", 404, "the routes are POST /gatehouse/domains/{domain}/keys/rotate"},
	} {
		status, out := adminCall(t, a, tc.method, tc.path)
		if status != tc.status || !strings.Contains(fmt.Sprint(out["error"]), tc.want) {
			t.Errorf("%s %s: %d %v, want %d with %q", tc.method, tc.path, status, out, tc.status, tc.want)
		}
	}

	// The new key signs from the instant the rotation named.
	time.Sleep(time.Until(from))
	deadline := from.Add(5 * time.Second)
	for {
		kid, _ := jwtHeader(t, f.serviceToken(a))["kid"].(string)
		if kid == next {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokens still carry kid %s 5s after %s, when %s should sign", kid, from.Format(time.RFC3339), next)
		}
		time.Sleep(100 * time.Millisecond)
	}

	audit := f.audit(a)
	for _, want := range []string{
		`"event":"admin","action":"keys.rotate","outcome":"success","domain":"corp"`,
		`"rotated":true,"kid":"` + first[0] + `","next_kid":"` + next + `"`,
		`"event":"admin","action":"user.revoke","outcome":"success","domain":"corp"`,
		`"sub":"alice","revoked_families":2,"ended_sessions":1`,
		`"action":"user.revoke","outcome":"failure","domain":"corp"`,
		`"status":404,"reason":"user \"mallory\" does not exist in domain \"corp\""`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
	if strings.Contains(audit, tok.RefreshToken) || strings.Contains(audit, testPassword) {
		t.Fatal("the audit log holds a token or a password")
	}
}
