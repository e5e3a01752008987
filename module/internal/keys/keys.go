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

// Config says how a domain's keys are made and rotated.
type Config struct {
	// Algorithm of new keys: RS256 (default), ES256 or EdDSA.
	Algorithm string
	// RotateEvery is how long a key signs before a new one takes over.
	// Zero means 90 days.
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
type Manager struct {
	st     store.Store
	domain string
	cfg    Config

	mu    sync.RWMutex
	state *keyState // replaced whole on reload
	gen   atomic.Uint64
}

type keyState struct {
	active  *signingKey
	byKID   map[string]*signingKey
	jwks    []byte // marshalled public JWKS
	public  []jose.JSONWebKey
	expires time.Time // earliest NotAfter of the active key: reload after it
}

type signingKey struct {
	rec    store.SigningKey
	signer crypto.Signer
	public jose.JSONWebKey
	// joseSigners caches one jose.Signer per token type header.
	mu          sync.Mutex
	joseSigners map[string]jose.Signer
}

// New returns a manager for one domain. Call Load before use.
func New(st store.Store, domain string, cfg Config) (*Manager, error) {
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
	if cfg.RotateEvery < time.Minute {
		return nil, fmt.Errorf("key rotation period %s is too short; use at least 1m", cfg.RotateEvery)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{st: st, domain: domain, cfg: cfg}, nil
}

// Algorithm is the algorithm new tokens are signed with.
func (m *Manager) Algorithm() string {
	s := m.current()
	if s != nil && s.active != nil {
		return s.active.rec.Alg
	}
	return m.cfg.Algorithm
}

// Generation changes every time the set of keys changes.
func (m *Manager) Generation() uint64 { return m.gen.Load() }

// Load reads the domain's keys, generating or rotating them if the active key
// is missing or due, and makes them current.
func (m *Manager) Load(ctx context.Context) error {
	now := m.cfg.Now()
	recs, err := m.st.SigningKeys(ctx, m.domain)
	if err != nil {
		return fmt.Errorf("loading signing keys of domain %q: %w", m.domain, err)
	}
	if a := pickActive(recs, m.cfg.Algorithm, now); a == nil || m.wantsSealed(a) {
		recs, err = m.st.RotateSigningKeys(ctx, m.domain, m.decide)
		if err != nil {
			return fmt.Errorf("rotating signing keys of domain %q: %w", m.domain, err)
		}
	}
	return m.install(recs, now)
}

// wantsSealed reports whether k is a plaintext key while encryption is on.
func (m *Manager) wantsSealed(k *store.SigningKey) bool {
	return m.cfg.Encryption != nil && !isSealed(k.PrivateKey)
}

// Rotate forces a new key to take over signing now; the previous key stays
// published until the tokens it signed have expired.
func (m *Manager) Rotate(ctx context.Context) error {
	now := m.cfg.Now()
	before := m.current()
	recs, err := m.st.RotateSigningKeys(ctx, m.domain, func(current []store.SigningKey) ([]store.SigningKey, error) {
		// Another instance may have rotated since we looked: only rotate if
		// the active key is still the one we saw.
		a := pickActive(current, m.cfg.Algorithm, now)
		if a != nil && before != nil && before.active != nil && a.KID != before.active.rec.KID {
			return nil, nil
		}
		k, err := m.generate(now)
		if err != nil {
			return nil, err
		}
		return []store.SigningKey{k}, nil
	})
	if err != nil {
		return fmt.Errorf("rotating signing keys of domain %q: %w", m.domain, err)
	}
	return m.install(recs, now)
}

// decide adds a key when, inside the store's lock, there is still no usable
// active key. Several instances may call it; only the first adds a key.
func (m *Manager) decide(current []store.SigningKey) ([]store.SigningKey, error) {
	now := m.cfg.Now()
	if a := pickActive(current, m.cfg.Algorithm, now); a != nil && !m.wantsSealed(a) {
		return nil, nil
	}
	k, err := m.generate(now)
	if err != nil {
		return nil, err
	}
	return []store.SigningKey{k}, nil
}

// pickActive returns the newest key of alg that may still sign at now.
func pickActive(recs []store.SigningKey, alg string, now time.Time) *store.SigningKey {
	var best *store.SigningKey
	for i := range recs {
		r := &recs[i]
		if r.Alg != alg || !now.Before(r.NotAfter) || r.CreatedAt.After(now.Add(time.Minute)) {
			continue
		}
		if best == nil || r.CreatedAt.After(best.CreatedAt) {
			best = r
		}
	}
	return best
}

func (m *Manager) generate(now time.Time) (store.SigningKey, error) {
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
	notAfter := now.Add(m.cfg.RotateEvery)
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
		CreatedAt:  now,
		NotAfter:   notAfter,
		ExpiresAt:  notAfter.Add(m.cfg.MaxTokenLifetime),
	}, nil
}

func (m *Manager) install(recs []store.SigningKey, now time.Time) error {
	st := &keyState{byKID: make(map[string]*signingKey, len(recs))}
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
	st.expires = a.NotAfter
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: st.public})
	if err != nil {
		return err
	}
	st.jwks = jwks
	m.mu.Lock()
	old := m.state
	m.state = st
	m.mu.Unlock()
	if old == nil || !sameKIDs(old, st) {
		m.gen.Add(1)
	}
	if m.cfg.OnRotate != nil && (old == nil || old.active.rec.KID != st.active.rec.KID) {
		oldKID := ""
		if old != nil {
			oldKID = old.active.rec.KID
		}
		m.cfg.OnRotate(oldKID, st.active.rec.KID)
	}
	return nil
}

func sameKIDs(a, b *keyState) bool {
	if len(a.byKID) != len(b.byKID) || a.active.rec.KID != b.active.rec.KID {
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
	signer, err := s.active.joseSigner(typ)
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
		return s.active.rec.KID
	}
	return ""
}

// JWKS returns the published key set (public keys only), marshalled.
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
func (m *Manager) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
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
	return nil, nil
}

// Maintain reloads and rotates keys until ctx is done: it checks every
// interval (and right after the active key's NotAfter) so a key that is due
// is replaced, keys rotated by another instance are picked up, and expired
// keys leave the JWKS. onError receives failures (they never stop the loop).
func (m *Manager) Maintain(ctx context.Context, interval time.Duration, onError func(error)) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Load(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}
