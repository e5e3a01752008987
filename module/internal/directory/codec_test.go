package directory

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// TestCodec_ClientRoundTripsEveryField: what EncodeClient writes,
// DecodeClient reads back field for field; unknown fields and clients that
// do not validate are refused.
func TestCodec_ClientRoundTripsEveryField(t *testing.T) {
	c := &identity.Client{ID: "web", Type: identity.Confidential, SecretHash: identity.HashSecret("web-secret-0123456789"),
		GrantTypes: []string{identity.GrantAuthorizationCode, identity.GrantRefreshToken}, Scopes: []string{"openid", "orders:read"},
		Audiences: []string{"orders-api"}, RedirectURIs: []string{"https://web.example/cb"}, PostLogoutRedirectURIs: []string{"https://web.example/bye"},
		AllowedOrigins: []string{"https://web.example"}, AllowLocalLogin: true, Providers: []string{"github"}, Policies: []string{"staff"},
		AllowPlainPKCE: true, RequirePKCE: true, AccessTokenLifetime: 5 * time.Minute, IDTokenLifetime: 10 * time.Minute,
		RefreshTokenLifetime: 48 * time.Hour, BackchannelLogoutURI: "https://web.example/bc", BackchannelLogoutSessionRequired: true}
	raw, err := EncodeClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), `"web"`) {
		t.Fatalf("the id or secret hash went into the data: %s", raw)
	}
	got, err := DecodeClient("web", raw, c.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n%+v\n%+v", got, c)
	}
	for name, bad := range map[string]string{
		"an unknown field":      `{"clientType":"public","grantTypes":["authorization_code"],"redirectUris":["https://a.example/cb"],"allowLocalLogin":true,"requirePkce":true,"secret":"x"}`,
		"an invalid client":     `{"clientType":"public","grantTypes":["implicit"],"allowLocalLogin":true,"requirePkce":true}`,
		"a confidential client": `{"clientType":"confidential","grantTypes":["client_credentials"],"allowLocalLogin":false,"requirePkce":true}`,
	} {
		if _, err := DecodeClient("x", json.RawMessage(bad), ""); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}

func TestCodec_DomainSettingsUsersAndPolicies(t *testing.T) {
	raw, err := EncodeDomainSettings(identity.DomainSettings{SessionLifetime: 90 * time.Minute, KeyRotation: 720 * time.Hour, SigningAlgorithm: "EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeDomainSettings("d", "https://d.example", raw)
	if err != nil || s.SessionLifetime != 90*time.Minute || s.KeyRotation != 720*time.Hour || s.SigningAlgorithm != "EdDSA" || s.Name != "d" {
		t.Fatalf("%+v %v", s, err)
	}
	for name, tc := range map[string]struct {
		issuer string
		raw    string
	}{
		"an issuer with a slash": {"https://d.example/", ``},
		"a bad duration":         {"https://d.example", `{"sessionLifetime":"soon"}`},
		"a bad claims map":       {"https://d.example", `{"claimsMap":{"mode":"sometimes"}}`},
		"an unknown field":       {"https://d.example", `{"colour":"blue"}`},
	} {
		if _, err := DecodeDomainSettings("d", tc.issuer, json.RawMessage(tc.raw)); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
	cs := []identity.CustomClaim{{Name: "roles", Value: []any{"admin"}, In: identity.ClaimAccess}, {Name: "dept", Value: "r", In: identity.ClaimIdentity}}
	raw, err = EncodeUserClaims(cs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeUserClaims(raw); err != nil || !reflect.DeepEqual(got, cs) {
		t.Fatalf("claims round trip: %v %v", got, err)
	}
	if _, err := DecodeUserClaims(json.RawMessage(`[{"name":"x","value":1,"in":"both"}]`)); err == nil {
		t.Error("a claim for no token was accepted")
	}
	if _, err := DecodePolicy("a", json.RawMessage(`{"id":"b","all":[{"claim":"x"}]}`)); err == nil {
		t.Error("a policy whose source names another id was accepted")
	}
	if p, err := DecodePolicy("a", json.RawMessage(`{"all":[{"claim":"x"}]}`)); err != nil || p.ID != "a" {
		t.Errorf("a policy named by its row: %+v %v", p, err)
	}
}
