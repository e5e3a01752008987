package issuer

import (
	"net/url"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// grantClientCredentials issues an access token to a confidential client
// acting on its own behalf (RFC 6749 4.4): scopes limited to the client's,
// audience from its configuration or an RFC 8707 resource among them. It
// touches no store: the cost is one signature.
func (i *Issuer) grantClientCredentials(snap *directory.Snapshot, client *identity.Client, form url.Values) (minted, *OAuthError) {
	if client.IsPublic() {
		return minted{}, oauthErr(ErrUnauthorizedClient, "client_credentials needs a confidential client")
	}
	scopes, oe := narrowScopes(form.Get("scope"), client.Scopes)
	if oe != nil {
		i.auditEntry(evToken, outcomeDenied, "scope beyond the client's", client.ID, client.ID)
		return minted{}, oe
	}
	res, oe := requestedResources(form, client.Audiences)
	if oe != nil {
		i.auditEntry(evToken, outcomeDenied, "resource not among the client's audiences", client.ID, client.ID)
		return minted{}, oe
	}
	return i.mint(snap, issue{
		grant:    identity.GrantClientCredentials,
		client:   client,
		subject:  client.ID,
		scopes:   scopes,
		audience: audienceFor(client, res),
		familyID: randomString(12),
	})
}
