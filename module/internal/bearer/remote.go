package bearer

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults for RemoteOptions.
const (
	DefaultRefreshCooldown  = time.Minute
	DefaultMinTTL           = time.Minute
	DefaultMaxTTL           = 24 * time.Hour
	DefaultTTL              = time.Hour
	DefaultMaxResponseBytes = 1 << 20
	DefaultFetchTimeout     = 10 * time.Second
	maxRedirects            = 3
)

// RemoteOptions tunes a RemoteKeySet. Zero values mean the defaults.
type RemoteOptions struct {
	// HTTPClient performs the fetches; default a client with FetchTimeout. The
	// package always installs its own redirect policy (at most 3 hops, each to an
	// allowed URL) on a copy of the client.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RefreshCooldown is the minimum time between two fetches (unknown-kid refreshes,
	// expiry refreshes and retries after failures). Default 1 minute.
	RefreshCooldown time.Duration
	// MinTTL, MaxTTL bound the Cache-Control max-age honoured; DefaultTTL applies when
	// the response has none. Defaults 1 minute, 24 hours, 1 hour.
	MinTTL, MaxTTL, DefaultTTL time.Duration
	// MaxResponseBytes bounds discovery and JWKS responses; default 1 MiB.
	MaxResponseBytes int64
	// FetchTimeout bounds one discovery+JWKS fetch; default 10 seconds.
	FetchTimeout time.Duration
	// AllowInsecureHTTP permits plain http URLs on non-loopback hosts (tests only).
	// http to a loopback host (localhost, 127.0.0.0/8, ::1) is always allowed.
	AllowInsecureHTTP bool
}

func (o RemoteOptions) withDefaults() RemoteOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshCooldown <= 0 {
		o.RefreshCooldown = DefaultRefreshCooldown
	}
	if o.MinTTL <= 0 {
		o.MinTTL = DefaultMinTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.MaxTTL < o.MinTTL {
		o.MaxTTL = o.MinTTL
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = DefaultTTL
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	var c http.Client
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	} else {
		c.Timeout = o.FetchTimeout
	}
	allow := o.AllowInsecureHTTP
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		_, err := checkURL(req.URL.String(), allow)
		return err
	}
	o.HTTPClient = &c
	return o
}

// checkURL accepts absolute https URLs, and http URLs on loopback hosts (or any host
// with allowInsecure). User info and fragments are refused.
func checkURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bearer: invalid URL %q: %v", raw, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("bearer: URL %q is not absolute", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("bearer: URL %q must not contain user info", raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("bearer: URL %q must not contain a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("bearer: URL %q must use https (plain http is only allowed for loopback hosts)", raw)
		}
	default:
		return nil, fmt.Errorf("bearer: URL %q must use https", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ProviderMetadata is the part of an OpenID Provider's discovery document the gate uses.
type ProviderMetadata struct {
	Issuer  string
	JWKSURI string
	// SigningAlgorithms is id_token_signing_alg_values_supported restricted to the
	// algorithms this package supports (no HS*, no none).
	SigningAlgorithms []string
}

// discover fetches <issuer>/.well-known/openid-configuration and checks that the
// document's issuer equals issuer exactly and that jwks_uri is an allowed URL.
func discover(ctx context.Context, issuer string, opts RemoteOptions) (*ProviderMetadata, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := fetch(ctx, opts, wellKnown)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("bearer: discovery document of %q is not valid JSON: %v", issuer, err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("bearer: discovery document issuer %s does not equal the configured issuer %q", quoteShort(doc.Issuer), issuer)
	}
	if doc.JWKSURI == "" {
		return nil, fmt.Errorf("bearer: discovery document of %q has no jwks_uri", issuer)
	}
	if _, err := checkURL(doc.JWKSURI, opts.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("bearer: discovery document of %q: jwks_uri: %w", issuer, err)
	}
	md := &ProviderMetadata{Issuer: doc.Issuer, JWKSURI: doc.JWKSURI}
	for _, a := range doc.Algs {
		if supportedAlg(a) {
			md.SigningAlgorithms = append(md.SigningAlgorithms, a)
		}
	}
	return md, nil
}

// fetch GETs u with the size bound and returns the body and the Cache-Control max-age
// (-1 when absent; 0 for no-cache/no-store).
func fetch(ctx context.Context, opts RemoteOptions, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("bearer: %v", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("bearer: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, 0, fmt.Errorf("bearer: GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, opts.MaxResponseBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("bearer: GET %s: %w", u, err)
	}
	if int64(len(body)) > opts.MaxResponseBytes {
		return nil, 0, fmt.Errorf("bearer: GET %s: response larger than %d bytes", u, opts.MaxResponseBytes)
	}
	return body, maxAge(resp.Header.Values("Cache-Control")), nil
}

// maxAge returns the max-age of Cache-Control header values, 0 for no-store/no-cache,
// and -1 when no directive applies.
func maxAge(values []string) time.Duration {
	age := time.Duration(-1)
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err == nil && n >= 0 {
					if n > int64(365*24*time.Hour/time.Second) {
						n = int64(365 * 24 * time.Hour / time.Second)
					}
					age = time.Duration(n) * time.Second
				}
			}
		}
	}
	return age
}

// RemoteKeySet is a KeySet backed by an external issuer's JWKS, cached in memory:
//   - the keys are refetched when their Cache-Control lifetime (bounded by
//     MinTTL/MaxTTL) ends, in the background while the old keys keep being served;
//   - a token with an unknown kid triggers a refresh at most once per RefreshCooldown;
//     concurrent refreshes are coalesced into one fetch, so a flood of random kids costs
//     at most one fetch per cooldown;
//   - when the issuer is unreachable or answers garbage, the last good keys are kept.
//
// It is safe for concurrent use.
type RemoteKeySet struct {
	opts      RemoteOptions
	issuer    string // discovery source, when jwksURL is not given
	configURL string // JWKS URL given at construction

	snap atomic.Pointer[keySnapshot]
	gen  atomic.Uint64

	mu          sync.Mutex
	jwksURL     string
	meta        *ProviderMetadata
	lastAttempt time.Time
	lastErr     error
	inflight    *flight
	fetches     atomic.Int64
}

type keySnapshot struct {
	all     []jose.JSONWebKey
	byKID   map[string][]jose.JSONWebKey
	noKID   []jose.JSONWebKey
	ids     map[string]string // kid+thumbprint identity set, for the generation
	expires time.Time
}

type flight struct {
	done chan struct{}
	err  error
}

// NewRemoteKeySet returns a key set fetched from a JWKS URL. Nothing is fetched until
// the first Keys call.
func NewRemoteKeySet(jwksURL string, opts RemoteOptions) (*RemoteKeySet, error) {
	opts = opts.withDefaults()
	if _, err := checkURL(jwksURL, opts.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	return &RemoteKeySet{opts: opts, configURL: jwksURL, jwksURL: jwksURL}, nil
}

// NewDiscoveryKeySet returns a key set whose JWKS URL is found by OpenID Connect
// discovery of issuer (the document's issuer must equal issuer exactly). Discovery runs
// lazily with the first fetch and is retried with later fetches until it succeeds.
func NewDiscoveryKeySet(issuer string, opts RemoteOptions) (*RemoteKeySet, error) {
	opts = opts.withDefaults()
	if _, err := checkURL(issuer, opts.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	return &RemoteKeySet{opts: opts, issuer: issuer}, nil
}

// Generation implements Generational: it increases when a key served before is
// removed or replaced by a refresh (adding keys does not change it).
func (r *RemoteKeySet) Generation() uint64 { return r.gen.Load() }

// Metadata returns the discovery metadata once discovery has succeeded.
func (r *RemoteKeySet) Metadata() (ProviderMetadata, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meta == nil {
		return ProviderMetadata{}, false
	}
	return *r.meta, true
}

// Fetches reports how many fetch rounds (discovery and/or JWKS) were started.
func (r *RemoteKeySet) Fetches() int64 { return r.fetches.Load() }

// LastError returns the error of the latest fetch round (nil after a success).
func (r *RemoteKeySet) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Keys implements KeySet.
func (r *RemoteKeySet) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	now := r.opts.Now()
	s := r.snap.Load()
	if s == nil {
		err := r.refresh(ctx, now, true)
		if s = r.snap.Load(); s == nil {
			if err == nil {
				err = r.LastError()
			}
			if err == nil {
				err = errors.New("no keys fetched yet")
			}
			return nil, err
		}
	} else if !now.Before(s.expires) {
		r.refresh(ctx, now, false) // serve the current keys meanwhile
	}
	if ks := s.lookup(kid); len(ks) > 0 || kid == "" {
		return ks, nil
	}
	// Unknown kid: maybe the issuer rotated. One refresh per cooldown, coalesced; when
	// it is suppressed or fails, the lookup below simply finds nothing new.
	r.refresh(ctx, now, true)
	return r.snap.Load().lookup(kid), nil
}

func (s *keySnapshot) lookup(kid string) []jose.JSONWebKey {
	if kid == "" {
		return s.all
	}
	ks := s.byKID[kid]
	if len(s.noKID) == 0 {
		return ks
	}
	return append(append([]jose.JSONWebKey(nil), ks...), s.noKID...)
}

var errCooldown = errors.New("bearer: key refresh suppressed by cooldown")

// refresh starts a fetch round unless one is running (then it joins it) or the
// previous one began less than RefreshCooldown ago. With wait it blocks until the
// round ends or ctx is done. The fetch itself does not depend on ctx's cancellation,
// so one impatient caller cannot fail the round for the others.
func (r *RemoteKeySet) refresh(ctx context.Context, now time.Time, wait bool) error {
	r.mu.Lock()
	f := r.inflight
	if f == nil {
		if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.opts.RefreshCooldown {
			r.mu.Unlock()
			return errCooldown
		}
		r.lastAttempt = now
		f = &flight{done: make(chan struct{})}
		r.inflight = f
		r.fetches.Add(1)
		go r.run(context.WithoutCancel(ctx), f)
	}
	r.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case <-f.done:
		if f.err != nil {
			return f.err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *RemoteKeySet) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	err := r.fetchKeys(ctx)
	r.mu.Lock()
	r.lastErr = err
	r.inflight = nil
	r.mu.Unlock()
	f.err = err
	close(f.done)
}

func (r *RemoteKeySet) fetchKeys(ctx context.Context) error {
	r.mu.Lock()
	jwksURL := r.jwksURL
	r.mu.Unlock()
	if jwksURL == "" {
		md, err := discover(ctx, r.issuer, r.opts)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.meta, r.jwksURL = md, md.JWKSURI
		r.mu.Unlock()
		jwksURL = md.JWKSURI
	}
	body, age, err := fetch(ctx, r.opts, jwksURL)
	if err != nil {
		return err
	}
	keys, skipped, err := ParseJWKS(body)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("bearer: JWKS %s has no usable verification key (%s)", jwksURL, strings.Join(skipped, "; "))
	}
	ttl := r.opts.DefaultTTL
	if age >= 0 {
		ttl = min(max(age, r.opts.MinTTL), r.opts.MaxTTL)
	}
	s := &keySnapshot{
		all:     keys,
		byKID:   make(map[string][]jose.JSONWebKey, len(keys)),
		ids:     make(map[string]string, len(keys)),
		expires: r.opts.Now().Add(ttl),
	}
	for _, k := range keys {
		if k.KeyID == "" {
			s.noKID = append(s.noKID, k)
		} else {
			s.byKID[k.KeyID] = append(s.byKID[k.KeyID], k)
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return fmt.Errorf("bearer: JWKS %s: thumbprint: %v", jwksURL, err)
		}
		s.ids[k.KeyID+"\x00"+string(tp)+"\x00"+k.Algorithm] = k.KeyID
	}
	if old := r.snap.Load(); old != nil {
		for id := range old.ids {
			if _, ok := s.ids[id]; !ok {
				r.gen.Add(1) // a key we served is gone or changed
				break
			}
		}
	}
	r.snap.Store(s)
	return nil
}
