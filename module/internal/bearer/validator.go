package bearer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Defaults and limits of the validator configuration.
const (
	DefaultLeeway        = 30 * time.Second
	MaxLeeway            = 5 * time.Minute
	DefaultMaxTokenBytes = 16 << 10
	DefaultCacheSize     = 10000
	// DefaultRevocationTTL is how long Revoke denies a jti that is not in the cache
	// (its expiry is unknown then).
	DefaultRevocationTTL = 24 * time.Hour
	// maxKeyCandidates bounds the signature checks one token can cause when it has
	// no kid and the key set holds many compatible keys.
	maxKeyCandidates = 8
	// maxNumericDate is 9999-12-31T23:59:59Z.
	maxNumericDate = 253402300799
)

// Config configures a Validator.
type Config struct {
	// Issuer is the exact expected iss claim (no normalisation: a trailing slash matters).
	Issuer string
	// Audiences: the token's aud (string or array) must contain at least one of them.
	Audiences []string
	// Algorithms is the allow-list of JWS algorithms. It must not be empty (fill it from
	// configuration, discovery metadata or AsymmetricAlgorithms) and may only contain
	// RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA.
	Algorithms []string
	// Types lists accepted typ header values, compared case-insensitively with an
	// optional "application/" prefix. Default ["at+jwt"] (RFC 9068). "JWT" also accepts
	// tokens without a typ header, for issuers that do not follow RFC 9068; in that mode
	// tokens carrying ID-token-only claims (nonce, at_hash, c_hash) are still refused.
	Types []string
	// Leeway is the clock skew allowed on exp, nbf and iat. 0 means DefaultLeeway; a
	// negative value means no leeway; at most MaxLeeway.
	Leeway time.Duration
	// Scopes required of the token (scope claim, space-separated, or scp).
	Scopes []string
	// ScopesAny makes one of Scopes sufficient instead of all of them.
	ScopesAny bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// CacheSize bounds the verified-token cache. 0 means DefaultCacheSize; a negative
	// value disables the cache.
	CacheSize int
	// MaxTokenBytes bounds the encoded token; 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int

	// The options below serve an issuer reading back its own tokens (its
	// userinfo, introspection, revocation and logout endpoints); a resource
	// server sets none of them.

	// AnyAudience accepts a token whatever its audience (aud must still be
	// well-formed when present); Audiences must then be empty. For endpoints
	// that serve every audience of one issuer. Default false.
	AnyAudience bool
	// AllowExpired accepts a token whose exp has passed (exp must still be
	// present and well-formed): a revocation request, or a logout's
	// id_token_hint, names a token that may have expired and still says
	// whose it is. It disables the cache. Default false.
	AllowExpired bool
	// IDTokens checks OpenID Connect ID tokens instead of access tokens: the
	// claims that mark an ID token (nonce, at_hash, c_hash) are allowed, and
	// Types defaults to ["JWT"]. Default false.
	IDTokens bool
}

// Token is a verified access token. Tokens returned from the cache are shared between
// requests: treat every field, including Claims, as read-only.
type Token struct {
	// Claims holds every claim of the payload, with the types encoding/json gives a
	// map[string]any (numbers are float64). Payloads with duplicate member names,
	// invalid UTF-8 or nesting deeper than 32 levels are refused (see parseClaimsJSON).
	Claims    map[string]any
	Subject   string
	Issuer    string
	Audience  []string
	Scopes    []string
	Expiry    time.Time
	IssuedAt  time.Time // zero when absent
	NotBefore time.Time // zero when absent
	JTI       string
	// ClientID is the client_id claim (RFC 9068), or azp when client_id is absent.
	ClientID string
	// KID, Algorithm and Type come from the protected header.
	KID       string
	Algorithm string
	Type      string
}

// Validator validates bearer access tokens against one trusted issuer configuration.
// It is safe for concurrent use.
type Validator struct {
	issuer      string
	audiences   []string
	algs        []string
	types       []string // normalised
	acceptNoTyp bool
	leeway      time.Duration
	scopes      []string
	scopesAny   bool
	scopeStr    string
	anyAudience bool
	expiredOK   bool
	idTokens    bool
	now         func() time.Time
	maxBytes    int
	keys        KeySet
	gen         Generational
	cache       *tokenCache
	headers     *headerCache
	revoked     revocations
}

// NewValidator checks cfg and returns a Validator that verifies signatures with keys.
func NewValidator(cfg Config, keys KeySet) (*Validator, error) {
	if keys == nil {
		return nil, errors.New("bearer: no key set")
	}
	if strings.TrimSpace(cfg.Issuer) == "" {
		return nil, errors.New("bearer: issuer is required")
	}
	if cfg.Issuer != strings.TrimSpace(cfg.Issuer) {
		return nil, fmt.Errorf("bearer: issuer %q has surrounding whitespace", cfg.Issuer)
	}
	switch {
	case cfg.AnyAudience && len(cfg.Audiences) > 0:
		return nil, errors.New("bearer: AnyAudience and Audiences exclude each other")
	case !cfg.AnyAudience && len(cfg.Audiences) == 0:
		return nil, errors.New("bearer: at least one audience is required")
	}
	for _, a := range cfg.Audiences {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("bearer: empty audience")
		}
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("bearer: the algorithm allow-list is empty (configure algorithms, or use the issuer's discovery metadata or AsymmetricAlgorithms)")
	}
	var algs []string
	for _, a := range cfg.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			return nil, errors.New(`bearer: algorithm "none" is never accepted`)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			return nil, fmt.Errorf("bearer: algorithm %q is symmetric (HMAC) and never accepted", a)
		case !supportedAlg(a):
			return nil, fmt.Errorf("bearer: unsupported algorithm %q (supported: %s)", a, strings.Join(asymmetric, ", "))
		}
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	types := cfg.Types
	switch {
	case len(types) > 0:
	case cfg.IDTokens:
		types = []string{"JWT"}
	default:
		types = []string{"at+jwt"}
	}
	v := &Validator{
		issuer:      cfg.Issuer,
		audiences:   slices.Clone(cfg.Audiences),
		algs:        algs,
		scopesAny:   cfg.ScopesAny,
		anyAudience: cfg.AnyAudience,
		expiredOK:   cfg.AllowExpired,
		idTokens:    cfg.IDTokens,
		now:         cfg.Now,
		maxBytes:    cfg.MaxTokenBytes,
		keys:        keys,
		headers:     newHeaderCache(),
	}
	for _, t := range types {
		n := normalizeTyp(t)
		if n == "" {
			return nil, errors.New("bearer: empty token type")
		}
		if n == "jwt" {
			v.acceptNoTyp = true
		}
		if !slices.Contains(v.types, n) {
			v.types = append(v.types, n)
		}
	}
	switch {
	case cfg.Leeway == 0:
		v.leeway = DefaultLeeway
	case cfg.Leeway < 0:
		v.leeway = 0
	case cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("bearer: leeway %s exceeds the maximum %s", cfg.Leeway, MaxLeeway)
	default:
		v.leeway = cfg.Leeway
	}
	if cfg.ScopesAny && len(cfg.Scopes) == 0 {
		return nil, errors.New("bearer: any-of scope matching needs at least one scope")
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
			return nil, fmt.Errorf("bearer: invalid scope %q", s)
		}
		if !slices.Contains(v.scopes, s) {
			v.scopes = append(v.scopes, s)
		}
	}
	v.scopeStr = strings.Join(v.scopes, " ")
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	if g, ok := keys.(Generational); ok {
		v.gen = g
	}
	switch {
	case cfg.AllowExpired:
		// A cache entry lives until exp: an expired token has none.
	case cfg.CacheSize == 0:
		v.cache = newTokenCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v, nil
}

func normalizeTyp(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

func (v *Validator) generation() uint64 {
	if v.gen == nil {
		return 0
	}
	return v.gen.Generation()
}

// Validate verifies raw (the compact JWS from the Authorization header) and returns the
// token, or an *Error. The order is: size bound; verified-token cache; compact parsing
// (JWE and JSON serialization refused); header policy (alg allow-list, typ, forbidden
// members) before any key lookup or signature check; key lookup by kid; claims (exp
// required, nbf, iat, iss exact, aud; before any signature operation unless the payload
// exceeds 4 KiB, then after the signature); key selection with use/alg/key-type
// compatibility; signature; then, per call, revocation and scopes.
func (v *Validator) Validate(ctx context.Context, raw string) (*Token, error) {
	if raw == "" {
		return nil, invalidToken("no token", "empty token")
	}
	if len(raw) > v.maxBytes {
		return nil, invalidToken("the token is too large", fmt.Sprintf("token of %d bytes exceeds %d", len(raw), v.maxBytes))
	}
	now := v.now()
	var key [32]byte
	if v.cache != nil {
		key = tokenKey(raw)
		if e := v.cache.get(key); e != nil {
			if !now.Before(e.deadline) {
				v.cache.remove(key)
				return nil, invalidToken("the token has expired", "exp passed (cached token)")
			}
			if e.gen == v.generation() {
				return v.finish(e.tok, now)
			}
			v.cache.remove(key) // verified under keys that changed: verify again
		}
	}
	gen := v.generation()
	tok, deadline, verr := v.verify(ctx, raw, now)
	if verr != nil {
		if verr.Description == descKeysUnavailable {
			return nil, keysUnavailable{verr}
		}
		return nil, verr
	}
	if v.cache != nil && !v.revoked.has(tok.JTI, now) {
		v.cache.put(key, &cacheEntry{tok: tok, deadline: deadline, gen: gen}, now)
	}
	return v.finish(tok, now)
}

// tokenKey is the verified-token cache key: the SHA-256 of the token. It is
// fed to the hash through a small buffer on the stack (the hash's concrete
// type known here, nothing escapes), so a cache hit allocates nothing and
// copies no more than it hashes: no unsafe, and no zeroed 4 KiB buffer.
func tokenKey(raw string) (key [32]byte) {
	d := sha256.New()
	var buf [256]byte
	for len(raw) > 0 {
		n := copy(buf[:], raw)
		d.Write(buf[:n])
		raw = raw[n:]
	}
	d.Sum(key[:0])
	return key
}

// finish runs the per-call checks that are not cached: revocation and scopes.
func (v *Validator) finish(tok *Token, now time.Time) (*Token, error) {
	if tok.JTI != "" && v.revoked.has(tok.JTI, now) {
		return nil, invalidToken("the token has been revoked", "jti revoked")
	}
	if err := v.checkScopes(tok.Scopes); err != nil {
		return nil, err
	}
	return tok, nil
}

func (v *Validator) checkScopes(have []string) *Error {
	if len(v.scopes) == 0 {
		return nil
	}
	if v.scopesAny {
		for _, s := range v.scopes {
			if slices.Contains(have, s) {
				return nil
			}
		}
		return &Error{Code: CodeInsufficientScope, Description: "the token lacks the required scope",
			Scope: v.scopeStr, Reason: "none of the scopes " + quoteShort(v.scopeStr)}
	}
	for _, s := range v.scopes {
		if !slices.Contains(have, s) {
			return &Error{Code: CodeInsufficientScope, Description: "the token lacks the required scope",
				Scope: v.scopeStr, Reason: "missing scope " + quoteShort(s)}
		}
	}
	return nil
}

// maxPrecheckPayload bounds the payloads whose claims are checked before the
// signature: larger (unusual) payloads are only decoded once a signature verified, so
// unauthenticated input cannot make the validator decode much JSON.
const maxPrecheckPayload = 4 << 10

// verify does everything but the per-call checks; deadline is when the token stops
// being acceptable (exp + leeway). The claims of an ordinary-sized payload are
// checked after the key lookup but before the signature: those checks only ever
// refuse, so an expired, foreign or malformed token is refused without a signature
// operation, and an accepted token still needed both.
func (v *Validator) verify(ctx context.Context, raw string, now time.Time) (*Token, time.Time, *Error) {
	jws, e := v.parseJWS(raw)
	if e != nil {
		return nil, time.Time{}, e
	}
	if len(jws.payload) > maxPrecheckPayload {
		if e := v.checkSignature(ctx, jws, nil); e != nil {
			return nil, time.Time{}, e
		}
		return v.checkClaims(jws, now)
	}
	var (
		tok      *Token
		deadline time.Time
	)
	e = v.checkSignature(ctx, jws, func() (e *Error) {
		tok, deadline, e = v.checkClaims(jws, now)
		return e
	})
	if e != nil {
		return nil, time.Time{}, e
	}
	return tok, deadline, nil
}

// checkHeader applies the configured header policy: alg in the allow-list, typ accepted.
func (v *Validator) checkHeader(h *jwsHeader) *Error {
	if !slices.Contains(v.algs, h.alg) {
		return invalidToken("the token's signing algorithm is not accepted", "alg "+quoteShort(h.alg)+" is not in the allow-list")
	}
	if h.typ == "" {
		if !v.acceptNoTyp {
			return invalidToken("the token type is not accepted (expected an access token)", "no typ header")
		}
		return nil
	}
	if !slices.Contains(v.types, normalizeTyp(h.typ)) {
		return invalidToken("the token type is not accepted (expected an access token)", "typ "+quoteShort(h.typ)+" is not accepted")
	}
	return nil
}

// parseJWS parses raw (with the header cache) and applies the header policy.
func (v *Validator) parseJWS(raw string) (*compactJWS, *Error) {
	jws, e := parseCompactCached(raw, v.headers)
	if e != nil {
		return nil, e
	}
	if e := v.checkHeader(&jws.hdr); e != nil {
		return nil, e
	}
	return jws, nil
}

// checkSignature selects the keys for the header and verifies the signature. When
// precheck is not nil it runs once keys were found, before any signature operation,
// and its refusal is returned. A header that verified is remembered in the header
// cache.
func (v *Validator) checkSignature(ctx context.Context, jws *compactJWS, precheck func() *Error) *Error {
	keys, err := v.keys.Keys(ctx, jws.hdr.kid)
	if err != nil {
		return invalidToken(descKeysUnavailable, "signing keys unavailable: "+err.Error())
	}
	if len(keys) == 0 {
		return invalidToken("the token was signed with an unknown key", "no key for kid "+quoteShort(jws.hdr.kid))
	}
	if precheck != nil {
		if e := precheck(); e != nil {
			return e
		}
	}
	tried := 0
	reason := ""
	for i := range keys {
		pub, why := publicKeyFor(jws.hdr.alg, &keys[i])
		if pub == nil {
			reason = why
			continue
		}
		if tried++; tried > maxKeyCandidates {
			break
		}
		if verifySignature(jws.hdr.alg, pub, jws.signingInput, jws.sig) {
			if !jws.cachedHdr {
				v.headers.put(jws.h64, jws.hdr)
			}
			return nil
		}
		reason = "signature does not verify"
	}
	if tried == 0 {
		return invalidToken("the token was signed with an unknown key", "no compatible key for kid "+quoteShort(jws.hdr.kid)+": "+reason)
	}
	return invalidToken("the token signature is invalid", reason+" (kid "+quoteShort(jws.hdr.kid)+")")
}

// checkClaims validates the payload of a JWS. It runs before the signature check for
// ordinary-sized payloads, so it must only ever refuse.
func (v *Validator) checkClaims(jws *compactJWS, now time.Time) (*Token, time.Time, *Error) {
	bad := func(desc, reason string) (*Token, time.Time, *Error) {
		return nil, time.Time{}, invalidToken(desc, reason)
	}
	claims, err := parseClaimsJSON(string(jws.payload))
	if err != nil {
		return bad("the token payload is malformed", "payload is not an acceptable JSON object: "+err.Error())
	}
	tok := &Token{Claims: claims, KID: jws.hdr.kid, Algorithm: jws.hdr.alg, Type: jws.hdr.typ}

	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return bad("the token's expiry is malformed", err.Error())
	}
	if !ok {
		return bad("the token has no expiry", "exp claim missing")
	}
	deadline := exp.Add(v.leeway)
	if !now.Before(deadline) && !v.expiredOK {
		return bad("the token has expired", "exp passed")
	}
	tok.Expiry = exp
	if nbf, ok, err := numericDate(claims, "nbf"); err != nil {
		return bad("the token's not-before time is malformed", err.Error())
	} else if ok {
		if now.Add(v.leeway).Before(nbf) {
			return bad("the token is not valid yet", "nbf in the future")
		}
		tok.NotBefore = nbf
	}
	if iat, ok, err := numericDate(claims, "iat"); err != nil {
		return bad("the token's issue time is malformed", err.Error())
	} else if ok {
		if now.Add(v.leeway).Before(iat) {
			return bad("the token was issued in the future", "iat in the future")
		}
		tok.IssuedAt = iat
	}

	iss, _ := claims["iss"].(string)
	if iss != v.issuer {
		if _, present := claims["iss"]; !present {
			return bad("the token issuer is not accepted", "iss claim missing")
		}
		return bad("the token issuer is not accepted", "iss "+quoteShort(fmt.Sprint(claims["iss"]))+" is not "+quoteShort(v.issuer))
	}
	tok.Issuer = iss

	aud, err := stringOrList(claims, "aud")
	if err != nil {
		return bad("the token audience is malformed", err.Error())
	}
	found := v.anyAudience
	for _, a := range aud {
		if slices.Contains(v.audiences, a) {
			found = true
			break
		}
	}
	if !found {
		if len(aud) == 0 {
			return bad("the token is not meant for this resource", "aud claim missing")
		}
		return bad("the token is not meant for this resource", "aud "+quoteShort(strings.Join(aud, " "))+" matches no configured audience")
	}
	tok.Audience = aud

	if normalizeTyp(jws.hdr.typ) != "at+jwt" && !v.idTokens {
		for _, c := range [...]string{"nonce", "at_hash", "c_hash"} {
			if _, ok := claims[c]; ok {
				return bad("ID tokens are not accepted as access tokens", "claim "+c+" marks an ID token")
			}
		}
	}

	var serr error
	if _, ok := claims["scope"]; ok {
		tok.Scopes, serr = stringOrList(claims, "scope")
	} else {
		tok.Scopes, serr = stringOrList(claims, "scp")
	}
	if serr != nil {
		return bad("the token's scope is malformed", serr.Error())
	}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"sub", &tok.Subject}, {"jti", &tok.JTI}, {"client_id", &tok.ClientID}} {
		if x, ok := claims[f.name]; ok {
			s, isStr := x.(string)
			if !isStr {
				return bad("the token's claims are malformed", f.name+" claim is not a string")
			}
			*f.dst = s
		}
	}
	if tok.ClientID == "" {
		tok.ClientID, _ = claims["azp"].(string)
	}
	return tok, deadline, nil
}

// numericDate reads an RFC 7519 NumericDate claim.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	x, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, isNum := x.(float64)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s claim is not a valid NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// stringOrList reads a claim that is a string or an array of strings. For scope-like
// claims a string is split on spaces; for aud a string is one value.
func stringOrList(claims map[string]any, name string) ([]string, error) {
	switch x := claims[name].(type) {
	case nil:
		if _, ok := claims[name]; ok {
			return nil, fmt.Errorf("%s claim is null", name)
		}
		return nil, nil
	case string:
		if name == "aud" {
			return []string{x}, nil
		}
		return strings.Fields(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s claim has a non-string element", name)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s claim is neither a string nor an array of strings", name)
	}
}

// Revoke stops accepting the token with this jti: cached decisions for it are dropped
// and the jti is denied until the latest expiry among them (plus leeway), or for
// DefaultRevocationTTL when no cached token carries it.
func (v *Validator) Revoke(jti string) {
	if jti == "" {
		return
	}
	now := v.now()
	var until time.Time
	if v.cache != nil {
		until = v.cache.dropJTI(jti)
	}
	if until.IsZero() {
		until = now.Add(DefaultRevocationTTL)
	}
	v.revoked.add(jti, until, now)
}

// RevokeUntil denies jti until the given time (use the token's exp plus leeway when known).
func (v *Validator) RevokeUntil(jti string, until time.Time) {
	if jti == "" {
		return
	}
	if v.cache != nil {
		v.cache.dropJTI(jti)
	}
	v.revoked.add(jti, until, v.now())
}

// RevokeAll drops every cached decision, so the next use of any token is verified
// again from scratch (for example after a bulk revocation notice).
func (v *Validator) RevokeAll() {
	if v.cache != nil {
		v.cache.clear()
	}
}

// CacheLen reports the number of cached verified tokens.
func (v *Validator) CacheLen() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// Issuer returns the issuer this validator trusts.
func (v *Validator) Issuer() string { return v.issuer }

// PeekIssuer returns the iss claim of raw WITHOUT verifying anything. It exists only to
// route a token to the Validator of its claimed issuer when several issuers are
// trusted; the chosen Validator then verifies everything, including iss.
func PeekIssuer(raw string) (string, bool) {
	if len(raw) > DefaultMaxTokenBytes {
		return "", false
	}
	d1 := strings.IndexByte(raw, '.')
	if d1 < 0 {
		return "", false
	}
	d2 := strings.IndexByte(raw[d1+1:], '.')
	if d2 < 0 {
		return "", false
	}
	payload, err := b64.DecodeString(raw[d1+1 : d1+1+d2])
	if err != nil {
		return "", false
	}
	var c struct {
		Iss *string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss == nil {
		return "", false
	}
	return *c.Iss, true
}
