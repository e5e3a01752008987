package rp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fakeOP is a minimal OpenID provider for tests: discovery, JWKS, an
// authorize endpoint that approves at once, a token endpoint that enforces
// client authentication, single-use codes, redirect_uri and PKCE S256, and a
// userinfo endpoint. It counts what it sees.
type fakeOP struct {
	t      testing.TB
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	kid    string
	now    func() time.Time
	client string
	secret string // "" = public client

	mu sync.Mutex
	// knobs
	authMethods   []string // token_endpoint_auth_methods_supported
	nonceOverride string   // put this nonce in ID tokens instead
	refreshSub    string   // subject of ID tokens on refresh ("" = same)
	noIDOnRefresh bool
	noRotate      bool
	noRevocation  bool              // advertise no revocation_endpoint
	signWith      *ecdsa.PrivateKey // sign ID tokens with another key
	sub           string
	extraAud      string // add a second audience to ID tokens
	azp           string // azp claim to put in ID tokens
	// records
	codes        map[string]authReq
	refresh      map[string]string // refresh token -> sub
	access       map[string]string // access token -> sub
	lastAuth     url.Values
	tokenCalls   int
	pkceVerified int
	codeReuse    int
	lastForm     url.Values
	revoked      int
}

type authReq struct {
	challenge, method, nonce, redirectURI string
}

func newFakeOP(t testing.TB, now func() time.Time, client, secret string) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{
		t: t, key: key, kid: "k1", now: now, client: client, secret: secret, sub: "alice",
		codes: map[string]authReq{}, refresh: map[string]string{}, access: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	mux.HandleFunc("POST /revoke", op.revoke)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOP) issuer() string { return op.srv.URL }

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	op.mu.Lock()
	methods := op.authMethods
	noRevocation := op.noRevocation
	op.mu.Unlock()
	doc := map[string]any{
		"issuer":                                op.issuer(),
		"authorization_endpoint":                op.issuer() + "/authorize",
		"token_endpoint":                        op.issuer() + "/token",
		"userinfo_endpoint":                     op.issuer() + "/userinfo",
		"jwks_uri":                              op.issuer() + "/jwks",
		"end_session_endpoint":                  op.issuer() + "/logout?tenant=x",
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"response_types_supported":              []string{"code"},
	}
	if methods != nil {
		doc["token_endpoint_auth_methods_supported"] = methods
	}
	if !noRevocation {
		doc["revocation_endpoint"] = op.issuer() + "/revoke"
	}
	writeJSON(w, http.StatusOK, doc)
}

func (op *fakeOP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: "ES256", Use: "sig",
	}}})
}

func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	defer op.mu.Unlock()
	op.lastAuth = q
	if q.Get("response_type") != "code" || q.Get("client_id") != op.client {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := randomToken()
	op.codes[code] = authReq{
		challenge:   q.Get("code_challenge"),
		method:      q.Get("code_challenge_method"),
		nonce:       q.Get("nonce"),
		redirectURI: q.Get("redirect_uri"),
	}
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (op *fakeOP) clientAuthenticated(r *http.Request) bool {
	id, sec, basic := r.BasicAuth()
	if op.secret == "" {
		// Public client: client_id in the body, no secret anywhere.
		return !basic && r.PostForm.Get("client_id") == op.client && r.PostForm.Get("client_secret") == ""
	}
	if basic {
		idU, _ := url.QueryUnescape(id)
		secU, _ := url.QueryUnescape(sec)
		return idU == op.client && subtle.ConstantTimeCompare([]byte(secU), []byte(op.secret)) == 1
	}
	return r.PostForm.Get("client_id") == op.client &&
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("client_secret")), []byte(op.secret)) == 1
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tokenCalls++
	op.lastForm = r.PostForm
	if !op.clientAuthenticated(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		req, ok := op.codes[code]
		if !ok {
			op.codeReuse++
			oauthError(w, "invalid_grant")
			return
		}
		delete(op.codes, code) // single use
		if r.PostForm.Get("redirect_uri") != req.redirectURI {
			oauthError(w, "invalid_grant")
			return
		}
		v := r.PostForm.Get("code_verifier")
		sum := sha256.Sum256([]byte(v))
		if req.method != "S256" || len(v) < 43 || base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge {
			oauthError(w, "invalid_grant")
			return
		}
		op.pkceVerified++
		nonce := req.nonce
		if op.nonceOverride != "" {
			nonce = op.nonceOverride
		}
		op.issue(w, op.sub, nonce, true)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		sub, ok := op.refresh[rt]
		if !ok {
			oauthError(w, "invalid_grant")
			return
		}
		if !op.noRotate {
			delete(op.refresh, rt)
		}
		if op.refreshSub != "" {
			sub = op.refreshSub
		}
		op.issue(w, sub, "", !op.noIDOnRefresh)
	default:
		oauthError(w, "unsupported_grant_type")
	}
}

// revoke is an RFC 7009 endpoint for refresh tokens: client-authenticated,
// 200 for known and unknown tokens alike.
func (op *fakeOP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.lastForm = r.PostForm
	if !op.clientAuthenticated(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if _, ok := op.refresh[r.PostForm.Get("token")]; ok {
		delete(op.refresh, r.PostForm.Get("token"))
		op.revoked++
	}
	w.WriteHeader(http.StatusOK)
}

// issue writes a token response; op.mu is held.
func (op *fakeOP) issue(w http.ResponseWriter, sub, nonce string, withID bool) {
	at := "at-" + randomToken()
	op.access[at] = sub
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300}
	if !op.noRotate || len(op.refresh) == 0 {
		rt := "rt-" + randomToken()
		op.refresh[rt] = sub
		resp["refresh_token"] = rt
	}
	if withID {
		claims := map[string]any{
			"iss": op.issuer(), "sub": sub, "aud": op.client,
			"iat": op.now().Unix(), "exp": op.now().Add(time.Hour).Unix(),
			"email": sub + "@example.com", "groups": []string{"dev"},
		}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		if op.extraAud != "" {
			claims["aud"] = []string{op.client, op.extraAud}
		}
		if op.azp != "" {
			claims["azp"] = op.azp
		}
		resp["id_token"] = op.sign(claims)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (op *fakeOP) sign(claims map[string]any) string {
	key := op.key
	if op.signWith != nil {
		key = op.signWith
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", op.kid))
	if err != nil {
		op.t.Error(err)
		return ""
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		op.t.Error(err)
		return ""
	}
	s, _ := obj.CompactSerialize()
	return s
}

func (op *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	sub, ok := op.access[h[len(prefix):]]
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": sub, "email": "other@example.com", "locale": "nl"})
}

func (op *fakeOP) counts() (tokenCalls, pkceVerified, codeReuse int) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.tokenCalls, op.pkceVerified, op.codeReuse
}

func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
