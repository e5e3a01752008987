package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// errOutage is what the store answers while it is down.
var errOutage = errors.New("connection refused (test outage)")

// outageStore is the real store with a switch that makes every call the
// issuer makes at request time fail, as a database that went away does.
type outageStore struct {
	Store
	down atomic.Bool
}

func (o *outageStore) fail() error {
	if o.down.Load() {
		return errOutage
	}
	return nil
}

func (o *outageStore) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.CreateAuthCode(ctx, c)
}

func (o *outageStore) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	if err := o.fail(); err != nil {
		return store.AuthCode{}, err
	}
	return o.Store.ConsumeAuthCode(ctx, id, now)
}

func (o *outageStore) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.CreateRefreshToken(ctx, t)
}

func (o *outageStore) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	if err := o.fail(); err != nil {
		return store.RefreshToken{}, err
	}
	return o.Store.RotateRefreshToken(ctx, oldID, now, next)
}

func (o *outageStore) RefreshToken(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	if err := o.fail(); err != nil {
		return store.RefreshToken{}, err
	}
	return o.Store.RefreshToken(ctx, id, now)
}

func (o *outageStore) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.Revoke(ctx, id, expiresAt)
}

func (o *outageStore) Revoked(ctx context.Context, ids ...string) (bool, error) {
	if err := o.fail(); err != nil {
		return false, err
	}
	return o.Store.Revoked(ctx, ids...)
}

func (o *outageStore) CreateSession(ctx context.Context, s store.Session) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.CreateSession(ctx, s)
}

func (o *outageStore) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	if err := o.fail(); err != nil {
		return store.Session{}, err
	}
	return o.Store.Session(ctx, id, now)
}

func (o *outageStore) DeleteSession(ctx context.Context, id string) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.DeleteSession(ctx, id)
}

func (o *outageStore) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Store.AddSessionGrant(ctx, g)
}

func (o *outageStore) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	if err := o.fail(); err != nil {
		return nil, err
	}
	return o.Store.SessionGrants(ctx, sessionID, now)
}

// newOutageFixture is a fixture whose issuer reaches the store through an
// outageStore.
func newOutageFixture(t *testing.T) (*fixture, *outageStore) {
	var o *outageStore
	f := newFixture(t, withConfig(func(c *Config, _ *identity.Domain) {
		o = &outageStore{Store: c.Store}
		c.Store = o
	}))
	return f, o
}

// wantUnavailable checks a 503 answer that tells the client to retry.
func wantUnavailable(t *testing.T, what string, resp *http.Response) string {
	t.Helper()
	b := body(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s during a store outage: %d (Retry-After %q) %s; want 503 with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	return b
}

// TestRevocation_StoreOutageIs503NotSuccess (issue 8, item 12): during a
// store outage the revocation endpoint could not look the refresh token up,
// took it for an unknown token and answered 200 — the client believed the
// token revoked, and it kept working once the database was back. A store
// error is never "unknown token": the answer is 503 with Retry-After and
// nothing is claimed; a retry after the outage revokes.
func TestRevocation_StoreOutageIs503NotSuccess(t *testing.T) {
	f, o := newOutageFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	o.down.Store(true)
	for _, tok := range []string{tr.resp.RefreshToken, tr.resp.AccessToken} {
		b := wantUnavailable(t, "revoke", f.post("/revoke", url.Values{"token": {tok}}, "web", webSecret))
		if !strings.Contains(b, ErrTemporarilyUnavailable) {
			t.Fatalf("body %s, want error %s", b, ErrTemporarilyUnavailable)
		}
	}
	rp, err := f.iss.RelyingParty("web")
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.Revoke(context.Background(), tr.resp.RefreshToken); err == nil {
		t.Fatal("in-process Revoke during a store outage reported success")
	}
	if f.auditHas(evRevoke, outcomeOK) {
		t.Fatal("a revocation that recorded nothing was audited as a success")
	}
	o.down.Store(false)
	// Nothing was recorded: the refresh token still works.
	next := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret)
	if next.status != 200 {
		t.Fatalf("after the outage the refresh token (never revoked) got %d %v", next.status, next.raw)
	}
	// The client retries, as it was told to, and now it holds.
	resp := f.post("/revoke", url.Values{"token": {next.resp.RefreshToken}}, "web", webSecret)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke after the outage: %d", resp.StatusCode)
	}
	if x := f.token(refreshForm(next.resp.RefreshToken), "web", webSecret); x.err.Code != ErrInvalidGrant {
		t.Fatalf("revoked refresh token works: %v", x.raw)
	}
}

// TestIntrospection_StoreOutageIs503NotInactive: introspection of a refresh
// token during an outage answered {"active": false} — a claim the issuer
// could not make. It answers 503 like the access-token check does.
func TestIntrospection_StoreOutageIs503NotInactive(t *testing.T) {
	f, o := newOutageFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	o.down.Store(true)
	for name, tok := range map[string]string{"refresh token": tr.resp.RefreshToken, "access token": tr.resp.AccessToken} {
		wantUnavailable(t, "introspection of a "+name, f.post("/introspect", url.Values{"token": {tok}}, "web", webSecret))
	}
}

// TestUserinfo_StoreOutageIs503WithRetryAfter: userinfo cannot check the
// revocation list; it says so and when to retry.
func TestUserinfo_StoreOutageIs503WithRetryAfter(t *testing.T) {
	f, o := newOutageFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	o.down.Store(true)
	req, _ := http.NewRequest(http.MethodGet, f.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.resp.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "userinfo", resp)
}

// TestToken_StoreOutageIs503: every grant that needs the store answers 503
// temporarily_unavailable with Retry-After; the refresh token and the code
// are usable once the store is back (a rotation that failed rotated nothing).
func TestToken_StoreOutageIs503(t *testing.T) {
	f, o := newOutageFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	code := f.code(f.browser(), authParams("web", webRedirect))
	o.down.Store(true)
	for name, form := range map[string]url.Values{"refresh": refreshForm(tr.resp.RefreshToken), "code": codeForm(code, webRedirect)} {
		r := f.token(form, "web", webSecret)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.err.Code != ErrTemporarilyUnavailable {
			t.Fatalf("%s grant during an outage: %d %v (Retry-After %q)", name, r.status, r.raw, r.header.Get("Retry-After"))
		}
	}
	o.down.Store(false)
	if r := f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("refresh after the outage: %d %v", r.status, r.raw)
	}
	if r := f.token(codeForm(code, webRedirect), "web", webSecret); r.status != 200 {
		t.Fatalf("code after the outage: %d %v", r.status, r.raw)
	}
}

// TestToken_ReplayRevocationThatFailsIsNotReportedAsDone: a replayed code
// revokes what the code produced. When that revocation cannot be recorded
// the issuer must not say "revoked"; it answers 503, and the next replay
// attempt revokes.
func TestToken_ReplayRevocationThatFailsIsNotReportedAsDone(t *testing.T) {
	f, o := newOutageFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	tr := f.token(codeForm(code, webRedirect), "web", webSecret)
	if tr.status != 200 {
		t.Fatalf("%v", tr.raw)
	}
	// Only the revocation fails: the store answers reads but not Revoke.
	f.iss.st = timedStore{Store: revokeFails{o}}
	r := f.token(codeForm(code, webRedirect), "web", webSecret)
	if r.status != http.StatusServiceUnavailable || r.err.Code != ErrTemporarilyUnavailable {
		t.Fatalf("replay whose revocation failed: %d %v", r.status, r.raw)
	}
	if m := f.introspect(tr.resp.AccessToken, "web", webSecret); m["active"] != true {
		t.Fatalf("nothing was revoked, yet: %v", m)
	}
	f.iss.st = timedStore{Store: o}
	r = f.token(codeForm(code, webRedirect), "web", webSecret)
	if r.err.Code != ErrInvalidGrant {
		t.Fatalf("second replay: %d %v", r.status, r.raw)
	}
	if m := f.introspect(tr.resp.AccessToken, "web", webSecret); m["active"] != false {
		t.Fatalf("tokens of a replayed code still active: %v", m)
	}
}

// revokeFails fails only Revoke.
type revokeFails struct{ Store }

func (revokeFails) Revoke(context.Context, string, time.Time) error { return errOutage }

// TestAuthorize_StoreOutageIsTemporarilyUnavailable: the authorization
// endpoint cannot tell whether the browser has a session; it does not
// pretend there is none (prompt=none would answer login_required) but sends
// temporarily_unavailable back to the client.
func TestAuthorize_StoreOutageIsTemporarilyUnavailable(t *testing.T) {
	f, o := newOutageFixture(t)
	c := f.browser()
	f.code(c, authParams("web", webRedirect))
	o.down.Store(true)
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	assertRedirectError(t, f.get(c, f.authorizeURL(p)), webRedirect, ErrTemporarilyUnavailable, "st-123")
}

// TestLogout_StoreOutageIs503AndKeepsTheSession: a logout that could not
// end the SSO session in the store said "You are signed out" and dropped the
// cookie, while the session stayed valid for any copy of it. It answers 503,
// keeps the cookie so a retry can end the session, and the retry does.
func TestLogout_StoreOutageIs503AndKeepsTheSession(t *testing.T) {
	f, o := newOutageFixture(t)
	c := f.browser()
	code := f.code(c, authParams("web", webRedirect))
	tr := f.token(codeForm(code, webRedirect), "web", webSecret)
	o.down.Store(true)
	q := url.Values{"id_token_hint": {tr.resp.IDToken}, "post_logout_redirect_uri": {webPostLogout}}
	resp := f.get(c, f.url+"/logout?"+q.Encode())
	for _, sc := range resp.Cookies() {
		if sc.Name == f.iss.ssoCookie {
			t.Fatalf("a failed logout cleared the SSO cookie: %v", sc)
		}
	}
	wantUnavailable(t, "logout", resp)
	if f.auditHas(evLogout, outcomeOK) {
		t.Fatal("a logout that ended nothing was audited as a success")
	}
	o.down.Store(false)
	p := authParams("web", webRedirect)
	p.Set("prompt", "none")
	if loc := location(t, f.get(c, f.authorizeURL(p))); loc.Query().Get("code") == "" {
		t.Fatalf("the session did not survive the failed logout: %s", loc)
	}
	if loc := location(t, f.get(c, f.url+"/logout?"+q.Encode())); loc.String() != webPostLogout {
		t.Fatalf("logout after the outage: %s", loc)
	}
	assertRedirectError(t, f.get(c, f.authorizeURL(p)), webRedirect, ErrLoginRequired, "st-123")
}
