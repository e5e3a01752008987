package issuer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/authn"
	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// pendingRequest is a validated authorization request waiting for the user
// to sign in. It travels in the sign-in transaction (authn.Transaction's
// Request), which the login page carries sealed, so the issuer keeps no
// server-side state per unfinished login and cannot be filled up by
// abandoned ones.
type pendingRequest struct {
	// ID identifies the request; the login form's CSRF token is bound to it.
	ID       string `json:"i"`
	ClientID string `json:"c"`
	// RedirectURI is where the response goes; RedirectGiven records
	// whether the client sent it (then the token request must repeat it).
	RedirectURI   string   `json:"r"`
	RedirectGiven bool     `json:"rg,omitempty"`
	Scopes        []string `json:"s,omitempty"`
	Resources     []string `json:"a,omitempty"`
	State         string   `json:"st,omitempty"`
	Nonce         string   `json:"n,omitempty"`
	Challenge     string   `json:"cc,omitempty"`
	Method        string   `json:"cm,omitempty"`
	LoginHint     string   `json:"lh,omitempty"`
	// Expires is when the login page stops accepting this request (unix
	// s): the transaction's first expiry.
	Expires int64 `json:"e"`
}

var errBadSeal = errors.New("sealed value is invalid or expired")

// Purposes of the values the issuer seals: keys are derived per purpose,
// so one kind is never accepted as another.
const (
	purposeTransaction = "login-transaction"
	purposeLogoutHint  = "logout-hint"
	purposeCSRF        = "issuer-csrf"
	sealName           = "gatehouse-issuer"
)

// sealer seals the issuer's transient values — sign-in transactions,
// logout hints — with the seal package's sealer (the gate's cookie
// machinery), each under a purpose of its own, and derives the CSRF tokens
// of the issuer's forms and the sid of sessions. Its keys come from the
// issuer's request secret in the store, so every instance and every reload
// accepts what another sealed.
type sealer struct {
	keys   *seal.Keys
	tx     *seal.Sealer
	hint   *seal.Sealer
	sidKey []byte // derives the sid relying parties see (Issuer.sid)
}

func newSealer(secret []byte, now func() time.Time, loginTimeout time.Duration) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("issuer: request key is shorter than 32 bytes")
	}
	k, err := seal.NewKeys([][]byte{secret})
	if err != nil {
		return nil, err
	}
	s := &sealer{keys: k}
	if s.tx, err = seal.NewSealer(k, seal.Config{Name: sealName, Purpose: purposeTransaction, MaxAge: loginTimeout, Now: now}); err != nil {
		return nil, err
	}
	if s.hint, err = seal.NewSealer(k, seal.Config{Name: sealName, Purpose: purposeLogoutHint, MaxAge: logoutHintLifetime, Now: now}); err != nil {
		return nil, err
	}
	// Unchanged since sids were first derived: relying parties keep the
	// sids of sessions they were told about, and must recognise them in
	// later logout tokens.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("gatehouse issuer sid v1"))
	s.sidKey = m.Sum(nil)
	return s, nil
}

// sealTx seals a sign-in transaction until tx.Expires, which it first caps
// to the login timeout from now (in whole seconds, as sealed).
func (s *sealer) sealTx(tx *authn.Transaction, now time.Time, timeout time.Duration) (string, error) {
	if limit := now.Add(timeout); tx.Expires.IsZero() || tx.Expires.After(limit) {
		tx.Expires = limit
	}
	tx.Expires = tx.Expires.Truncate(time.Second)
	return s.tx.SealText(tx, tx.Expires)
}

// openTx opens a sealed sign-in transaction; errBadSeal when it is
// expired, tampered with or not one.
func (s *sealer) openTx(v string) (*authn.Transaction, error) {
	var tx authn.Transaction
	if err := s.tx.OpenText(v, &tx); err != nil || tx.ID == "" || len(tx.Request) == 0 {
		return nil, errBadSeal
	}
	return &tx, nil
}

func (s *sealer) sealHint(h logoutHint) (string, error) {
	return s.hint.SealText(h, time.Unix(h.Expires, 0))
}

func (s *sealer) openHint(v string, h *logoutHint) error {
	if err := s.hint.OpenText(v, h); err != nil {
		return errBadSeal
	}
	return nil
}

// csrfToken binds a form to the browser (its CSRF cookie) and to what the
// form acts on (a sign-in transaction's ID, a session).
func (s *sealer) csrfToken(cookie, bound string) string {
	mac, err := s.keys.MAC(purposeCSRF, csrfMessage(cookie, bound))
	if err != nil {
		return "" // never matches: the form fails closed
	}
	return base64.RawURLEncoding.EncodeToString(mac)
}

func (s *sealer) checkCSRF(cookie, bound, token string) bool {
	if cookie == "" || token == "" {
		return false
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return false
	}
	return s.keys.VerifyMAC(purposeCSRF, csrfMessage(cookie, bound), mac)
}

func csrfMessage(cookie, bound string) []byte {
	return []byte(cookie + "\x00" + bound)
}
