package issuer

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
)

// discoveryDoc is the OpenID Provider / RFC 8414 metadata.
type discoveryDoc struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	UserinfoEndpoint                       string   `json:"userinfo_endpoint"`
	JWKSURI                                string   `json:"jwks_uri"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	EndSessionEndpoint                     string   `json:"end_session_endpoint"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                        []string `json:"scopes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	ClaimsSupported                        []string `json:"claims_supported"`
	PromptValuesSupported                  []string `json:"prompt_values_supported"`
	ClaimsParameterSupported               bool     `json:"claims_parameter_supported"`
	RequestParameterSupported              bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported           bool     `json:"request_uri_parameter_supported"`
	AuthorizationResponseIssParameter      bool     `json:"authorization_response_iss_parameter_supported"`
	AccessTokenSigningAlgValues            []string `json:"access_token_signing_alg_values_supported,omitempty"`
	BackchannelLogoutSupported             bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported      bool     `json:"backchannel_logout_session_supported"`
}

// discoveryCache is the discovery document of one snapshot.
type discoveryCache struct {
	snap *directory.Snapshot
	doc  []byte
}

// discoveryFor returns the discovery document for snap: built once per
// snapshot (its scopes_supported come from the clients), then served from
// memory until the directory serves another snapshot.
func (i *Issuer) discoveryFor(snap *directory.Snapshot) ([]byte, error) {
	if c := i.discovery.Load(); c != nil && c.snap == snap {
		return c.doc, nil
	}
	doc, err := i.buildDiscovery(snap.Scopes)
	if err != nil {
		return nil, err
	}
	i.discovery.Store(&discoveryCache{snap: snap, doc: doc})
	return doc, nil
}

func (i *Issuer) buildDiscovery(scopes []string) ([]byte, error) {
	alg := i.keys.Algorithm()
	d := discoveryDoc{
		Issuer:                                 i.issuer,
		AuthorizationEndpoint:                  i.issuer + pathAuthorize,
		TokenEndpoint:                          i.issuer + pathToken,
		UserinfoEndpoint:                       i.issuer + pathUserinfo,
		JWKSURI:                                i.issuer + pathJWKS,
		RevocationEndpoint:                     i.issuer + pathRevoke,
		IntrospectionEndpoint:                  i.issuer + pathIntrospect,
		EndSessionEndpoint:                     i.issuer + pathLogout,
		ResponseTypesSupported:                 []string{"code"},
		ResponseModesSupported:                 []string{"query"},
		SubjectTypesSupported:                  []string{"public"},
		IDTokenSigningAlgValuesSupported:       []string{alg},
		AccessTokenSigningAlgValues:            []string{alg},
		ScopesSupported:                        scopes,
		GrantTypesSupported:                    []string{"authorization_code", "refresh_token", "client_credentials"},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      []string{"client_secret_basic", "client_secret_post", "none"},
		RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionEndpointAuthMethods:       []string{"client_secret_basic", "client_secret_post"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid",
			"name", "given_name", "family_name", "preferred_username", "email", "email_verified"},
		PromptValuesSupported:             []string{"none", "login", "consent", "select_account"},
		AuthorizationResponseIssParameter: true,
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	}
	if alg != "RS256" {
		// RS256 must always be listed (OIDC Discovery 3); it is accepted for
		// verification of keys still published.
		d.IDTokenSigningAlgValuesSupported = append(d.IDTokenSigningAlgValuesSupported, "RS256")
	}
	return json.Marshal(d)
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot) {
	doc, err := i.discoveryFor(snap)
	if err != nil {
		http.Error(w, "the discovery document could not be built", http.StatusInternalServerError)
		return
	}
	if publicMetadata(w, r, "application/json") {
		_, _ = w.Write(doc)
	}
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if publicMetadata(w, r, "application/jwk-set+json") {
		_, _ = w.Write(i.keys.JWKS())
	}
}

// publicMetadata answers what the public, cacheable metadata endpoints
// (discovery, JWKS) share: only GET and HEAD (and CORS preflight, allowed
// from any origin). It returns true when the caller should write the body;
// the headers, with contentType, are set.
func publicMetadata(w http.ResponseWriter, r *http.Request, contentType string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, max-age=300")
	return true
}

// cors answers CORS for the endpoints browser clients call (token,
// userinfo, revoke): origins registered by any client of the snapshot are
// allowed. It returns true when the request was a preflight and has been
// answered.
func (i *Issuer) cors(w http.ResponseWriter, r *http.Request, snap *directory.Snapshot, methods string) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	if origin == "" || !snap.Origins[origin] {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}
