package issuer

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// Password guessing at the login form: after perLoginAndIP failures for one
// account from one address, even the right password is refused (no hash is
// spent) until the window passes; then it works again.
func TestLogin_RepeatedFailuresAreThrottled(t *testing.T) {
	f := newFixture(t)
	try := func(password string) int { return tryLogin(t, f, "alice", password) }
	for n := range perLoginAndIP {
		if got := try("wrong"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", n+1, got)
		}
	}
	if got := try(alicePassword); got != http.StatusTooManyRequests {
		t.Fatalf("after %d failures the right password got %d, want 429", perLoginAndIP, got)
	}
	if !f.auditHas(evSignIn, outcomeDenied) {
		t.Fatal("throttled sign-in not audited")
	}
	f.clock.Advance(throttleWindow)
	if got := try(alicePassword); got != http.StatusFound && got != http.StatusSeeOther {
		t.Fatalf("after the window the right password got %d", got)
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := newLoginThrottle(func() time.Time { return now }, nil)
	r, _ := http.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i := range throttleEntries {
		th.Failed(r, string(rune('a'+i%26))+string(rune(i)))
	}
	if len(th.entries) > throttleEntries {
		t.Fatalf("%d entries, bound %d", len(th.entries), throttleEntries)
	}
}

// TestLogin_ThrottleIsSharedByInstancesOfOneStore: failures counted by one
// instance count at another sharing the store, so spreading guesses over a
// cluster gains nothing.
func TestLogin_ThrottleIsSharedByInstancesOfOneStore(t *testing.T) {
	a := newFixture(t)
	b := newFixture(t, withConfig(func(c *Config, _ *identity.Domain) { c.Store = a.st }))
	try := func(f *fixture, password string) int { return tryLogin(t, f, "alice", password) }
	for n := range perLoginAndIP {
		f := a
		if n%2 == 1 {
			f = b
		}
		if got := try(f, "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", n+1, got)
		}
	}
	for name, f := range map[string]*fixture{"a": a, "b": b} {
		if got := try(f, alicePassword); got != http.StatusTooManyRequests {
			t.Fatalf("instance %s after %d failures spread over two instances: %d, want 429", name, perLoginAndIP, got)
		}
	}
	// Nothing readable is stored: the keys are hashes.
	counts, err := a.st.LoginFailures(context.Background(), []string{"l\x00alice\x00127.0.0.1"}, time.Now())
	if err != nil || counts[0] != 0 {
		t.Fatalf("a plaintext throttle key is stored: %v %v", counts, err)
	}
}

// tryLogin posts the login form of a fresh authorization request once and
// returns the status.
func tryLogin(t *testing.T, f *fixture, login, password string) int {
	t.Helper()
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	form := loginForm(t, body(t, f.get(c, loc.String())))
	form.Set("login", login)
	form.Set("password", password)
	resp, err := c.PostForm(f.url+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLogin_ThrottleCountsPerAccountNotPerSpelling: the attack is to spread
// guesses for one account over the spellings that reach it — its username
// and its e-mail, in any case — so that no single string ever reaches the
// limit, and keep getting password checks. Failures count per resolved
// account, so after perLoginAndIP failures under any mix of spellings every
// spelling is refused; a login that names no account counts per the string
// as typed, trimmed and lower-cased.
func TestLogin_ThrottleCountsPerAccountNotPerSpelling(t *testing.T) {
	f := newFixture(t)
	spellings := []string{"bob@example.com", "BOB", "Bob@Example.COM", "bob", "BOB@EXAMPLE.COM"}
	for n := range perLoginAndIP {
		if got := tryLogin(t, f, spellings[n%len(spellings)], "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", n+1, got)
		}
	}
	for _, s := range []string{"BOB", "bob", "bob@example.com"} {
		if got := tryLogin(t, f, s, alicePassword); got != http.StatusTooManyRequests {
			t.Fatalf("after %d failures spread over spellings of bob, %q with the right password got %d, want 429", perLoginAndIP, s, got)
		}
	}
	// Another account from the same address is not affected.
	if got := tryLogin(t, f, "alice", alicePassword); got != http.StatusFound && got != http.StatusSeeOther {
		t.Fatalf("alice after bob was throttled: %d", got)
	}
	// Unknown logins: one count per normalised string.
	for n := range perLoginAndIP {
		if got := tryLogin(t, f, []string{"ghost", " GHOST", "Ghost "}[n%3], "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("unknown login failure %d: status %d", n+1, got)
		}
	}
	if got := tryLogin(t, f, "gHoSt", "wrong"); got != http.StatusTooManyRequests {
		t.Fatalf("unknown login after %d failures: %d, want 429", perLoginAndIP, got)
	}
}
