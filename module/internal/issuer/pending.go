package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// pendingRequest is a validated authorization request waiting for the user
// to sign in. It travels through the login page sealed (AES-GCM), so the
// issuer keeps no server-side state per unfinished login and cannot be
// filled up by abandoned ones.
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
	// Expires is when the login page stops accepting this request (unix s).
	Expires int64 `json:"e"`
}

var errBadSeal = errors.New("sealed request is invalid or expired")

// sealer encrypts and authenticates pending requests (and logout hints),
// and derives the CSRF tokens of the issuer's forms and the sid of sessions.
type sealer struct {
	aead    cipher.AEAD
	csrfKey []byte
	sidKey  []byte // derives the sid relying parties see (Issuer.sid)
}

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("issuer: request key is shorter than 32 bytes")
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("gatehouse issuer pending request v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, csrfKey: derive("gatehouse issuer login csrf v1"), sidKey: derive("gatehouse issuer sid v1")}, nil
}

// Additional data binds a sealed value to its purpose: one kind is never
// accepted as another.
var (
	sealAD       = []byte("pending-authorization-request")
	logoutHintAD = []byte("logout-hint")
)

func (s *sealer) seal(p *pendingRequest) (string, error) { return s.sealJSON(p, sealAD) }

// sealJSON encrypts and authenticates v's JSON for the purpose ad.
func (s *sealer) sealJSON(v any, ad []byte) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, plain, ad)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// maxSealed bounds the sealed request accepted from the client.
const maxSealed = 8192

func (s *sealer) open(v string, now time.Time) (*pendingRequest, error) {
	var p pendingRequest
	if err := s.openJSON(v, sealAD, &p); err != nil {
		return nil, err
	}
	if now.Unix() > p.Expires {
		return nil, errBadSeal
	}
	return &p, nil
}

// openJSON authenticates and decrypts a value sealed for the purpose ad
// into dst.
func (s *sealer) openJSON(v string, ad []byte, dst any) error {
	if v == "" || len(v) > maxSealed {
		return errBadSeal
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errBadSeal
	}
	ns := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], ad)
	if err != nil {
		return errBadSeal
	}
	if err := json.Unmarshal(plain, dst); err != nil {
		return errBadSeal
	}
	return nil
}

// csrfToken binds the login form to the browser (its CSRF cookie) and to
// the pending request.
func (s *sealer) csrfToken(cookie, requestID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(requestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sealer) checkCSRF(cookie, requestID, token string) bool {
	if cookie == "" || token == "" {
		return false
	}
	want := s.csrfToken(cookie, requestID)
	return hmac.Equal([]byte(want), []byte(token))
}
