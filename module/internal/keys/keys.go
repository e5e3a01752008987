package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Supported signing algorithms.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Algorithms lists the algorithms a domain may sign with.
var Algorithms = []string{RS256, ES256, EdDSA}

// Timing of rotation with several instances on one store.
const (
	// MinRotation is the shortest rotation period. Its publish lead (15 s)
	// leaves every instance three reads of the store before a new key signs.
	MinRotation = time.Minute
	// maxPublishAhead caps the publish lead of long rotation periods: an
	// hour is far more than any instance needs to read a new key, and more
	// than the five minutes relying parties may cache the JWKS.
	maxPublishAhead = time.Hour
	// UnknownKIDCooldown is the least time between two store reads caused
	// by tokens with a kid the manager does not know, so a flood of made-up
	// kids cannot hammer the database.
	UnknownKIDCooldown = 10 * time.Second
	// clockSkew is how far another instance's clock may run ahead of this
	// one's: when no key has started signing by this instance's clock, a key
	// that starts within clockSkew counts as started (another instance made
	// it active at once).
	clockSkew = time.Minute
	// rereadTimeout bounds a store read caused by an unknown kid.
	rereadTimeout = 10 * time.Second
	// maintainTimeout bounds each load of Maintain, so a store that hangs
	// (a lost connection) does not stop maintenance for good.
	maintainTimeout = 30 * time.Second
)

// PublishAhead is how long before it starts signing a scheduled key is
// stored, and so published in every instance's JWKS and known to every
// instance's gates: a quarter of the rotation period, at most an hour.
func PublishAhead(rotateEvery time.Duration) time.Duration {
	return min(rotateEvery/4, maxPublishAhead)
}

// Config says how a domain's keys are made and rotated.
type Config struct {
	// Algorithm of new keys: RS256 (default), ES256 or EdDSA.
	Algorithm string
	// RotateEvery is how long a key signs before a new one takes over.
	// Zero means 90 days; at least MinRotation. The next key is published
	// PublishAhead(RotateEvery) before it starts signing.
	RotateEvery time.Duration
	// MaxTokenLifetime is the longest lifetime of any token signed by the
	// domain; a retired key stays published this long after it stops signing.
	// Zero means 24 hours.
	MaxTokenLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRotate, if set, is called when the active signing key changes
	// (including the first key), with the previous kid ("" at first start).
	OnRotate func(oldKID, newKID string)
	// Encryption, if set, seals new private keys at rest and opens sealed
	// ones. Keys stored in plaintext before it was set are still read; when
	// the active key is one of them, Load makes a new, sealed key active at
	// once (the old one stays published until its tokens have expired).
	Encryption *Encryption
}

// Manager holds a domain's keys in memory, backed by the store.
//
// A key's CreatedAt is the instant it starts signing; it signs until its
// NotAfter, or until a later key starts. A successor is stored PublishAhead
// before its predecessor stops, and every instance reads the store at that
// instant (Maintain), so each publishes it — in its JWKS and to its gates
// (Keys) — a whole lead before any instance signs with it. Only a key that
// replaces one that cannot sign (the domain's first, one after every key has
// stopped, a sealed one replacing a plaintext one) signs at once. Keys stay
// published until their ExpiresAt.
type Manager struct {
	st     store.Keys
	domain string
	cfg    Config
	lead   time.Duration // PublishAhead(cfg.RotateEvery)

	mu       sync.RWMutex
	state    *keyState // replaced whole on reload
	reported string    // the signing kid last passed to OnRotate
	gen      atomic.Uint64
	reads    atomic.Uint64 // numbers store reads, so an older read never replaces a newer one

	rmu        sync.Mutex // guards the two fields below
	reread     *flight    // the store read an unknown kid started, if running
	lastReread time.Time  // when the last such read started
}

type keyState struct {
	read   uint64      // the store read this state comes from
	active *signingKey // the key that signed when the state was read
	// next is a published key that starts signing after active (at its
	// CreatedAt), or nil.
	next   *signingKey
	recs   []store.SigningKey // the unexpired keys, for scheduling
	byKID  map[string]*signingKey
	jwks   []byte // marshalled public JWKS
	public []jose.JSONWebKey
}

// signer is the key that signs at now.
func (s *keyState) signer(now time.Time) *signingKey {
	if s.next != nil && !now.Before(s.next.rec.CreatedAt) {
		return s.next
	}
	return s.active
}

// flight is one store read that callers wait for together.
type flight struct{ done chan struct{} }

type signingKey struct {
	rec    store.SigningKey
	signer crypto.Signer
	public jose.JSONWebKey
	// joseSigners caches one jose.Signer per token type header.
	mu          sync.Mutex
	joseSigners map[string]jose.Signer
}

// New returns a manager for one domain. Call Load before use.
func New(st store.Keys, domain string, cfg Config) (*Manager, error) {
	if cfg.Algorithm == "" {
		cfg.Algorithm = RS256
	}
	switch cfg.Algorithm {
	case RS256, ES256, EdDSA:
	default:
		return nil, fmt.Errorf("signing algorithm %q is not supported; use RS256, ES256 or EdDSA", cfg.Algorithm)
	}
	if cfg.RotateEvery == 0 {
		cfg.RotateEvery = 90 * 24 * time.Hour
	}
	if cfg.MaxTokenLifetime == 0 {
		cfg.MaxTokenLifetime = 24 * time.Hour
	}
	if cfg.RotateEvery < MinRotation {
		return nil, fmt.Errorf("key rotation period %s is too short: a new key is published a quarter of the period before it signs, so that every instance has read it by then; use at least %s", cfg.RotateEvery, MinRotation)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{st: st, domain: domain, cfg: cfg, lead: PublishAhead(cfg.RotateEvery)}, nil
}

// Algorithm is the algorithm new tokens are signed with.
func (m *Manager) Algorithm() string {
	if s := m.current(); s != nil {
		return s.signer(m.cfg.Now()).rec.Alg
	}
	return m.cfg.Algorithm
}

// Generation changes every time the set of keys changes.
func (m *Manager) Generation() uint64 { return m.gen.Load() }

// Load reads the domain's keys, adding one if none can sign or the signing
// key's successor is due to be published, and makes them current.
func (m *Manager) Load(ctx context.Context) error {
	now := m.cfg.Now()
	read := m.reads.Add(1)
	recs, err := m.st.SigningKeys(ctx, m.domain)
	if err != nil {
		return fmt.Errorf("loading signing keys of domain %q: %w", m.domain, err)
	}
	if add, _ := m.due(recs, now); add {
		read = m.reads.Add(1)
		recs, err = m.st.RotateSigningKeys(ctx, m.domain, m.decide)
		if err != nil {
			return fmt.Errorf("rotating signing keys of domain %q: %w", m.domain, err)
		}
	}
	return m.install(read, recs, now)
}

// wantsSealed reports whether k is a plaintext key while encryption is on.
func (m *Manager) wantsSealed(k *store.SigningKey) bool {
	return m.cfg.Encryption != nil && !isSealed(k.PrivateKey)
}

// Rotate adds a new key ahead of schedule. Like a scheduled one, it is
// published first and starts signing PublishAhead later (or when the
// current key stops, if that is sooner), so every instance knows it before
// any token carries it; the previous key stays published until the tokens
// it signed have expired. A domain without a key that can sign gets one
// that signs at once. If another instance rotated since this one last read
// the keys, or a successor is already published, Rotate adds nothing.
func (m *Manager) Rotate(ctx context.Context) error {
	now := m.cfg.Now()
	seen := ""
	if s := m.current(); s != nil {
		seen = s.signer(now).rec.KID
	}
	read := m.reads.Add(1)
	recs, err := m.st.RotateSigningKeys(ctx, m.domain, func(current []store.SigningKey) ([]store.SigningKey, error) {
		from := now
		if a := pickActive(current, m.cfg.Algorithm, now); a != nil {
			if (seen != "" && a.KID != seen) || successor(current, a) != nil {
				return nil, nil
			}
			from = earlier(now.Add(m.lead), a.NotAfter)
		}
		k, err := m.generate(from)
		if err != nil {
			return nil, err
		}
		return []store.SigningKey{k}, nil
	})
	if err != nil {
		return fmt.Errorf("rotating signing keys of domain %q: %w", m.domain, err)
	}
	return m.install(read, recs, now)
}

// decide adds a key when, inside the store's lock, one is still due.
// Several instances may call it; only the first adds a key.
func (m *Manager) decide(current []store.SigningKey) ([]store.SigningKey, error) {
	add, from := m.due(current, m.cfg.Now())
	if !add {
		return nil, nil
	}
	k, err := m.generate(from)
	if err != nil {
		return nil, err
	}
	return []store.SigningKey{k}, nil
}

// due reports whether recs need a new key at now, and when it starts
// signing:
//   - no key can sign (the domain's first start, or every key has stopped):
//     a key that signs at once;
//   - the signing key is stored in plaintext while encryption is on: a
//     sealed key that signs at once (Config.Encryption);
//   - the signing key stops within the publish lead and no successor is
//     published: its successor, which starts when it stops. Maintain loads
//     at the instant the lead begins, so the successor is published a whole
//     lead ahead; only if no instance could reach the store then is the
//     lead shorter (gates still find the key, see Keys).
func (m *Manager) due(recs []store.SigningKey, now time.Time) (add bool, from time.Time) {
	a := pickActive(recs, m.cfg.Algorithm, now)
	switch {
	case a == nil, m.wantsSealed(a):
		return true, now
	case successor(recs, a) != nil, now.Before(a.NotAfter.Add(-m.lead)):
		return false, time.Time{}
	}
	return true, a.NotAfter
}

// pickActive returns the key of alg that signs at now: the newest that has
// started (CreatedAt) and not stopped (NotAfter). When none has started by
// this instance's clock, a key starting within clockSkew counts.
func pickActive(recs []store.SigningKey, alg string, now time.Time) *store.SigningKey {
	if k := newestStarted(recs, alg, now, now); k != nil {
		return k
	}
	return newestStarted(recs, alg, now.Add(clockSkew), now)
}

func newestStarted(recs []store.SigningKey, alg string, startedBy, now time.Time) *store.SigningKey {
	var best *store.SigningKey
	for i := range recs {
		r := &recs[i]
		if r.Alg != alg || r.CreatedAt.After(startedBy) || !now.Before(r.NotAfter) {
			continue
		}
		if best == nil || later(r, best) {
			best = r
		}
	}
	return best
}

// successor returns the newest published key of a's algorithm that starts
// after a, or nil.
func successor(recs []store.SigningKey, a *store.SigningKey) *store.SigningKey {
	var best *store.SigningKey
	for i := range recs {
		r := &recs[i]
		if r.Alg == a.Alg && later(r, a) && (best == nil || later(r, best)) {
			best = r
		}
	}
	return best
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// later orders keys by start, then kid, so every instance ranks them alike.
func later(a, b *store.SigningKey) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.KID > b.KID
}

// generate makes a key that signs from from until a rotation period later.
func (m *Manager) generate(from time.Time) (store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch m.cfg.Algorithm {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid := make([]byte, 12)
	if _, err := rand.Read(kid); err != nil {
		return store.SigningKey{}, err
	}
	notAfter := from.Add(m.cfg.RotateEvery)
	kidText := base64.RawURLEncoding.EncodeToString(kid)
	if m.cfg.Encryption != nil {
		if der, err = m.cfg.Encryption.seal(m.domain, kidText, der); err != nil {
			return store.SigningKey{}, err
		}
	}
	return store.SigningKey{
		Domain:     m.domain,
		KID:        kidText,
		Alg:        m.cfg.Algorithm,
		PrivateKey: der,
		CreatedAt:  from,
		NotAfter:   notAfter,
		ExpiresAt:  notAfter.Add(m.cfg.MaxTokenLifetime),
	}, nil
}

// install makes recs, as read by store read number read, current, unless a
// later read was installed already.
func (m *Manager) install(read uint64, recs []store.SigningKey, now time.Time) error {
	st := &keyState{read: read, recs: recs, byKID: make(map[string]*signingKey, len(recs))}
	for _, r := range recs {
		if !now.Before(r.ExpiresAt) {
			continue
		}
		k, err := parseKey(r, m.cfg.Encryption)
		if err != nil {
			return fmt.Errorf("signing key %s of domain %q: %w", r.KID, m.domain, err)
		}
		st.byKID[r.KID] = k
		st.public = append(st.public, k.public)
	}
	a := pickActive(recs, m.cfg.Algorithm, now)
	if a == nil {
		return fmt.Errorf("domain %q has no active signing key", m.domain)
	}
	st.active = st.byKID[a.KID]
	if n := successor(recs, a); n != nil {
		st.next = st.byKID[n.KID]
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: st.public})
	if err != nil {
		return err
	}
	st.jwks = jwks
	m.mu.Lock()
	old := m.state
	if old != nil && old.read > read {
		m.mu.Unlock()
		return nil // a later read is current already
	}
	m.state = st
	oldKID, newKID := m.reported, st.active.rec.KID
	m.reported = newKID
	m.mu.Unlock()
	if old == nil || !sameKIDs(old, st) {
		m.gen.Add(1)
	}
	if m.cfg.OnRotate != nil && oldKID != newKID {
		m.cfg.OnRotate(oldKID, newKID)
	}
	return nil
}

func sameKIDs(a, b *keyState) bool {
	if len(a.byKID) != len(b.byKID) {
		return false
	}
	for kid := range a.byKID {
		if _, ok := b.byKID[kid]; !ok {
			return false
		}
	}
	return true
}

func parseKey(r store.SigningKey, enc *Encryption) (*signingKey, error) {
	der := r.PrivateKey
	if isSealed(der) {
		var err error
		if der, err = enc.open(r.Domain, r.KID, der); err != nil {
			return nil, err
		}
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, errors.New("stored key is not a signing key")
	}
	switch signer.(type) {
	case *rsa.PrivateKey:
		if r.Alg != RS256 {
			return nil, fmt.Errorf("RSA key stored for %s", r.Alg)
		}
	case *ecdsa.PrivateKey:
		if r.Alg != ES256 {
			return nil, fmt.Errorf("EC key stored for %s", r.Alg)
		}
	case ed25519.PrivateKey:
		if r.Alg != EdDSA {
			return nil, fmt.Errorf("Ed25519 key stored for %s", r.Alg)
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T", signer)
	}
	return &signingKey{
		rec:         r,
		signer:      signer,
		public:      jose.JSONWebKey{Key: signer.Public(), KeyID: r.KID, Algorithm: r.Alg, Use: "sig"},
		joseSigners: map[string]jose.Signer{},
	}, nil
}

func (m *Manager) current() *keyState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state
}

// ErrNotLoaded is returned before Load succeeded.
var ErrNotLoaded = errors.New("keys: not loaded")

// Sign serialises claims (any JSON-marshallable value, or pre-marshalled
// json.RawMessage/[]byte) and signs them with the active key as a compact
// JWS with the given typ header ("JWT", "at+jwt", ...).
func (m *Manager) Sign(claims any, typ string) (string, error) {
	s := m.current()
	if s == nil {
		return "", ErrNotLoaded
	}
	var payload []byte
	switch c := claims.(type) {
	case []byte:
		payload = c
	case json.RawMessage:
		payload = c
	default:
		var err error
		if payload, err = json.Marshal(claims); err != nil {
			return "", err
		}
	}
	signer, err := s.signer(m.cfg.Now()).joseSigner(typ)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func (k *signingKey) joseSigner(typ string) (jose.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.joseSigners[typ]; ok {
		return s, nil
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), k.rec.KID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.rec.Alg), Key: k.signer}, opts)
	if err != nil {
		return nil, err
	}
	k.joseSigners[typ] = s
	return s, nil
}

// ActiveKID is the kid of the key that signs now.
func (m *Manager) ActiveKID() string {
	if s := m.current(); s != nil {
		return s.signer(m.cfg.Now()).rec.KID
	}
	return ""
}

// JWKS returns the published key set (public keys only), marshalled: every
// unexpired key, including one published ahead that does not sign yet.
func (m *Manager) JWKS() []byte {
	if s := m.current(); s != nil {
		return s.jwks
	}
	return []byte(`{"keys":[]}`)
}

// PublicKeys returns every published public key.
func (m *Manager) PublicKeys() []jose.JSONWebKey {
	if s := m.current(); s != nil {
		return s.public
	}
	return nil
}

// Keys implements the bearer key-set interface in-process: the public key
// with that kid (all keys when kid is empty).
//
// A kid it does not know makes it read the store again before answering —
// another instance may have added a key that signs at once (a domain's
// first, or one replacing a key that could no longer sign) — at most once
// per UnknownKIDCooldown, with concurrent callers waiting for the same read.
func (m *Manager) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	s := m.current()
	if s == nil {
		return nil, ErrNotLoaded
	}
	if kid == "" {
		return s.public, nil
	}
	if k, ok := s.byKID[kid]; ok {
		return []jose.JSONWebKey{k.public}, nil
	}
	m.rereadForUnknownKID(ctx)
	if k, ok := m.current().byKID[kid]; ok {
		return []jose.JSONWebKey{k.public}, nil
	}
	return nil, nil
}

// rereadForUnknownKID starts a store read unless one is running (then it
// joins it) or the last began less than UnknownKIDCooldown ago, and waits
// for it or for ctx. The read does not depend on ctx's cancellation, so one
// impatient caller cannot fail it for the others. A failed read leaves the
// keys as they were: the unknown kid stays unknown.
func (m *Manager) rereadForUnknownKID(ctx context.Context) {
	now := m.cfg.Now()
	m.rmu.Lock()
	f := m.reread
	if f == nil {
		if !m.lastReread.IsZero() && now.Sub(m.lastReread) < UnknownKIDCooldown {
			m.rmu.Unlock()
			return
		}
		m.lastReread = now
		f = &flight{done: make(chan struct{})}
		m.reread = f
		go m.rereadKeys(context.WithoutCancel(ctx), f)
	}
	m.rmu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

func (m *Manager) rereadKeys(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, rereadTimeout)
	defer cancel()
	read := m.reads.Add(1)
	if recs, err := m.st.SigningKeys(ctx, m.domain); err == nil {
		_ = m.install(read, recs, m.cfg.Now()) // a set without a signing key is not installed
	}
	m.rmu.Lock()
	m.reread = nil
	m.rmu.Unlock()
	close(f.done)
}

// Maintain reloads and rotates keys until ctx is done, so a successor is
// published when it is due, keys added by another instance are picked up,
// published keys start signing and expired keys leave the JWKS. It loads
// at every instant one of these is due for a key it knows — in particular
// when the signing key is a publish lead from stopping, so every instance
// reads (or adds) its successor then, a whole lead before it signs — and
// at least every interval (at most a third of the publish lead: keys an
// instance added at another time are read well before they sign). onError
// receives failures (they never stop the loop).
func (m *Manager) Maintain(ctx context.Context, interval time.Duration, onError func(error)) {
	poll := m.pollInterval(interval)
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		now := m.cfg.Now()
		t.Reset(m.nextCheck(now, poll).Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lctx, cancel := context.WithTimeout(ctx, maintainTimeout)
			err := m.Load(lctx)
			cancel()
			if err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// pollInterval is the longest time between two loads of Maintain.
func (m *Manager) pollInterval(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = time.Minute
	}
	return min(interval, m.lead/3)
}

// nextCheck is when Maintain loads next: poll after now at the latest, and
// earlier when something is due for a key it knows — its successor to be
// published (a lead before it stops), its start, its stop, its expiry.
func (m *Manager) nextCheck(now time.Time, poll time.Duration) time.Time {
	next := now.Add(poll)
	s := m.current()
	if s == nil {
		return next
	}
	for _, r := range s.recs {
		for _, at := range [...]time.Time{r.NotAfter.Add(-m.lead), r.CreatedAt, r.NotAfter, r.ExpiresAt} {
			if at.After(now) && at.Before(next) {
				next = at
			}
		}
	}
	return next
}
