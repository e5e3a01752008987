package issuer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// backchannelReceiver is a relying party's back-channel logout endpoint:
// it records every logout_token POSTed to it. hold, when set, makes it wait
// until release is closed (a slow or hanging RP); status is its answer.
type backchannelReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	tokens  []string
	got     chan string
	status  int
	hold    bool
	release chan struct{}
}

func newBackchannelReceiver(t *testing.T, status int, hold bool) *backchannelReceiver {
	rcv := &backchannelReceiver{got: make(chan string, 16), status: status, hold: hold, release: make(chan struct{})}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		tok := r.PostFormValue("logout_token")
		if rcv.hold {
			select {
			case <-rcv.release:
			case <-r.Context().Done():
				return
			}
		}
		rcv.mu.Lock()
		rcv.tokens = append(rcv.tokens, tok)
		rcv.mu.Unlock()
		rcv.got <- tok
		w.WriteHeader(rcv.status)
	}))
	t.Cleanup(func() {
		if rcv.hold {
			select {
			case <-rcv.release:
			default:
				close(rcv.release)
			}
		}
		rcv.srv.Close()
	})
	return rcv
}

// wait returns the next logout token, failing after 5 s.
func (rcv *backchannelReceiver) wait(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-rcv.got:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no logout token arrived within 5s")
		return ""
	}
}

// rpClient is a relying party registered for back-channel logout.
func rpClient(id, uri string, sessionRequired bool) *identity.Client {
	return &identity.Client{ID: id, Type: identity.Confidential, SecretHash: identity.HashSecret(webSecret),
		GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{webRedirect},
		AllowLocalLogin: true, RequirePKCE: true,
		BackchannelLogoutURI: uri, BackchannelLogoutSessionRequired: sessionRequired}
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// TestBackchannelLogout_SignedLogoutTokenToEachClientOfTheSession (issue 8,
// item 10): a registered external client learned nothing when its user
// signed out at the issuer. Every client with a back-channel logout URI that
// was granted tokens in the ended session now gets one OpenID Connect
// Back-Channel Logout token, signed with the issuer's published keys: typ
// logout+jwt, iss, aud, iat, exp, jti, the back-channel event, sub, and sid
// (the one its ID tokens carry) when it asked for the session; never nonce.
// Clients of other sessions hear nothing.
func TestBackchannelLogout_SignedLogoutTokenToEachClientOfTheSession(t *testing.T) {
	withSID := newBackchannelReceiver(t, http.StatusOK, false)
	subOnly := newBackchannelReceiver(t, http.StatusOK, false)
	f := newFixture(t, withConfig(func(_ *Config, d *identity.Domain) {
		d.Clients = append(d.Clients, rpClient("rp-sid", withSID.srv.URL+"/bc?tenant=1", true), rpClient("rp-sub", subOnly.srv.URL, false))
	}))
	c := f.browser()
	rp := f.token(codeForm(f.code(c, authParams("rp-sid", webRedirect)), webRedirect), "rp-sid", webSecret)
	f.token(codeForm(f.code(c, authParams("rp-sid", webRedirect)), webRedirect), "rp-sid", webSecret) // a second grant, same client
	f.token(codeForm(f.code(c, authParams("rp-sub", webRedirect)), webRedirect), "rp-sub", webSecret)
	web := f.token(codeForm(f.code(c, authParams("web", webRedirect)), webRedirect), "web", webSecret)
	// Another session signs in to rp-sid too.
	f.code(f.browser(), authParams("rp-sid", webRedirect))

	_, rpID := claims(t, rp.resp.IDToken)
	sid, _ := rpID["sid"].(string)
	if sid == "" {
		t.Fatalf("the ID token of a client that requires the session has no sid: %v", rpID)
	}
	if _, webID := claims(t, web.resp.IDToken); webID["sid"] != nil {
		t.Fatalf("sid in the ID token of a client without back-channel logout: %v", webID)
	}

	start := time.Now()
	resp := f.get(c, f.url+"/logout?"+url.Values{"id_token_hint": {web.resp.IDToken}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, b)
	}
	check := func(raw, aud, wantSID string) {
		t.Helper()
		h, _ := claims(t, raw)
		if h["typ"] != "logout+jwt" {
			t.Fatalf("typ %v, want logout+jwt", h["typ"])
		}
		m := f.verifyJWT(raw) // signature against the published JWKS
		iat, _ := m["iat"].(float64)
		exp, _ := m["exp"].(float64)
		if m["iss"] != f.url || m["aud"] != aud || m["sub"] != "u-alice" || m["jti"] == "" || m["jti"] == nil ||
			iat < float64(start.Unix()-1) || exp <= iat || exp > iat+300 {
			t.Fatalf("logout token claims: %v", m)
		}
		ev, _ := m["events"].(map[string]any)
		if e, ok := ev[backchannelEvent].(map[string]any); !ok || len(e) != 0 || len(ev) != 1 {
			t.Fatalf("events %v, want {%q: {}}", m["events"], backchannelEvent)
		}
		if _, has := m["nonce"]; has {
			t.Fatal("a logout token carries nonce")
		}
		if got, _ := m["sid"].(string); got != wantSID {
			t.Fatalf("sid %q, want %q", got, wantSID)
		}
	}
	a, b := withSID.wait(t), subOnly.wait(t)
	check(a, "rp-sid", sid)
	check(b, "rp-sub", "")
	if claims := f.verifyJWT(a); claims["jti"] == f.verifyJWT(b)["jti"] {
		t.Fatal("two logout tokens share a jti")
	}
	// One token per client, none for the other session.
	select {
	case extra := <-withSID.got:
		t.Fatalf("a second logout token for rp-sid: %v", f.verifyJWT(extra))
	case <-time.After(200 * time.Millisecond):
	}
	if !f.auditHas("backchannel_logout", outcomeOK) {
		t.Fatal("delivered back-channel logout not audited")
	}
}

// TestBackchannelLogout_NeverBlocksTheLogoutAndFailuresAreAudited: the
// user's sign-out page does not wait for relying parties; one that fails
// (an error status, or no answer within the timeout) is audited.
func TestBackchannelLogout_NeverBlocksTheLogoutAndFailuresAreAudited(t *testing.T) {
	hanging := newBackchannelReceiver(t, http.StatusOK, true)
	failing := newBackchannelReceiver(t, http.StatusInternalServerError, false)
	f := newFixture(t, withConfig(func(c *Config, d *identity.Domain) {
		d.Clients = append(d.Clients, rpClient("rp-hangs", hanging.srv.URL, false), rpClient("rp-fails", failing.srv.URL, false))
		c.BackchannelClient = &http.Client{Timeout: 300 * time.Millisecond}
	}))
	c := f.browser()
	f.code(c, authParams("rp-hangs", webRedirect))
	f.code(c, authParams("rp-fails", webRedirect))
	tr := f.token(codeForm(f.code(c, authParams("web", webRedirect)), webRedirect), "web", webSecret)
	resp := f.get(c, f.url+"/logout?"+url.Values{"id_token_hint": {tr.resp.IDToken}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "signed out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, b)
	}
	// The page was served while rp-hangs still holds its request.
	select {
	case <-hanging.got:
		t.Fatal("the hanging relying party answered before the logout page was served")
	default:
	}
	failing.wait(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var reasons []string
		for _, e := range f.audit.All() {
			m := e.ContextMap()
			if m["event"] == "backchannel_logout" && m["outcome"] == outcomeFailed {
				reasons = append(reasons, m["client_id"].(string)+": "+m["reason"].(string))
			}
		}
		joined := strings.Join(reasons, "; ")
		if strings.Contains(joined, "rp-fails: ") && strings.Contains(joined, "500") && strings.Contains(joined, "rp-hangs: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed deliveries not audited: %q", joined)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogout_HintFromAnEndedSessionIsNotEnough: an ID token that carries
// the sid of an earlier session of the same user does not end the current
// one without asking.
func TestLogout_HintFromAnEndedSessionIsNotEnough(t *testing.T) {
	rcv := newBackchannelReceiver(t, http.StatusOK, false)
	f := newFixture(t, withConfig(func(_ *Config, d *identity.Domain) {
		d.Clients = append(d.Clients, rpClient("rp-sid", rcv.srv.URL, true))
	}))
	c := f.browser()
	old := f.token(codeForm(f.code(c, authParams("rp-sid", webRedirect)), webRedirect), "rp-sid", webSecret)
	hint := f.url + "/logout?" + url.Values{"id_token_hint": {old.resp.IDToken}}.Encode()
	if resp := f.get(c, hint); resp.StatusCode != 200 || !strings.Contains(body(t, resp), "signed out") {
		t.Fatalf("logout of the first session: %d", resp.StatusCode)
	}
	f.code(c, authParams("rp-sid", webRedirect)) // a new session
	confirmationForm(t, f.get(c, hint))
	if !f.signedIn(c) {
		t.Fatal("an ID token of an ended session ended the new one")
	}
}
