package rp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// Errors returned by Flow.Callback. Provider-reported errors are *ProviderError.
var (
	// ErrNoPendingLogin means the callback came without a usable pending-login
	// cookie: none at all, tampered, or expired. Typically a bookmarked or
	// replayed callback URL, or a login that took longer than PendingTTL.
	ErrNoPendingLogin = errors.New("login: no pending login in this browser")
	// ErrStateMismatch means the state parameter matches none of this
	// browser's pending logins (CSRF, replay, or a login abandoned long ago).
	ErrStateMismatch = errors.New("login: state does not match a pending login")
	// ErrIssuerMismatch means the callback's iss parameter (RFC 9207) names
	// another issuer than the provider's.
	ErrIssuerMismatch = errors.New("login: callback iss is not the provider's issuer")
	// ErrMissingCode means a callback without error carried no single code.
	ErrMissingCode = errors.New("login: callback carries no authorization code")
	// ErrExchange wraps a failed code exchange (network, invalid_grant,
	// unverifiable ID token ...).
	ErrExchange = errors.New("login: code exchange failed")
	// ErrNonceMismatch means the ID token's nonce is not the one this login
	// sent (a token injected from another login).
	ErrNonceMismatch = errors.New("login: ID token nonce does not match")
	// ErrNoRefreshToken means a refresh was asked for a session without a
	// refresh token.
	ErrNoRefreshToken = errors.New("login: no refresh token")
	// ErrSubjectChanged means a refreshed ID token names another user.
	ErrSubjectChanged = errors.New("login: refreshed ID token has another subject")
	// ErrNoRevocation means the provider advertises no revocation endpoint.
	ErrNoRevocation = errors.New("login: the provider has no revocation endpoint")
)

// ProviderError is an error the provider reported on the callback
// (error=access_denied, login_required, ...). Code and Description come from
// the provider and are untrusted text: escape them before display.
type ProviderError struct {
	Code        string
	Description string
	URI         string
}

func (e *ProviderError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("login: provider returned %s: %s", e.Code, e.Description)
	}
	return "login: provider returned " + e.Code
}

// AccessDenied reports whether the user or the provider refused the login.
func (e *ProviderError) AccessDenied() bool { return e.Code == "access_denied" }

// Flow defaults.
const (
	DefaultPendingTTL  = 10 * time.Minute
	DefaultMaxPending  = 4
	DefaultLoginCookie = "gatehouse-login"
)

// FlowConfig configures a Flow.
type FlowConfig struct {
	// Provider is the OpenID provider to log in with. Required.
	Provider Provider
	// Keys seal the pending-login cookie (under their own purpose, "login").
	// Required.
	Keys *seal.Keys
	// RedirectURI is the absolute callback URL on the protected site, as
	// registered at the provider. Required.
	RedirectURI string
	// Secure marks the pending-login cookie Secure with the "__Host-" prefix;
	// false only for loopback development (seal.SecureFor).
	Secure bool
	// CookieName is the pending-login cookie's base name; default
	// "gatehouse-login" ("__Host-gatehouse-login" when Secure).
	CookieName string
	// PendingTTL is how long a started login may take; default 10 minutes.
	PendingTTL time.Duration
	// MaxPending bounds the logins pending at once in one browser (several
	// tabs); the oldest is dropped beyond it. Default 4.
	MaxPending int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Random is the entropy source; default crypto/rand.
	Random io.Reader
}

// Flow runs the login round trip for one protected site: Start sends the
// browser to the provider, Callback completes the login when it comes back.
// It is safe for concurrent use.
type Flow struct {
	provider    Provider
	redirectURI string
	sealer      *seal.Sealer
	ttl         time.Duration
	maxPending  int
	now         func() time.Time
	random      io.Reader
}

// pending is one started login, kept in the pending-login cookie.
type pending struct {
	State       string `json:"s"`
	Nonce       string `json:"n"`
	Verifier    string `json:"v"`
	ReturnTo    string `json:"r"`
	RedirectURI string `json:"u"`
	Created     int64  `json:"c"`
}

type pendingSet struct {
	P []pending `json:"p"`
}

// NewFlow returns a Flow for cfg.
func NewFlow(cfg FlowConfig) (*Flow, error) {
	if cfg.Provider == nil {
		return nil, errors.New("login: a provider is required")
	}
	if cfg.RedirectURI == "" {
		return nil, errors.New("login: a redirect URI is required")
	}
	if cfg.PendingTTL == 0 {
		cfg.PendingTTL = DefaultPendingTTL
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPending < 1 || cfg.MaxPending > 16 {
		return nil, fmt.Errorf("login: max pending logins %d must be between 1 and 16", cfg.MaxPending)
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultLoginCookie
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	sealer, err := seal.NewSealer(cfg.Keys, seal.Config{
		Name:      cfg.CookieName,
		Secure:    cfg.Secure,
		MaxAge:    cfg.PendingTTL,
		MaxChunks: 3,
		Purpose:   "login",
		Now:       cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	return &Flow{
		provider:    cfg.Provider,
		redirectURI: cfg.RedirectURI,
		sealer:      sealer,
		ttl:         cfg.PendingTTL,
		maxPending:  cfg.MaxPending,
		now:         cfg.Now,
		random:      cfg.Random,
	}, nil
}

// CookieName returns the pending-login cookie's name.
func (f *Flow) CookieName() string { return f.sealer.Name() }

// StartOptions adjust the login Start begins.
type StartOptions struct {
	// Prompt is sent to the provider as the OpenID Connect prompt parameter:
	// "login" asks for the user's credentials even when the provider has a
	// session (signing in as someone else). Empty: no prompt.
	Prompt string
	// Restart marks the login as a restart after a callback that matched no
	// pending login in this browser (Restartable). Its callback, should it
	// match nothing either, is not Restartable: a browser that keeps no
	// cookies would otherwise go round between the site and the provider.
	Restart bool
}

// restartPrefix begins the state of a restarted login. "." is not in the
// base64url alphabet of the random part, so no other state starts with it.
const restartPrefix = "r."

// Start begins a login with no options; see StartWith.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, returnTo string) error {
	return f.StartWith(w, r, returnTo, StartOptions{})
}

// StartWith begins a login: it makes a fresh state, nonce and PKCE verifier
// (256 bits each), records them with returnTo (passed through
// SafeReturnPath) in the pending-login cookie next to the browser's other
// live pending logins, and answers 302 to the provider's authorization URL
// with Cache-Control: no-store. On error nothing is written and the caller
// answers 500.
func (f *Flow) StartWith(w http.ResponseWriter, r *http.Request, returnTo string, o StartOptions) error {
	var secrets [3]string
	for i := range secrets {
		s, err := f.randomString()
		if err != nil {
			return err
		}
		secrets[i] = s
	}
	if o.Restart {
		secrets[0] = restartPrefix + secrets[0]
	}
	now := f.now()
	p := pending{
		State:       secrets[0],
		Nonce:       secrets[1],
		Verifier:    secrets[2],
		ReturnTo:    SafeReturnPath(returnTo),
		RedirectURI: f.redirectURI,
		Created:     now.Unix(),
	}
	set := f.load(r, now)
	set.P = append(set.P, p)
	if n := len(set.P) - f.maxPending; n > 0 {
		set.P = set.P[n:]
	}
	// Long return paths can make several pending logins outgrow the cookie:
	// drop the oldest until it fits (the newest alone always does).
	for {
		err := f.sealer.Seal(w, set, now.Add(f.ttl))
		if err == nil {
			break
		}
		if !errors.Is(err, seal.ErrTooLarge) || len(set.P) == 1 {
			return fmt.Errorf("login: sealing pending login: %w", err)
		}
		set.P = set.P[1:]
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, f.provider.AuthCodeURL(p.State, p.Nonce, challengeS256(p.Verifier), p.RedirectURI, o.Prompt), http.StatusFound)
	return nil
}

// Restartable reports whether a callback that failed with err may be
// answered by starting the login again (StartOptions.Restart) rather than
// with an error page: it matched no pending login in this browser (its
// login cookie expired while the provider's form was open, or it was
// bookmarked or replayed), the provider reported no error (the error is
// the user's to see, and asking again would get it again), and it is not
// the callback of a login that was itself a restart. The code it carries,
// if any, is never redeemed: a restart makes a new login.
func Restartable(r *http.Request, err error) bool {
	if !errors.Is(err, ErrNoPendingLogin) && !errors.Is(err, ErrStateMismatch) {
		return false
	}
	q := r.URL.Query()
	return !q.Has("error") && !strings.HasPrefix(q.Get("state"), restartPrefix)
}

// RestartFailed reports whether r is the callback of a restarted login that
// matched no pending login either: the browser most likely keeps no cookies
// for the site.
func RestartFailed(r *http.Request, err error) bool {
	if !errors.Is(err, ErrNoPendingLogin) && !errors.Is(err, ErrStateMismatch) {
		return false
	}
	return strings.HasPrefix(r.URL.Query().Get("state"), restartPrefix)
}

// Callback completes a login on the redirect back from the provider. It
// finds the pending login whose state equals the state parameter (constant
// time), consumes it (so the same callback cannot be replayed in this
// browser), surfaces a provider error parameter as *ProviderError, checks an
// RFC 9207 iss parameter when the provider has an Issuer() method, exchanges
// the code with the PKCE verifier and checks the ID token's nonce.
//
// returnTo is the sanitised path given to Start; it is returned whenever a
// pending login matched, also with an error, so the caller may retry towards
// it. Callback writes only Set-Cookie headers; the caller writes the response.
func (f *Flow) Callback(w http.ResponseWriter, r *http.Request) (tokens *Tokens, returnTo string, err error) {
	now := f.now()
	var set pendingSet
	if err := f.sealer.Open(r, &set); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrNoPendingLogin, err)
	}
	q := r.URL.Query()
	states := q["state"]
	if len(states) != 1 || states[0] == "" {
		return nil, "", ErrStateMismatch
	}
	match := -1
	for i, p := range set.P {
		live := f.live(p, now)
		if subtle.ConstantTimeCompare([]byte(p.State), []byte(states[0])) == 1 && live {
			match = i
		}
	}
	if match < 0 {
		return nil, "", ErrStateMismatch
	}
	p := set.P[match]
	f.consume(w, r, set, match, now)

	if code := q.Get("error"); code != "" {
		return nil, p.ReturnTo, &ProviderError{Code: code, Description: q.Get("error_description"), URI: q.Get("error_uri")}
	}
	if iss := q["iss"]; len(iss) > 0 {
		ip, ok := f.provider.(interface{ Issuer() string })
		if len(iss) != 1 || (ok && iss[0] != ip.Issuer()) {
			return nil, p.ReturnTo, ErrIssuerMismatch
		}
	}
	codes := q["code"]
	if len(codes) != 1 || codes[0] == "" {
		return nil, p.ReturnTo, ErrMissingCode
	}
	tokens, err = f.provider.Exchange(r.Context(), codes[0], p.Verifier, p.RedirectURI)
	if err != nil {
		return nil, p.ReturnTo, fmt.Errorf("%w: %w", ErrExchange, err)
	}
	if tokens == nil || tokens.IDToken == "" || subtle.ConstantTimeCompare([]byte(tokens.Nonce), []byte(p.Nonce)) != 1 {
		return nil, p.ReturnTo, ErrNonceMismatch
	}
	return tokens, p.ReturnTo, nil
}

// load returns the browser's live pending logins (none if the cookie is
// missing or unusable).
func (f *Flow) load(r *http.Request, now time.Time) pendingSet {
	var set pendingSet
	if err := f.sealer.Open(r, &set); err != nil {
		return pendingSet{}
	}
	live := set.P[:0]
	for _, p := range set.P {
		if f.live(p, now) {
			live = append(live, p)
		}
	}
	set.P = live
	return set
}

func (f *Flow) live(p pending, now time.Time) bool {
	return now.Before(time.Unix(p.Created, 0).Add(f.ttl))
}

// consume removes entry i from set and rewrites (or clears) the cookie.
func (f *Flow) consume(w http.ResponseWriter, r *http.Request, set pendingSet, i int, now time.Time) {
	rest := make([]pending, 0, len(set.P)-1)
	newest := int64(0)
	for j, p := range set.P {
		if j == i || !f.live(p, now) {
			continue
		}
		rest = append(rest, p)
		newest = max(newest, p.Created)
	}
	if len(rest) == 0 {
		f.sealer.Clear(w, r)
		return
	}
	if err := f.sealer.Seal(w, pendingSet{P: rest}, time.Unix(newest, 0).Add(f.ttl)); err != nil {
		f.sealer.Clear(w, r)
	}
}

func (f *Flow) randomString() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(f.random, b[:]); err != nil {
		return "", fmt.Errorf("login: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// challengeS256 is the RFC 7636 S256 code challenge for verifier.
func challengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
