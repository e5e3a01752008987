package directory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/claims"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// How directory objects are kept in the store's JSON columns. A management
// API writes what these encoders produce; Stored reads it back with the
// decoders, which refuse unknown fields and validate what they build.

// domainSettings is the JSON of a stored domain's settings.
type domainSettings struct {
	// SessionLifetime, SigningAlgorithm, KeyRotation: as DomainSettings;
	// durations as Go durations ("12h"), "" for the default.
	SessionLifetime  string      `json:"sessionLifetime,omitempty"`
	SigningAlgorithm string      `json:"signingAlgorithm,omitempty"`
	KeyRotation      string      `json:"keyRotation,omitempty"`
	ClaimsMap        *claims.Map `json:"claimsMap,omitempty"`
}

// EncodeDomainSettings renders s's settings other than its name and issuer.
func EncodeDomainSettings(s identity.DomainSettings) (json.RawMessage, error) {
	d := domainSettings{SigningAlgorithm: s.SigningAlgorithm, ClaimsMap: s.ClaimsMap}
	if s.SessionLifetime != 0 {
		d.SessionLifetime = s.SessionLifetime.String()
	}
	if s.KeyRotation != 0 {
		d.KeyRotation = s.KeyRotation.String()
	}
	return json.Marshal(d)
}

// DecodeDomainSettings builds a domain's settings from its name, issuer and
// stored settings (nil: the defaults); the claims map comes back compiled.
func DecodeDomainSettings(name, issuer string, raw json.RawMessage) (identity.DomainSettings, error) {
	s := identity.DomainSettings{Name: name, Issuer: issuer}
	if err := identity.ValidateIssuerURL(issuer); err != nil {
		return s, err
	}
	if len(raw) == 0 {
		return s, nil
	}
	var d domainSettings
	if err := strictJSON(raw, &d); err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	var err error
	if s.SessionLifetime, err = duration("sessionLifetime", d.SessionLifetime); err != nil {
		return s, err
	}
	if s.KeyRotation, err = duration("keyRotation", d.KeyRotation); err != nil {
		return s, err
	}
	s.SigningAlgorithm = d.SigningAlgorithm
	if d.ClaimsMap != nil {
		if err := d.ClaimsMap.Compile(); err != nil {
			return s, fmt.Errorf("claimsMap: %w", err)
		}
		s.ClaimsMap = d.ClaimsMap
	}
	return s, nil
}

// clientData is the JSON of a stored client: every field of
// identity.Client but its id and secret hash (kept in columns of their
// own), named as the management API names them (camelCase, Entrypage's
// names where it has the field). Lifetimes are in seconds, 0 for the
// default.
type clientData struct {
	ClientType                       string   `json:"clientType"`
	GrantTypes                       []string `json:"grantTypes"`
	Scope                            []string `json:"scope,omitempty"`
	Audiences                        []string `json:"audiences,omitempty"`
	RedirectURIs                     []string `json:"redirectUris,omitempty"`
	PostSignOutRedirectURIs          []string `json:"postSignOutRedirectUris,omitempty"`
	AllowedOrigins                   []string `json:"allowedOrigins,omitempty"`
	AllowLocalLogin                  bool     `json:"allowLocalLogin"`
	Providers                        []string `json:"providers,omitempty"`
	Policies                         []string `json:"policies,omitempty"`
	AllowPlainPKCE                   bool     `json:"allowPlainPkce,omitempty"`
	RequirePKCE                      bool     `json:"requirePkce"`
	AccessTokenExpiry                int64    `json:"accessTokenExpiry,omitempty"`
	IDTokenExpiry                    int64    `json:"idTokenExpiry,omitempty"`
	RefreshTokenExpiry               int64    `json:"refreshTokenExpiry,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannelLogoutUri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannelLogoutSessionRequired,omitempty"`
}

// EncodeClient renders c's fields but its id and secret hash.
func EncodeClient(c *identity.Client) (json.RawMessage, error) {
	return json.Marshal(clientData{
		ClientType:                       c.Type,
		GrantTypes:                       c.GrantTypes,
		Scope:                            c.Scopes,
		Audiences:                        c.Audiences,
		RedirectURIs:                     c.RedirectURIs,
		PostSignOutRedirectURIs:          c.PostLogoutRedirectURIs,
		AllowedOrigins:                   c.AllowedOrigins,
		AllowLocalLogin:                  c.AllowLocalLogin,
		Providers:                        c.Providers,
		Policies:                         c.Policies,
		AllowPlainPKCE:                   c.AllowPlainPKCE,
		RequirePKCE:                      c.RequirePKCE,
		AccessTokenExpiry:                seconds(c.AccessTokenLifetime),
		IDTokenExpiry:                    seconds(c.IDTokenLifetime),
		RefreshTokenExpiry:               seconds(c.RefreshTokenLifetime),
		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
	})
}

// DecodeClient builds and validates a client from its id, stored data and
// secret hash.
func DecodeClient(id string, raw json.RawMessage, secretHash string) (*identity.Client, error) {
	var d clientData
	if err := strictJSON(raw, &d); err != nil {
		return nil, fmt.Errorf("client %q: %w", id, err)
	}
	c := &identity.Client{
		ID:                               id,
		Type:                             d.ClientType,
		SecretHash:                       secretHash,
		GrantTypes:                       d.GrantTypes,
		Scopes:                           d.Scope,
		Audiences:                        d.Audiences,
		RedirectURIs:                     d.RedirectURIs,
		PostLogoutRedirectURIs:           d.PostSignOutRedirectURIs,
		AllowedOrigins:                   d.AllowedOrigins,
		AllowLocalLogin:                  d.AllowLocalLogin,
		Providers:                        d.Providers,
		Policies:                         d.Policies,
		AllowPlainPKCE:                   d.AllowPlainPKCE,
		RequirePKCE:                      d.RequirePKCE,
		AccessTokenLifetime:              time.Duration(d.AccessTokenExpiry) * time.Second,
		IDTokenLifetime:                  time.Duration(d.IDTokenExpiry) * time.Second,
		RefreshTokenLifetime:             time.Duration(d.RefreshTokenExpiry) * time.Second,
		BackchannelLogoutURI:             d.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: d.BackchannelLogoutSessionRequired,
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// DecodePolicy builds a policy from its id and stored source (the policy
// model as JSON); the id inside, when given, must be the same.
func DecodePolicy(id string, raw json.RawMessage) (policy.Policy, error) {
	var p policy.Policy
	if err := strictJSON(raw, &p); err != nil {
		return p, fmt.Errorf("policy %q: %w", id, err)
	}
	if p.ID != "" && p.ID != id {
		return p, fmt.Errorf("policy %q: its source names it %q", id, p.ID)
	}
	p.ID = id
	return p, nil
}

// customClaim is one element of a stored user's claims.
type customClaim struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	In    string `json:"in"`
}

// EncodeUserClaims renders a user's custom claims (nil when none).
func EncodeUserClaims(cs []identity.CustomClaim) (json.RawMessage, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	out := make([]customClaim, len(cs))
	for i, c := range cs {
		out[i] = customClaim{Name: c.Name, Value: c.Value, In: c.In}
	}
	return json.Marshal(out)
}

// DecodeUserClaims reads a user's custom claims; each names its token
// (identity.ClaimAccess or identity.ClaimIdentity).
func DecodeUserClaims(raw json.RawMessage) ([]identity.CustomClaim, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var in []customClaim
	if err := strictJSON(raw, &in); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	out := make([]identity.CustomClaim, len(in))
	for i, c := range in {
		if c.Name == "" || (c.In != identity.ClaimAccess && c.In != identity.ClaimIdentity) {
			return nil, fmt.Errorf("claims: claim %q must have a name and be marked %q or %q", c.Name, identity.ClaimAccess, identity.ClaimIdentity)
		}
		out[i] = identity.CustomClaim{Name: c.Name, Value: c.Value, In: c.In}
	}
	return out, nil
}

// strictJSON decodes raw into v, refusing unknown fields and trailing data.
func strictJSON(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func duration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q is not a duration such as 12h", field, s)
	}
	return d, nil
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }
