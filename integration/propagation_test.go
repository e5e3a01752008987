package integration

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// offPhase waits a random part of a second, so that a change falls at a
// random point of the other instance's poll period, not just after the
// poll that saw the last change.
func offPhase() { time.Sleep(rand.N(time.Second)) }

// TestPropagation_SQLite and TestPropagation_PostgreSQL: a change made
// through one instance's management API reaches another instance's gate
// without a reload, within 2 seconds of the API's answer, with both
// processes on one store — one SQLite file opened by both, or one
// PostgreSQL schema. Instance A serves the API (and the issuer URL);
// instance B serves a gate that applies the stored policy "access" to
// bearer tokens and browser sessions. The delays measured are logged.
//
//   - The policy changed through A to deny everyone: B's gate refuses a
//     bearer token and a session it admitted, then admits them again when
//     the policy is changed back.
//   - A user deleted through A: their refresh token is refused at B's
//     token endpoint, and their session at B's gate.
//   - A user disabled through A: likewise.
func TestPropagation_SQLite(t *testing.T) { runPropagation(t, sqliteFleetStore(t)) }

func TestPropagation_PostgreSQL(t *testing.T) { runPropagation(t, postgresFleetStore(t)) }

func runPropagation(t *testing.T, st fleetStore) {
	f := newFleet(t, st, "", fleetRole{api: true}, fleetRole{gate: true, policy: fleetPolicy})
	a := f.start(0)
	// B's gate names a policy of the configured domain that its
	// configuration does not define: while the store does not define it
	// either, B does not start, and says why.
	p := startCaddyProcess(t, "instance B without the policy", string(mustRead(t, f.insts[1].caddyfile)), st.env...)
	if code, ok := p.exited(30 * time.Second); !ok || code == 0 || !strings.Contains(p.log.String(), `gatehouse: policy [`+fleetPolicy+`] is not defined; domain \"corp\" has no policies`) {
		t.Fatalf("B started without its gate's policy anywhere: exited %v, status %d\n%s", ok, code, tail(p.log.String(), 3000))
	}
	// What B's gate needs before it starts: the policy it names (stored
	// through A's API), and the users who sign in through it.
	f.api(a, "PUT", "/v1/domain/corp/policy/"+fleetPolicy, allowAll, 201)
	carol := f.createUser(a, "carol", "carol-password-42")
	dave := f.createUser(a, "dave", "dave-password-42")
	b := f.start(1)

	bearer := f.serviceToken(b)
	carolB := f.gateSignIn(b, "carol", "carol-password-42")
	carolTok := f.refreshToken(carolB, "carol", "carol-password-42")
	daveB := f.gateSignIn(b, "dave", "dave-password-42")
	daveTok := f.refreshToken(daveB, "dave", "dave-password-42")
	for name, c := range map[string]func() int{
		"bearer": func() int { return gateCall(t, b, nil, bearer) },
		"carol":  func() int { return gateCall(t, b, carolB, "") },
		"dave":   func() int { return gateCall(t, b, daveB, "") },
	} {
		if s := c(); s != http.StatusOK {
			t.Fatalf("%s at B's gate before any change: %d", name, s)
		}
	}

	d := delays{}
	// The policy, twice each way.
	for range 2 {
		for _, step := range []struct {
			body   map[string]any
			status int
			what   string
		}{{denyAll, http.StatusForbidden, "policy denies"}, {allowAll, http.StatusOK, "policy admits"}} {
			offPhase()
			f.api(a, "PUT", "/v1/domain/corp/policy/"+fleetPolicy, step.body, 200)
			at := time.Now()
			d.add(step.what+" (bearer)", until(t, step.what+" at B's gate (bearer)", at, func() bool { return gateCall(t, b, nil, bearer) == step.status }))
			d.add(step.what+" (session)", until(t, step.what+" at B's gate (session)", at, func() bool { return gateCall(t, b, carolB, "") == step.status }))
		}
	}

	// Deleting carol.
	offPhase()
	f.api(a, "DELETE", "/v1/domain/corp/user/"+carol, nil, 200)
	at := time.Now()
	d.add("deleted user's refresh token", until(t, "the deleted user's refresh token refused at B", at, func() bool {
		s, e := f.refreshAt(b, carolTok)
		return s == http.StatusBadRequest && e == "invalid_grant"
	}))
	d.add("deleted user's session", until(t, "the deleted user's session refused at B's gate", at, func() bool {
		return gateCall(t, b, carolB, "") == http.StatusUnauthorized
	}))

	// Disabling dave.
	offPhase()
	f.api(a, "PATCH", "/v1/domain/corp/user/"+dave, map[string]any{"active": false}, 200)
	at = time.Now()
	d.add("disabled user's refresh token", until(t, "the disabled user's refresh token refused at B", at, func() bool {
		s, e := f.refreshAt(b, daveTok)
		return s == http.StatusBadRequest && e == "invalid_grant"
	}))
	d.add("disabled user's session", until(t, "the disabled user's session refused at B's gate", at, func() bool {
		return gateCall(t, b, daveB, "") == http.StatusUnauthorized
	}))
	// Nobody else lost anything.
	if s := gateCall(t, b, nil, bearer); s != http.StatusOK {
		t.Fatalf("the service's token after the users were removed: %d", s)
	}
	d.log(t, st.name)
}
