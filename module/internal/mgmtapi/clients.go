package mgmtapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
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

// ClientItem is a client in a listing.
type ClientItem struct {
	ClientID   string `json:"clientId"`
	ClientType string `json:"clientType"`
	GrantType  string `json:"grantType"`
	Managed    string `json:"managed"`
}

// ClientSecret is the answer of a rotation: the new secret, shown once.
type ClientSecret struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// clientPut is the body of PUT .../client/{clientId}: the whole client,
// and the members a GET answers with that cannot be written (ignored, or
// checked), so that what was read can be sent back.
type clientPut struct {
	ClientID                         string          `json:"clientId"`
	ClientType                       string          `json:"clientType"`
	GrantType                        string          `json:"grantType"`
	Scope                            string          `json:"scope"`
	Audiences                        []string        `json:"audiences"`
	RedirectURIs                     []string        `json:"redirectUris"`
	PostSignOutRedirectURIs          []string        `json:"postSignOutRedirectUris"`
	AllowLocalLogin                  *bool           `json:"allowLocalLogin"`
	Providers                        []string        `json:"providers"`
	Policies                         []string        `json:"policies"`
	AllowedOrigins                   []string        `json:"allowedOrigins"`
	AccessTokenExpiry                int64           `json:"accessTokenExpiry"`
	IDTokenExpiry                    int64           `json:"idTokenExpiry"`
	RefreshTokenExpiry               int64           `json:"refreshTokenExpiry"`
	RequirePKCE                      *bool           `json:"requirePkce"`
	BackchannelLogoutURI             string          `json:"backchannelLogoutUri"`
	BackchannelLogoutSessionRequired bool            `json:"backchannelLogoutSessionRequired"`
	GrantTypes                       json.RawMessage `json:"grantTypes"`
	Managed                          json.RawMessage `json:"managed"`
	CreatedAt                        json.RawMessage `json:"createdAt"`
	UpdatedAt                        json.RawMessage `json:"updatedAt"`
	ClientSecret                     *string         `json:"clientSecret"`
}

// clientIDRE is what the id of a client created through the API may be:
// URL-safe characters only (it is a path segment and a token's sub).
var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// maxClientPathID bounds a client id read from a path.
const maxClientPathID = 255

// newClientSecret makes a confidential client's secret: 256 random bits,
// base64url.
func newClientSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validateFields maps the fields identity.Client.Validate names (the
// configuration's) to the API's.
var validateFields = []struct{ keyword, field string }{
	{"post_logout_redirect_uri", "postSignOutRedirectUris"},
	{"backchannel_logout_session_required", "backchannelLogoutSessionRequired"},
	{"backchannel_logout_uri", "backchannelLogoutUri"},
	{"redirect_uri", "redirectUris"},
	{"allowed_origin", "allowedOrigins"},
	{"access_token_lifetime", "accessTokenExpiry"},
	{"id_token_lifetime", "idTokenExpiry"},
	{"refresh_token_lifetime", "refreshTokenExpiry"},
	{"no way to sign in", "allowLocalLogin"},
	{"client_credentials", "grantType"},
	{"grant", "grantType"},
	{"refresh_token", "grantType"},
	{"client_secret", "clientType"},
	{"public client", "clientType"},
	{"type ", "clientType"},
	{"scope", "scope"},
	{"audience", "audiences"},
	{"client_id", "clientId"},
	{"pkce", "requirePkce"},
}

// validateErrors turns identity.Client.Validate's errors into field
// errors.
func validateErrors(id string, err error) []FieldError {
	var out []FieldError
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	for _, e := range parts {
		msg := strings.TrimPrefix(e.Error(), fmt.Sprintf("client %q: ", id))
		field := "(client)"
		lower := strings.ToLower(msg)
		for _, m := range validateFields {
			if strings.Contains(lower, m.keyword) {
				field = m.field
				break
			}
		}
		out = append(out, FieldError{Field: field, Detail: msg})
	}
	return out
}

// checkSeconds validates a lifetime in seconds (0: the default).
func checkSeconds(errs []FieldError, field string, v int64, max time.Duration) []FieldError {
	if v != 0 && (v < 30 || v > int64(max/time.Second)) {
		return append(errs, FieldError{field, fmt.Sprintf("%d is out of range; use 30 to %d seconds, or 0 for the default", v, int64(max/time.Second))})
	}
	return errs
}

// buildClient makes the identity client a PUT describes, without its
// secret, and reports what is wrong with it in the API's terms.
func buildClient(id string, in *clientPut) (*identity.Client, []FieldError) {
	var errs []FieldError
	if in.ClientID != "" && in.ClientID != id {
		errs = append(errs, FieldError{"clientId", fmt.Sprintf("the body names client %q, the path %q; they must be the same", in.ClientID, id)})
	}
	if in.ClientSecret != nil {
		errs = append(errs, FieldError{"clientSecret", "the server makes client secrets; leave it out (rotate with POST .../secret)"})
	}
	c := &identity.Client{ID: id, Scopes: strings.Fields(in.Scope), Audiences: in.Audiences, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostSignOutRedirectURIs, AllowedOrigins: in.AllowedOrigins, AllowLocalLogin: true,
		Providers: in.Providers, Policies: in.Policies, RequirePKCE: true,
		AccessTokenLifetime:  time.Duration(in.AccessTokenExpiry) * time.Second,
		IDTokenLifetime:      time.Duration(in.IDTokenExpiry) * time.Second,
		RefreshTokenLifetime: time.Duration(in.RefreshTokenExpiry) * time.Second,
		BackchannelLogoutURI: in.BackchannelLogoutURI, BackchannelLogoutSessionRequired: in.BackchannelLogoutSessionRequired}
	if in.AllowLocalLogin != nil {
		c.AllowLocalLogin = *in.AllowLocalLogin
	}
	if in.RequirePKCE != nil {
		c.RequirePKCE = *in.RequirePKCE
	}
	switch in.ClientType {
	case clientPublic:
		c.Type = identity.Public
	case clientConfidential:
		c.Type = identity.Confidential
	default:
		errs = append(errs, FieldError{"clientType", fmt.Sprintf("%q is not a client type; use %s or %s", in.ClientType, clientPublic, clientConfidential)})
	}
	switch in.GrantType {
	case grantAuthorizationCode:
		c.GrantTypes = []string{identity.GrantAuthorizationCode, identity.GrantRefreshToken}
	case grantClientCredentials:
		c.GrantTypes = []string{identity.GrantClientCredentials}
	default:
		errs = append(errs, FieldError{"grantType", fmt.Sprintf("%q is not a grant type; use %s or %s", in.GrantType, grantAuthorizationCode, grantClientCredentials)})
	}
	for i, u := range in.RedirectURIs {
		if err := identity.ValidateRedirectURI(u); err != nil {
			errs = append(errs, FieldError{fmt.Sprintf("redirectUris[%d]", i), err.Error()})
		}
	}
	for i, u := range in.PostSignOutRedirectURIs {
		if err := identity.ValidateRedirectURI(u); err != nil {
			errs = append(errs, FieldError{fmt.Sprintf("postSignOutRedirectUris[%d]", i), err.Error()})
		}
	}
	if in.BackchannelLogoutURI != "" {
		if err := identity.ValidateBackchannelLogoutURI(in.BackchannelLogoutURI); err != nil {
			errs = append(errs, FieldError{"backchannelLogoutUri", err.Error()})
		}
	}
	if len(in.Providers) > 0 {
		errs = append(errs, FieldError{"providers", "the domain defines no federated provider (none can be defined yet); leave providers empty"})
	}
	errs = checkSeconds(errs, "accessTokenExpiry", in.AccessTokenExpiry, identity.MaxTokenLifetime)
	errs = checkSeconds(errs, "idTokenExpiry", in.IDTokenExpiry, identity.MaxTokenLifetime)
	errs = checkSeconds(errs, "refreshTokenExpiry", in.RefreshTokenExpiry, identity.MaxRefreshTokenLifetime)
	if len(errs) > 0 {
		return c, errs
	}
	// The rules the configuration's clients follow, with a stand-in hash
	// for a confidential client's secret (the server makes it).
	check := *c
	if check.Type == identity.Confidential {
		check.SecretHash = identity.HashSecret("stand-in secret of sixteen+ characters")
	}
	if err := check.Validate(); err != nil {
		return c, validateErrors(id, err)
	}
	return c, nil
}

func (a *API) clientRoutes(add func(string, map[string]op)) {
	add("/v1/domain/{domain}/client", map[string]op{
		"GET": {"client.list", (*call).listClients},
	})
	add("/v1/domain/{domain}/client/{clientId}", map[string]op{
		"GET":    {"client.read", (*call).getClient},
		"PUT":    {"client.put", (*call).putClient},
		"DELETE": {"client.delete", (*call).deleteClient},
	})
	add("/v1/domain/{domain}/client/{clientId}/secret", map[string]op{
		"POST": {"client.secret", (*call).rotateSecret},
	})
}

// clientOfRow shows a stored client.
func clientOfRow(r store.Client) (Client, error) {
	c, err := directory.DecodeClient(r.ID, r.Data, r.SecretHash)
	if err != nil {
		return Client{}, err
	}
	out := clientOf(c, "api")
	out.CreatedAt, out.UpdatedAt = timePtr(r.CreatedAt), timePtr(r.UpdatedAt)
	return out, nil
}

func (c *call) listClients() *Problem {
	t, p := c.target(false)
	if p != nil {
		return p
	}
	out := []ClientItem{}
	if t.config != nil {
		for _, cl := range t.config.Clients {
			v := clientOfConfig(cl)
			out = append(out, ClientItem{ClientID: v.ClientID, ClientType: v.ClientType, GrantType: v.GrantType, Managed: "config"})
		}
	}
	if t.stored {
		rows, err := c.a.st.Clients(c.ctx, t.name)
		if err != nil {
			return unavailable(err)
		}
		for _, r := range rows {
			if t.config != nil && t.config.clients[r.ID] != nil {
				continue
			}
			item := ClientItem{ClientID: r.ID, Managed: "api"}
			if v, err := clientOfRow(r); err == nil {
				item.ClientType, item.GrantType = v.ClientType, v.GrantType
			} else {
				c.a.log.Warn("management API: a stored client cannot be read", zap.String("client", r.ID), zap.Error(err))
				continue
			}
			out = append(out, item)
		}
	}
	slices.SortFunc(out, func(a, b ClientItem) int { return strings.Compare(a.ClientID, b.ClientID) })
	return c.writeJSON(http.StatusOK, List[ClientItem]{Items: out})
}

// clientTarget is the client a path names; row.Version is 0 when it is
// not stored.
type clientTarget struct {
	*domainTarget
	id     string
	config *identity.Client
	row    store.Client
}

func (ct *clientTarget) etag() string {
	switch {
	case ct.config != nil:
		return ct.domainTarget.config.clientTags[ct.id]
	case ct.row.Version > 0:
		return rowETag(ct.row.Version, ct.row.CreatedAt)
	}
	return ""
}

// client finds the client the path names; with must, one that does not
// exist is 404.
func (c *call) client(write, must bool) (*clientTarget, *Problem) {
	t, p := c.target(write)
	if p != nil {
		return nil, p
	}
	id := c.r.PathValue("clientId")
	c.object = "client " + id
	ct := &clientTarget{domainTarget: t, id: id}
	notFound := problem(TypeNotFound, fmt.Sprintf("client %q does not exist in domain %q", id, t.api))
	if len(id) > maxClientPathID {
		return nil, notFound
	}
	if t.config != nil {
		if cl := t.config.clients[id]; cl != nil {
			if write {
				return nil, problem(TypeManagedByConfig, fmt.Sprintf("client %q is defined by the configuration; change it there", id))
			}
			ct.config = cl
			return ct, nil
		}
	}
	if t.stored {
		row, err := c.a.st.Client(c.ctx, t.name, id)
		switch {
		case err == nil:
			ct.row = row
			return ct, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, unavailable(err)
		}
	}
	if must {
		return nil, notFound
	}
	if !clientIDRE.MatchString(id) {
		return nil, invalid(FieldError{"clientId", fmt.Sprintf("%q is not a client id for the API; use 1 to 128 letters, digits and . _ ~ -", id)})
	}
	return ct, nil
}

func (c *call) getClient() *Problem {
	ct, p := c.client(false, true)
	if p != nil {
		return p
	}
	c.setETag(ct.etag())
	if ct.config != nil {
		return c.writeJSON(http.StatusOK, clientOfConfig(ct.config))
	}
	out, err := clientOfRow(ct.row)
	if err != nil {
		return unavailable(err)
	}
	return c.writeJSON(http.StatusOK, out)
}

// clientRefs checks what a client names: its policies must exist in the
// domain, and its id must not be a user's sub (a client_credentials
// token's sub is the client id: it would be that user to an upstream).
func (c *call) clientRefs(t *domainTarget, cl *identity.Client) *Problem {
	var errs []FieldError
	for i, id := range cl.Policies {
		if t.config != nil && t.config.policies[id] != nil {
			continue
		}
		if t.stored {
			_, err := c.a.st.Policy(c.ctx, t.name, id)
			if err == nil {
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return unavailable(err)
			}
		}
		errs = append(errs, FieldError{fmt.Sprintf("policies[%d]", i), fmt.Sprintf("policy %q does not exist in the domain; create it first", id)})
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	taken := t.config != nil && t.config.users[cl.ID] != nil
	if !taken && t.stored {
		_, err := c.a.st.User(c.ctx, t.name, cl.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return unavailable(err)
		}
		taken = err == nil
	}
	if taken {
		return conflict("clientId", fmt.Sprintf("client id %q is the sub of a user of the domain; a client's tokens would name that user; pick another id", cl.ID))
	}
	return nil
}

func (c *call) putClient() *Problem {
	ct, p := c.client(true, false)
	if p != nil {
		return p
	}
	body, p := c.jsonBody(mediaJSON)
	if p != nil {
		return p
	}
	var in clientPut
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	cl, errs := buildClient(ct.id, &in)
	if len(errs) > 0 {
		return invalid(errs...)
	}
	if p := c.clientRefs(ct.domainTarget, cl); p != nil {
		return p
	}
	if p := c.precondition(ct.etag()); p != nil {
		return p
	}
	if p := c.holdsStored(ct.domainTarget); p != nil {
		return p
	}
	data, err := directory.EncodeClient(cl)
	if err != nil {
		return unavailable(err)
	}
	row := ct.row
	var secret string
	err = c.retry(func() error {
		// A confidential client keeps its secret; one that becomes
		// confidential gets a new one, shown in this answer only.
		hash, s := "", ""
		if cl.Type == identity.Confidential {
			if hash = row.SecretHash; hash == "" {
				var gerr error
				if s, gerr = newClientSecret(); gerr != nil {
					return gerr
				}
				hash = identity.HashSecret(s)
			}
		}
		expected := row.Version // Absent when it does not exist
		out, err := c.a.st.PutClient(c.ctx, store.Client{Domain: ct.name, ID: ct.id, Data: data, SecretHash: hash}, expected)
		if errors.Is(err, store.ErrStale) || (errors.Is(err, store.ErrConflict) && expected == store.Absent) {
			fresh, rerr := c.a.st.Client(c.ctx, ct.name, ct.id)
			switch {
			case rerr == nil:
				row = fresh
			case errors.Is(rerr, store.ErrNotFound):
				row = store.Client{}
			}
			return fmt.Errorf("%w: %w", store.ErrStale, err)
		}
		if err == nil {
			row, secret = out, s
		}
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrStale) && c.r.Header.Get("If-None-Match") != "" {
			return problem(TypeStaleETag, "If-None-Match: the client exists")
		}
		return storeProblem(err, "client", "clientId")
	}
	c.a.changed()
	out, err := clientOfRow(row)
	if err != nil {
		return unavailable(err)
	}
	out.ClientSecret = secret
	c.setETag(rowETag(row.Version, row.CreatedAt))
	status := http.StatusOK
	if ct.row.Version == 0 {
		status = http.StatusCreated
		c.w.Header().Set("Location", "/v1/domain/"+url.PathEscape(ct.api)+"/client/"+url.PathEscape(ct.id))
	}
	return c.writeJSON(status, out)
}

func (c *call) deleteClient() *Problem {
	ct, p := c.client(true, true)
	if p != nil {
		return p
	}
	if p := c.precondition(ct.etag()); p != nil {
		return p
	}
	var e ended
	if p := c.endClient(ct.name, ct.id, &e); p != nil {
		return p
	}
	if err := c.a.st.DeleteClient(c.ctx, ct.name, ct.id, c.expected(ct.row.Version)); err != nil {
		return storeProblem(err, "client", "clientId")
	}
	c.a.changed()
	if p := c.endClient(ct.name, ct.id, &e); p != nil {
		return p
	}
	c.detail = e.fields()
	return c.writeJSON(http.StatusOK, Deleted{Kind: "client", ID: ct.id, Deleted: true, RevokedFamilies: e.families})
}

func (c *call) rotateSecret() *Problem {
	ct, p := c.client(true, true)
	if p != nil {
		return p
	}
	if ct.row.SecretHash == "" {
		return conflict("clientType", fmt.Sprintf("client %q is public and has no secret; make it Confidential with PUT", ct.id))
	}
	if p := c.precondition(ct.etag()); p != nil {
		return p
	}
	secret, err := newClientSecret()
	if err != nil {
		return unavailable(err)
	}
	row := ct.row
	err = c.retry(func() error {
		out, err := c.a.st.PutClient(c.ctx, store.Client{Domain: row.Domain, ID: row.ID, Data: row.Data, SecretHash: identity.HashSecret(secret)}, row.Version)
		if errors.Is(err, store.ErrStale) {
			if fresh, rerr := c.a.st.Client(c.ctx, row.Domain, row.ID); rerr == nil && fresh.SecretHash != "" {
				row = fresh
			}
			return err
		}
		row = out
		return err
	})
	if err != nil {
		return storeProblem(err, "client", "clientId")
	}
	c.a.changed()
	c.setETag(rowETag(row.Version, row.CreatedAt))
	return c.writeJSON(http.StatusOK, ClientSecret{ClientID: row.ID, ClientSecret: secret})
}
