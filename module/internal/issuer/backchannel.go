package issuer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// OpenID Connect Back-Channel Logout 1.0: when a user signs out at the
// issuer, every client that registered a back-channel logout URI and was
// granted tokens in the ended session is sent a signed Logout Token, in the
// background.
const (
	// typLogoutToken is the Logout Token's typ header: never accepted as an
	// ID token or access token (verifyOwn checks typ).
	typLogoutToken     = "logout+jwt"
	backchannelEventID = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenLifetime: RPs reject Logout Tokens whose exp has passed.
	logoutTokenLifetime = 2 * time.Minute
	// backchannelTimeout bounds one delivery (the default client's timeout).
	backchannelTimeout = 5 * time.Second
	// maxBackchannelInFlight bounds the deliveries running at once; beyond
	// it a delivery is dropped and audited rather than queued without end.
	maxBackchannelInFlight = 64
)

// logoutTokenClaims are a Logout Token's claims (Back-Channel Logout 2.4):
// sub and/or sid, an events claim with the back-channel logout event, and
// never nonce.
type logoutTokenClaims struct {
	Iss    string              `json:"iss"`
	Sub    string              `json:"sub,omitempty"`
	Aud    string              `json:"aud"`
	Iat    int64               `json:"iat"`
	Exp    int64               `json:"exp"`
	Jti    string              `json:"jti"`
	Sid    string              `json:"sid,omitempty"`
	Events map[string]struct{} `json:"events"`
}

func defaultBackchannelClient() *http.Client {
	return &http.Client{
		Timeout:       backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sid is the session ID the issuer gives relying parties (the sid claim of
// ID tokens and Logout Tokens): derived from the store's session ID with a
// key of the issuer's, so it names the session without revealing anything
// that could find or open it.
func (i *Issuer) sid(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	m := hmac.New(sha256.New, i.sealer.sidKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// backchannelLogout sends, in the background, one Logout Token to every
// client with a back-channel logout URI among the grants of the ended
// session. It never waits for them; each outcome is audited.
func (i *Issuer) backchannelLogout(snap *directory.Snapshot, sess store.Session, grants []store.SessionGrant) {
	seen := map[string]bool{}
	for _, g := range grants {
		c := snap.Client(g.ClientID)
		if c == nil || c.BackchannelLogoutURI == "" || seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		tok, err := i.logoutToken(c, sess)
		if err != nil {
			i.auditEntry(evBackchannel, outcomeFailed, "could not sign the logout token: "+err.Error(), c.ID, sess.Subject)
			continue
		}
		select {
		case i.backchannelSlots <- struct{}{}:
		default:
			i.auditEntry(evBackchannel, outcomeFailed, "dropped: too many back-channel logouts in flight", c.ID, sess.Subject)
			continue
		}
		go func() {
			defer func() { <-i.backchannelSlots }()
			i.deliverLogoutToken(c, sess.Subject, tok)
		}()
	}
}

// logoutToken signs the Logout Token for client c about sess.
func (i *Issuer) logoutToken(c *identity.Client, sess store.Session) (string, error) {
	now := i.now()
	claims := logoutTokenClaims{
		Iss:    i.issuer,
		Sub:    sess.Subject,
		Aud:    c.ID,
		Iat:    now.Unix(),
		Exp:    now.Add(logoutTokenLifetime).Unix(),
		Jti:    randomString(16),
		Events: map[string]struct{}{backchannelEventID: {}},
	}
	if c.BackchannelLogoutSessionRequired {
		claims.Sid = i.sid(sess.ID)
	}
	return i.keys.Sign(claims, typLogoutToken)
}

// deliverLogoutToken POSTs the token as logout_token; a 2xx answer is
// success (Back-Channel Logout 2.8), anything else is audited as a failure.
func (i *Issuer) deliverLogoutToken(c *identity.Client, sub, tok string) {
	ctx, cancel := context.WithTimeout(context.Background(), backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		i.auditEntry(evBackchannel, outcomeFailed, "back-channel logout URI: "+err.Error(), c.ID, sub)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := i.backchannel.Do(req)
	if err != nil {
		i.auditEntry(evBackchannel, outcomeFailed, "delivery failed: "+err.Error(), c.ID, sub)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		i.auditEntry(evBackchannel, outcomeFailed, fmt.Sprintf("the client answered HTTP %d", resp.StatusCode), c.ID, sub)
		return
	}
	i.auditEntry(evBackchannel, outcomeOK, "logout token delivered", c.ID, sub)
}
