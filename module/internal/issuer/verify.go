package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ownClaims are the claims the issuer reads back from its own tokens.
type ownClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Scope    string          `json:"scope"`
	AuthTime int64           `json:"auth_time"`
	Sid      string          `json:"sid"`
}

// audiences returns aud as a list.
func (c *ownClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// maxTokenBytes bounds tokens accepted for parsing.
const maxTokenBytes = 8192

var errBadToken = errors.New("token is invalid")

// errKeysUnavailable: the published keys could not be read, so the token
// could be neither accepted nor refused. Callers answer 503, never
// "invalid token".
var errKeysUnavailable = errors.New("the signing keys could not be read")

// verifyOwn verifies a JWT this issuer signed: an allowed algorithm that
// matches the published key named by kid, the expected typ header, a valid
// signature, our issuer and (unless allowExpired) an unexpired exp. An
// access token is never accepted as an ID token and vice versa (typ).
func (i *Issuer) verifyOwn(ctx context.Context, raw, typ string, allowExpired bool) (*ownClaims, error) {
	if raw == "" || len(raw) > maxTokenBytes || strings.Count(raw, ".") != 2 {
		return nil, errBadToken
	}
	jws, err := jose.ParseSignedCompact(raw, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errBadToken
	}
	h := jws.Signatures[0].Protected
	if h.JSONWebKey != nil || h.KeyID == "" {
		return nil, errBadToken
	}
	if t, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(t, typ) && !strings.EqualFold(t, "application/"+typ) {
		return nil, errBadToken
	}
	ks, err := i.keys.Keys(ctx, h.KeyID)
	if err != nil {
		i.storeError("keys", err)
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	if len(ks) != 1 || ks[0].Algorithm != h.Algorithm {
		return nil, errBadToken
	}
	payload, err := jws.Verify(ks[0].Key)
	if err != nil {
		return nil, errBadToken
	}
	var c ownClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errBadToken
	}
	if c.Iss != i.issuer || c.Sub == "" {
		return nil, errBadToken
	}
	if !allowExpired && !time.Unix(c.Exp, 0).After(i.now()) {
		return nil, errors.New("token is expired")
	}
	return &c, nil
}

// accessTokenRevoked reports whether the jti or its family is revoked.
func (i *Issuer) accessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" {
		return true, nil
	}
	if f := familyOf(jti); f != "" {
		return i.st.Revoked(ctx, f, jti)
	}
	return i.st.Revoked(ctx, jti)
}
