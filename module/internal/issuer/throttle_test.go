package issuer

import (
	"net/http"
	"testing"
	"time"
)

// Password guessing at the login form: after perLoginAndIP failures for one
// account from one address, even the right password is refused (no hash is
// spent) until the window passes; then it works again.
func TestLogin_RepeatedFailuresAreThrottled(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	loc := location(t, f.get(c, f.authorizeURL(authParams("spa", spaRedirect))))
	page := body(t, f.get(c, loc.String()))
	try := func(password string) int {
		form := loginForm(t, page)
		form.Set("login", "alice")
		form.Set("password", password)
		resp, err := c.PostForm(f.url+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
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
		th.failed(r, string(rune('a'+i%26))+string(rune(i)))
	}
	if len(th.entries) > throttleEntries {
		t.Fatalf("%d entries, bound %d", len(th.entries), throttleEntries)
	}
}
