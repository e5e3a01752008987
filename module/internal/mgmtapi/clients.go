package mgmtapi

import (
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// Client types and grant types as the API (Entrypage) names them.
const (
	clientPublic           = "Public"
	clientConfidential     = "Confidential"
	grantAuthorizationCode = "AuthorizationCode"
	grantClientCredentials = "ClientCredentials"
)

// Client is a client as the API shows it.
type Client struct {
	ClientID string `json:"clientId"`
	// ClientType is "Public" (no secret; PKCE) or "Confidential".
	ClientType string `json:"clientType"`
	// GrantType is "AuthorizationCode" (users sign in; refresh tokens
	// too) or "ClientCredentials" (the client acts for itself).
	GrantType string `json:"grantType"`
	// GrantTypes are the OAuth grant types the client may use (read-only:
	// what GrantType stands for, or what the configuration lists).
	GrantTypes []string `json:"grantTypes"`
	// Scope is the client's scopes, space-separated.
	Scope                   string   `json:"scope"`
	Audiences               []string `json:"audiences"`
	RedirectURIs            []string `json:"redirectUris"`
	PostSignOutRedirectURIs []string `json:"postSignOutRedirectUris"`
	AllowLocalLogin         bool     `json:"allowLocalLogin"`
	Providers               []string `json:"providers"`
	Policies                []string `json:"policies"`
	AllowedOrigins          []string `json:"allowedOrigins"`
	// Token lifetimes in seconds.
	AccessTokenExpiry                int64      `json:"accessTokenExpiry"`
	IDTokenExpiry                    int64      `json:"idTokenExpiry"`
	RefreshTokenExpiry               int64      `json:"refreshTokenExpiry"`
	RequirePKCE                      bool       `json:"requirePkce"`
	BackchannelLogoutURI             string     `json:"backchannelLogoutUri"`
	BackchannelLogoutSessionRequired bool       `json:"backchannelLogoutSessionRequired"`
	Managed                          string     `json:"managed"`
	CreatedAt                        *time.Time `json:"createdAt,omitempty"`
	UpdatedAt                        *time.Time `json:"updatedAt,omitempty"`
	// ClientSecret is a confidential client's secret: shown once, when it
	// is made (on create and on rotation).
	ClientSecret string `json:"clientSecret,omitempty"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// clientOf shows an identity.Client.
func clientOf(c *identity.Client, managed string) Client {
	out := Client{ClientID: c.ID, ClientType: clientPublic, GrantType: grantClientCredentials,
		GrantTypes: nonNil(c.GrantTypes), Scope: strings.Join(c.Scopes, " "), Audiences: nonNil(c.Audiences),
		RedirectURIs: nonNil(c.RedirectURIs), PostSignOutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		AllowLocalLogin: c.AllowLocalLogin, Providers: nonNil(c.Providers), Policies: nonNil(c.Policies),
		AllowedOrigins:    nonNil(c.AllowedOrigins),
		AccessTokenExpiry: int64(c.AccessLifetime() / time.Second), IDTokenExpiry: int64(c.IDLifetime() / time.Second),
		RefreshTokenExpiry: int64(c.RefreshLifetime() / time.Second), RequirePKCE: c.PKCERequired(),
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		Managed: managed}
	if c.Type == identity.Confidential {
		out.ClientType = clientConfidential
	}
	if c.HasGrant(identity.GrantAuthorizationCode) {
		out.GrantType = grantAuthorizationCode
	}
	return out
}

func clientOfConfig(c *identity.Client) Client { return clientOf(c, "config") }

func (a *API) clientRoutes(add func(string, map[string]op)) {}
