package issuer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Token types (JWS typ headers).
const (
	typAccessToken = "at+jwt" // RFC 9068
	typIDToken     = "JWT"
)

// TokenResponse is a successful token endpoint response (RFC 6749 5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// accessTokenClaims are the RFC 9068 claims of an access token.
type accessTokenClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      any    `json:"aud"` // string or []string
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// Gty is "client_credentials" on a client's own token (its sub is the
	// client id), so a gate can tell a machine from a user.
	Gty string `json:"gty,omitempty"`
}

// idTokenClaims are the claims of an ID token; profile and email claims
// appear when their scope was granted.
type idTokenClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	AtHash   string `json:"at_hash,omitempty"`
	Azp      string `json:"azp,omitempty"`
	// Sid names the SSO session, for clients that receive it in
	// back-channel Logout Tokens (backchannel_logout_session_required).
	Sid string `json:"sid,omitempty"`
	// AMR are the factors of the sign-in (RFC 8176), when known.
	AMR []string `json:"amr,omitempty"`
	userClaims
}

// userClaims are the standard identity claims released by scope.
type userClaims struct {
	Name              string `json:"name,omitempty"`
	GivenName         string `json:"given_name,omitempty"`
	FamilyName        string `json:"family_name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

func profileClaims(u *identity.User, scopes []string) userClaims {
	var c userClaims
	if contains(scopes, "profile") {
		c.Name, c.GivenName, c.FamilyName, c.PreferredUsername = u.Name, u.GivenName, u.FamilyName, u.PreferredUsername
	}
	if contains(scopes, "email") && u.Email != "" {
		v := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &v
	}
	return c
}

// customClaims returns u's custom claims as tokens carry them — for the ID
// token and userinfo (identity.ClaimIdentity) and for the access token
// (identity.ClaimAccess) — after the domain's claims map, when it has one
// (identity.MapClaims). A claim named like a claim the issuer sets itself
// (identity.ReservedClaims) never reaches a token: it is dropped, logged
// and audited (once per user and claim), so that no token can carry a
// member twice. An error means the map could not be applied to this user's
// claims; nothing may be issued then.
func (i *Issuer) customClaims(snap *directory.Snapshot, u *identity.User) (id, access map[string]any, err error) {
	mapped, err := identity.MapClaims(snap.Settings.ClaimsMap, u)
	if err != nil {
		i.log.Error("the claims map cannot be applied to a user's claims; no token is issued", zap.String("domain", i.name), zap.String("sub", u.Subject), zap.Error(err))
		return nil, nil, err
	}
	for _, c := range mapped {
		if identity.ReservedClaims[c.Name] {
			i.dropReserved(u.Subject, c.Name)
			continue
		}
		m := &id
		if c.In == identity.ClaimAccess {
			m = &access
		}
		if *m == nil {
			*m = make(map[string]any, len(mapped))
		}
		(*m)[c.Name] = c.Value
	}
	return id, access, nil
}

// maxReservedReports bounds the memory of dropReserved.
const maxReservedReports = 4096

// dropReserved reports, once per user and claim, a custom claim left out of
// the tokens because the issuer sets a claim of that name itself.
func (i *Issuer) dropReserved(sub, name string) {
	key := sub + "\x00" + name
	i.reservedMu.Lock()
	seen := i.reserved[key]
	if !seen {
		if len(i.reserved) >= maxReservedReports {
			clear(i.reserved)
		}
		i.reserved[key] = true
	}
	i.reservedMu.Unlock()
	if seen {
		return
	}
	i.log.Warn("a custom claim has a name the issuer sets itself; it is left out of the tokens (rename it, or change the claims map)",
		zap.String("domain", i.name), zap.String("sub", sub), zap.String("claim", name))
	i.auditEntry(evToken, outcomeDenied, "custom claim "+name+" dropped: the issuer sets that claim itself", "", sub)
}

// marshalClaims marshals the standard claims and appends extra claims. It
// never writes a member twice: extra never holds a standard name
// (customClaims drops them), and a name std also carries is skipped here
// all the same.
func marshalClaims(std any, extra map[string]any) ([]byte, error) {
	b, err := json.Marshal(std)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	for name := range extra {
		if identity.ReservedClaims[name] {
			extra = withoutReserved(extra)
			break
		}
	}
	if len(extra) == 0 {
		return b, nil
	}
	e, err := json.Marshal(extra)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[len(b)-1] != '}' || len(e) < 2 || e[0] != '{' {
		return nil, errors.New("issuer: claims are not JSON objects")
	}
	out := make([]byte, 0, len(b)+len(e))
	if len(b) == 2 { // {}
		return append(out, e...), nil
	}
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	out = append(out, e[1:]...)
	return out, nil
}

// withoutReserved is a copy of m without the reserved claim names.
func withoutReserved(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !identity.ReservedClaims[k] {
			out[k] = v
		}
	}
	return out
}

func audienceClaim(aud []string) any {
	if len(aud) == 1 {
		return aud[0]
	}
	return aud
}

// leftHash is at_hash: the left half of the hash of the token's ASCII,
// base64url, with the hash of the signing algorithm (OIDC Core 3.1.3.6).
func leftHash(alg, token string) string {
	var h hash.Hash
	switch alg {
	case "EdDSA":
		h = sha512.New() // Ed25519 uses SHA-512
	default:
		h = sha256.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// issue is what a grant asks the token minter for.
type issue struct {
	grant    string
	client   *identity.Client
	user     *identity.User // nil for client_credentials
	subject  string
	scopes   []string // granted (access token) scopes
	audience []string
	authTime time.Time
	nonce    string
	familyID string
	// sessionID is the SSO session the grant was made under ("" for
	// client_credentials); it becomes the ID token's sid where asked for.
	sessionID string
	// amr are the factors of the sign-in, for the ID token (nil: unknown).
	amr []string
	// idToken asks for an ID token (openid scope and a user).
	idToken bool
	// refresh, when set, is returned as the refresh token.
	refresh string
}

// minted is what mint made: the response, and the claims it signed (for
// an in-process relying party, which needs no token decoded).
type minted struct {
	resp *TokenResponse
	// access and id are the signed payloads (id is nil without an ID
	// token).
	access, id []byte
}

// mint signs the access token (and the ID token when asked) exactly once
// each and builds the response. The domain's claims map is applied to the
// user's claims here.
func (i *Issuer) mint(snap *directory.Snapshot, is issue) (minted, *OAuthError) {
	now := i.now()
	life := is.client.AccessLifetime()
	at := accessTokenClaims{
		Iss:      i.issuer,
		Sub:      is.subject,
		Aud:      audienceClaim(is.audience),
		Exp:      now.Add(life).Unix(),
		Iat:      now.Unix(),
		Jti:      string(revocation.JTI(is.familyID, randomString(12))),
		ClientID: is.client.ID,
		Scope:    strings.Join(is.scopes, " "),
	}
	if !is.authTime.IsZero() {
		at.AuthTime = is.authTime.Unix()
	}
	if is.grant == identity.GrantClientCredentials {
		at.Gty = identity.GrantClientCredentials
	}
	var idClaims, atClaims map[string]any
	if is.user != nil {
		var err error
		if idClaims, atClaims, err = i.customClaims(snap, is.user); err != nil {
			return minted{}, oauthErr(ErrServerError, "the user's claims could not be mapped")
		}
	}
	payload, err := marshalClaims(at, atClaims)
	if err != nil {
		return minted{}, oauthErr(ErrServerError, "could not encode the access token")
	}
	access, err := i.keys.Sign(payload, typAccessToken)
	if err != nil {
		i.storeError("sign", err)
		return minted{}, oauthErr(ErrServerError, "could not sign the access token")
	}
	m := minted{access: payload}
	resp := &TokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(life / time.Second),
		RefreshToken: is.refresh,
		Scope:        at.Scope,
	}
	if is.idToken && is.user != nil {
		id := idTokenClaims{
			Iss:        i.issuer,
			Sub:        is.subject,
			Aud:        is.client.ID,
			Exp:        now.Add(is.client.IDLifetime()).Unix(),
			Iat:        now.Unix(),
			Nonce:      is.nonce,
			AtHash:     leftHash(i.keys.Algorithm(), access),
			Azp:        is.client.ID,
			AMR:        is.amr,
			userClaims: profileClaims(is.user, is.scopes),
		}
		if !is.authTime.IsZero() {
			id.AuthTime = is.authTime.Unix()
		}
		if is.client.BackchannelLogoutSessionRequired {
			id.Sid = i.sid(is.sessionID)
		}
		payload, err := marshalClaims(id, idClaims)
		if err != nil {
			return minted{}, oauthErr(ErrServerError, "could not encode the ID token")
		}
		if resp.IDToken, err = i.keys.Sign(payload, typIDToken); err != nil {
			return minted{}, oauthErr(ErrServerError, "could not sign the ID token")
		}
		m.id = payload
	}
	i.metrics.tokenIssued(i.name, is.grant)
	i.auditEntry(evToken, outcomeOK, is.grant, is.client.ID, is.subject)
	m.resp = resp
	return m, nil
}

// policyClaims aggregates what the ID token and the access token of this
// sign-in would carry, for the client's policies: the standard claims, and
// the custom claims after the domain's claims map (reserved names dropped,
// as minting drops them). An error means the map could not be applied to
// the user's claims.
func (i *Issuer) policyClaims(snap *directory.Snapshot, u *identity.User, c *identity.Client, scopes, resources []string, sess store.Session) (map[string]any, error) {
	mapped, err := identity.MapClaims(snap.Settings.ClaimsMap, u)
	if err != nil {
		i.log.Error("the claims map cannot be applied to a user's claims; no token is issued", zap.String("domain", i.name), zap.String("sub", u.Subject), zap.Error(err))
		return nil, err
	}
	for _, cl := range mapped {
		if identity.ReservedClaims[cl.Name] {
			i.dropReserved(u.Subject, cl.Name)
		}
	}
	v := *u
	v.Claims = mapped
	return PolicyClaims(i.issuer, &v, c, scopes, resources, sess.AuthTime, sess.AMR), nil
}

// PolicyClaims are the claims a client's policies are evaluated against when
// user u signs in to client c at the issuer iss: what the ID token and the
// access token of the sign-in would carry together (iss, sub, aud, azp,
// client_id, scope, auth_time, amr, the profile claims the scopes release and
// the user's custom claims — u's Claims, which the caller has passed
// through the domain's claims map (identity.MapClaims); names the issuer
// sets itself are left out, as tokens leave them out). resources are the
// requested audiences (none: the client's). A nil client leaves out the
// client's claims (aud, azp, client_id). `caddy gatehouse policy eval
// --config` shows policies these very claims.
func PolicyClaims(iss string, u *identity.User, c *identity.Client, scopes, resources []string, authTime time.Time, amr []string) map[string]any {
	m := map[string]any{
		"iss":   iss,
		"sub":   u.Subject,
		"scope": strings.Join(scopes, " "),
	}
	if c != nil {
		m["aud"] = audienceClaim(audienceFor(c, resources))
		m["azp"] = c.ID
		m["client_id"] = c.ID
	}
	if !authTime.IsZero() {
		m["auth_time"] = authTime.Unix()
	}
	if len(amr) > 0 {
		m["amr"] = amr
	}
	// Standard claims through JSON, so names match the tokens exactly.
	if b, err := json.Marshal(profileClaims(u, scopes)); err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		var pc map[string]any
		if d.Decode(&pc) == nil {
			for k, v := range pc {
				m[k] = v
			}
		}
	}
	for _, cl := range u.Claims {
		if !identity.ReservedClaims[cl.Name] {
			m[cl.Name] = cl.Value
		}
	}
	return m
}

// audienceFor is the access token audience: the requested resources, or the
// client's audiences, or the client itself when it has none.
func audienceFor(c *identity.Client, resources []string) []string {
	switch {
	case len(resources) > 0:
		return resources
	case len(c.Audiences) > 0:
		return c.Audiences
	}
	return []string{c.ID}
}

// revoke records id (a jti or a family ID) as revoked until until, and
// tells the gate.
func (i *Issuer) revoke(ctx context.Context, id revocation.ID, until time.Time) error {
	if err := i.st.Revoke(ctx, string(id), until); err != nil {
		i.storeError("revoke", err)
		return err
	}
	if i.cfg.OnRevoke != nil {
		i.cfg.OnRevoke(id)
	}
	return nil
}
