package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// rotationCaddyfile is one instance of a deployment whose instances share
// a PostgreSQL store (the DSN comes from the environment): an issuer and a
// bearer-protected /api on 127.0.0.1:port, a new signing key every minute.
// Every instance names the same issuer, as instances behind one load
// balancer do.
func rotationCaddyfile(port int) string {
	return fmt.Sprintf(`{
	gatehouse {
		store postgres {env.GATEHOUSE_IT_DSN}
		domain {
			issuer https://auth.rotation.test
			key_rotation 1m
			client service {
				secret service-secret-0123456789abcdef
				grant_types client_credentials
				scopes orders:read
				audience https://api.rotation.test
			}
		}
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	handle /api {
		gatehouse {
			bearer {
				audience https://api.rotation.test
			}
		}
		respond "ok"
	}
	handle {
		gatehouse_issuer
	}
}`, port)
}

// waitOK waits until u answers 200.
func waitOK(t *testing.T, u string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", u, within)
}

// publishedKIDs fetches an instance's JWKS and returns its kids.
func publishedKIDs(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/jwks")
	if err != nil {
		t.Fatalf("JWKS of %s: %v", base, err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS of %s: status %d, %v", base, resp.StatusCode, err)
	}
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// clientCredentialsToken gets a fresh access token from an instance.
func clientCredentialsToken(t *testing.T, base string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("service", "service-secret-0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token from %s: %v", base, err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token from %s: status %d, %v", base, resp.StatusCode, err)
	}
	return tr.AccessToken
}

// gateStatus presents tok at an instance's bearer gate.
func gateStatus(t *testing.T, base, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gate of %s: %v", base, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// TestKeyRotation_EveryInstancePublishesANewKeyBeforeAnyInstanceSignsWithIt
// is the regression test for a rotated signing key that one instance used
// before the others knew it. Two Caddy processes share one PostgreSQL store
// and rotate every minute; the second starts some seconds after the first,
// so each reloads its keys on its own schedule. Before the fix, the
// instance that rotated signed with the new key at once: for the seconds
// until the other instance reloaded, that one's gate refused the new
// tokens ("unknown key") and its JWKS lacked the key the first served.
// Tokens from each instance are presented at the other's gate across a
// rotation: none may be refused, and every kid either signs with must have
// been in both JWKS before its first token.
func TestKeyRotation_EveryInstancePublishesANewKeyBeforeAnyInstanceSignsWithIt(t *testing.T) {
	dsn := postgresSchema(t)
	caddyBinary(t) // built before the rotation clock starts
	const apart = 20 * time.Second
	type instance struct {
		name, base string
		published  map[string]time.Time // kid -> when its JWKS first listed it
		switched   time.Time            // when it first signed with a new kid
	}
	var insts [2]*instance
	var startA time.Time
	for i, name := range []string{"A", "B"} {
		port := freePort(t)
		insts[i] = &instance{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), published: map[string]time.Time{}}
		if i == 1 {
			time.Sleep(apart - time.Since(startA)) // instances start at different seconds
		}
		startCaddyProcess(t, "instance "+name, rotationCaddyfile(port), "GATEHOUSE_IT_DSN="+dsn)
		waitOK(t, insts[i].base+"/jwks", 30*time.Second)
		if i == 0 {
			startA = time.Now() // A's first key signs from about now
		}
	}
	since := func(at time.Time) string { return at.Sub(startA).Round(100 * time.Millisecond).String() }

	firstUse := map[string]time.Time{} // kid -> start of the first token request that returned it
	firstKID := ""
	tokens, refused := 0, 0
	var refusals []string
	deadline := startA.Add(time.Minute + apart + 40*time.Second)
	for {
		for _, in := range insts {
			for _, kid := range publishedKIDs(t, in.base) {
				if _, ok := in.published[kid]; !ok {
					in.published[kid] = time.Now()
				}
			}
		}
		for i, in := range insts {
			start := time.Now()
			tok := clientCredentialsToken(t, in.base)
			kid, _ := jwtHeader(t, tok)["kid"].(string)
			if _, ok := firstUse[kid]; !ok {
				firstUse[kid] = start
			}
			if firstKID == "" {
				firstKID = kid
			}
			if kid != firstKID && in.switched.IsZero() {
				in.switched = time.Now()
			}
			other := insts[1-i]
			tokens++
			if status, why := gateStatus(t, other.base, tok); status != http.StatusOK {
				refused++
				if len(refusals) < 5 {
					refusals = append(refusals, fmt.Sprintf("at +%s a token of %s (kid %s) got %d at %s's gate: %s", since(start), in.name, kid, status, other.name, why))
				}
			}
		}
		a, b := insts[0].switched, insts[1].switched
		if !a.IsZero() && !b.IsZero() && time.Since(a) > 3*time.Second && time.Since(b) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation seen by +%s: instance A switched at %v, B at %v (kids %v)", since(time.Now()), a, b, firstUse)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Logf("%d fresh tokens, %d refused at the other instance's gate; A started signing with the new key at +%s, B at +%s",
		tokens, refused, since(insts[0].switched), since(insts[1].switched))
	for _, r := range refusals {
		t.Log(r)
	}
	if refused > 0 {
		t.Errorf("%d of %d fresh tokens were refused by the other instance's gate", refused, tokens)
	}
	kids := make([]string, 0, len(firstUse))
	for kid := range firstUse {
		kids = append(kids, kid)
	}
	sort.Slice(kids, func(i, j int) bool { return firstUse[kids[i]].Before(firstUse[kids[j]]) })
	if len(kids) < 2 {
		t.Fatalf("the run crossed no rotation: kids %v", kids)
	}
	for _, kid := range kids {
		use := firstUse[kid]
		if kid == firstKID {
			t.Logf("kid %s: the domain's first key, signing since A started", kid)
		}
		for _, in := range insts {
			at, ok := in.published[kid]
			switch {
			case !ok:
				t.Errorf("kid %s signed at +%s but instance %s never published it", kid, since(use), in.name)
			case !at.Before(use):
				t.Errorf("kid %s signed at +%s but instance %s published it only at +%s", kid, since(use), in.name, since(at))
			case kid != firstKID:
				t.Logf("kid %s: published by %s at +%s, first signed at +%s (%s ahead)", kid, in.name, since(at), since(use), use.Sub(at).Round(100*time.Millisecond))
			}
		}
	}
}
