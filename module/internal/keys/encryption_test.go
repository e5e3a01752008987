package keys

import (
	"bytes"
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

const (
	kekA = "correct-horse-battery-staple-0123456789"
	kekB = "another-key-encryption-secret-9876543210"
)

func mustEncryption(t *testing.T, secrets ...string) *Encryption {
	t.Helper()
	e, err := NewEncryption(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// storedKeys reads the domain's rows as the database holds them.
func storedKeys(t *testing.T, st store.Store, domain string) []store.SigningKey {
	t.Helper()
	recs, err := st.SigningKeys(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSigningKeysAreEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			c := &clock{t: time.Unix(1_800_000_000, 0)}
			st := newStore(t, c)
			m, _ := New(st, "acme", Config{Algorithm: alg, Now: c.Now, Encryption: mustEncryption(t, kekA)})
			if err := m.Load(ctx); err != nil {
				t.Fatal(err)
			}
			recs := storedKeys(t, st, "acme")
			if len(recs) != 1 || !bytes.HasPrefix(recs[0].PrivateKey, []byte("GHK1")) {
				t.Fatalf("stored key is not sealed: %q", recs[0].PrivateKey[:8])
			}
			if _, err := x509.ParsePKCS8PrivateKey(recs[0].PrivateKey); err == nil {
				t.Fatal("the stored blob parses as a plaintext private key")
			}
			// Another instance with the same secret signs with the same key.
			m2, _ := New(st, "acme", Config{Algorithm: alg, Now: c.Now, Encryption: mustEncryption(t, kekA)})
			if err := m2.Load(ctx); err != nil || m2.ActiveKID() != m.ActiveKID() {
				t.Fatalf("second instance: %v, kid %q vs %q", err, m2.ActiveKID(), m.ActiveKID())
			}
			if _, err := m2.Sign(map[string]any{"sub": "alice"}, "at+jwt"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEncryptedKeysNeedTheirSecret(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	m, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: mustEncryption(t, kekA)})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		enc  *Encryption
		want string
	}{
		{"no secret configured", nil, "no key-encryption secret is configured"},
		{"another secret", mustEncryption(t, kekB), "which is not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: tc.enc})
			err := other.Load(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("a sealed key moved to another row does not decrypt", func(t *testing.T) {
		rec := storedKeys(t, st, "acme")[0]
		rec.KID = "moved"
		if _, err := parseKey(rec, mustEncryption(t, kekA)); err == nil || !strings.Contains(err.Error(), "moved from another key's row") {
			t.Fatalf("parseKey = %v", err)
		}
		rec = storedKeys(t, st, "acme")[0]
		rec.PrivateKey[len(rec.PrivateKey)-1] ^= 1
		if _, err := parseKey(rec, mustEncryption(t, kekA)); err == nil {
			t.Fatal("an altered sealed key decrypted")
		}
	})
}

func TestKeyEncryptionSecretRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	old, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: mustEncryption(t, kekA)})
	if err := old.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// New secret first, old one kept: existing keys open, new keys are
	// sealed with the new secret.
	both := mustEncryption(t, kekB, kekA)
	m, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: both})
	if err := m.Load(ctx); err != nil || m.ActiveKID() != old.ActiveKID() {
		t.Fatalf("Load with the rotated secret list: %v", err)
	}
	c.Add(time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: mustEncryption(t, kekB)})
	err := onlyNew.Load(ctx)
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("the old key still needs the old secret while it is published: %v", err)
	}
	c.Add(PublishAhead(90 * 24 * time.Hour)) // the rotated key, published ahead, signs now
	if err := m.Load(ctx); err != nil || m.ActiveKID() == old.ActiveKID() {
		t.Fatalf("after the publish lead the rotated key must sign: %v", err)
	}
	for _, r := range storedKeys(t, st, "acme") {
		if r.KID == m.ActiveKID() {
			if _, err := parseKey(r, mustEncryption(t, kekB)); err != nil {
				t.Fatalf("the new key is not sealed with the new secret: %v", err)
			}
		}
	}
}

func TestPlaintextKeysAreReplacedBySealedOnesWhenEncryptionIsTurnedOn(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	plain, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now})
	if err := plain.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	m, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: mustEncryption(t, kekA)})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if m.ActiveKID() == plain.ActiveKID() {
		t.Fatal("the plaintext key still signs after encryption was turned on")
	}
	if kids := publishedKIDs(t, m); len(kids) != 2 {
		t.Fatalf("the plaintext key must stay published until its tokens expire: %v", kids)
	}
	// A third start does not rotate again.
	again, _ := New(st, "acme", Config{Algorithm: ES256, Now: c.Now, Encryption: mustEncryption(t, kekA)})
	if err := again.Load(ctx); err != nil || again.ActiveKID() != m.ActiveKID() {
		t.Fatalf("third start: %v, %q vs %q", err, again.ActiveKID(), m.ActiveKID())
	}
	if n := len(storedKeys(t, st, "acme")); n != 2 {
		t.Fatalf("%d keys stored, want 2", n)
	}
}

func TestKeyEncryptionSecretsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets []string
		want    string
	}{
		{"none", nil, "at least one secret"},
		{"too short", []string{"short"}, "use at least 32 random bytes"},
		{"repeated", []string{kekA, kekA}, "repeats an earlier one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEncryption(tc.secrets); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewEncryption = %v, want %q", err, tc.want)
			}
		})
	}
	a, b := mustEncryption(t, kekA), mustEncryption(t, kekB, kekA)
	if a.Fingerprint() == b.Fingerprint() || strings.Contains(b.Fingerprint(), kekA) {
		t.Fatalf("fingerprints %q %q", a.Fingerprint(), b.Fingerprint())
	}
}
