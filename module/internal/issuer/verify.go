package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/bearer"
	"github.com/gatehouse-auth/gatehouse/module/internal/keys"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

// maxTokenBytes bounds tokens accepted for parsing.
const maxTokenBytes = 8192

var errBadToken = errors.New("token is invalid")

// errKeysUnavailable: the published keys could not be read, so the token
// could be neither accepted nor refused. Callers answer 503, never
// "invalid token".
var errKeysUnavailable = errors.New("the signing keys could not be read")

// ownVerifier checks the issuer's own tokens with the same validator the
// gate uses (bearer.Validator: strict JWS and claims parsing, the
// algorithm allow-list, the verified-token cache) over the issuer's
// in-process key set. It accepts any audience (these endpoints serve every
// audience of the issuer), and an access token is never an ID token nor the
// reverse (typ).
type ownVerifier struct {
	access        *bearer.Validator // unexpired access tokens: userinfo, introspection
	accessExpired *bearer.Validator // access tokens, expired or not: revocation
	idExpired     *bearer.Validator // ID tokens, expired or not: logout's id_token_hint
}

func newOwnVerifier(issuer string, ks *keys.Manager, now func() time.Time) (*ownVerifier, error) {
	mk := func(idTokens, expired bool) (*bearer.Validator, error) {
		return bearer.NewValidator(bearer.Config{
			Issuer:        issuer,
			AnyAudience:   true,
			Algorithms:    keys.Algorithms,
			IDTokens:      idTokens,
			AllowExpired:  expired,
			Now:           now,
			MaxTokenBytes: maxTokenBytes,
		}, ks)
	}
	var v ownVerifier
	var err error
	if v.access, err = mk(false, false); err != nil {
		return nil, err
	}
	if v.accessExpired, err = mk(false, true); err != nil {
		return nil, err
	}
	if v.idExpired, err = mk(true, true); err != nil {
		return nil, err
	}
	return &v, nil
}

// verifyOwn verifies a JWT this issuer signed: an access token
// (typAccessToken) or an ID token (typIDToken, expired or not), with a
// subject. allowExpired accepts an access token whose exp has passed.
func (i *Issuer) verifyOwn(ctx context.Context, raw, typ string, allowExpired bool) (*bearer.Token, error) {
	v := i.own.access
	switch {
	case typ == typIDToken:
		v = i.own.idExpired
	case allowExpired:
		v = i.own.accessExpired
	}
	tok, err := v.Validate(ctx, raw)
	var be *bearer.Error
	switch {
	case errors.Is(err, bearer.ErrKeysUnavailable):
		i.storeError("keys", err)
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	case errors.As(err, &be) && be.Reason == "exp passed":
		return nil, errors.New("token is expired")
	case err != nil:
		return nil, errBadToken
	case tok.Subject == "":
		return nil, errBadToken
	}
	return tok, nil
}

// sessionIDOf is the sid claim of a verified ID token ("" without one).
func sessionIDOf(tok *bearer.Token) string {
	sid, _ := tok.Claims["sid"].(string)
	return sid
}

// accessTokenRevoked reports whether the jti or its family is revoked.
func (i *Issuer) accessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" {
		return true, nil
	}
	if f := revocation.ID(jti).Family(); f != "" {
		return i.st.Revoked(ctx, string(f), jti)
	}
	return i.st.Revoked(ctx, jti)
}
