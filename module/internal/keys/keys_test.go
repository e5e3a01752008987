package keys

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t *testing.T, c *clock) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Now = c.Now
	t.Cleanup(func() { st.Close() })
	return st
}

func publishedKIDs(t *testing.T, m *Manager) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS publishes private key material for %s", k.KeyID)
		}
		if k.Use != "sig" || k.Algorithm == "" {
			t.Fatalf("JWKS key %s lacks use/alg: %+v", k.KeyID, k)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestFirstStartGeneratesAKeyThatIsPersisted(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	m1, _ := New(st, "acme", Config{Now: c.Now})
	if err := m1.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	m2, _ := New(st, "acme", Config{Now: c.Now})
	if err := m2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m1.ActiveKID() == "" || m1.ActiveKID() != m2.ActiveKID() {
		t.Fatalf("a second start must reuse the stored key: %q vs %q", m1.ActiveKID(), m2.ActiveKID())
	}
	if m1.Algorithm() != RS256 {
		t.Fatalf("default algorithm %s, want RS256", m1.Algorithm())
	}
}

func TestSignedTokensVerifyWithThePublishedKeyForEveryAlgorithm(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			c := &clock{t: time.Unix(1_800_000_000, 0)}
			m, _ := New(newStore(t, c), "d", Config{Algorithm: alg, Now: c.Now})
			if err := m.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			raw, err := m.Sign(map[string]any{"sub": "alice"}, "at+jwt")
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != m.ActiveKID() || h.ExtraHeaders["typ"] != "at+jwt" {
				t.Fatalf("header kid %q typ %v", h.KeyID, h.ExtraHeaders["typ"])
			}
			keys, _ := m.Keys(context.Background(), h.KeyID)
			if len(keys) != 1 {
				t.Fatalf("Keys(%s) = %d keys", h.KeyID, len(keys))
			}
			payload, err := jws.Verify(keys[0].Key)
			if err != nil || string(payload) != `{"sub":"alice"}` {
				t.Fatalf("verify: %v %s", err, payload)
			}
		})
	}
}

func TestRotationKeepsTheOldKeyPublishedUntilItsTokensExpire(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	var rotations []string
	m, _ := New(st, "d", Config{Algorithm: ES256, RotateEvery: time.Hour, MaxTokenLifetime: 10 * time.Minute, Now: c.Now,
		OnRotate: func(oldKID, newKID string) { rotations = append(rotations, oldKID+">"+newKID) }})
	ctx := context.Background()
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := m.ActiveKID()
	gen := m.Generation()

	c.Add(61 * time.Minute) // the first key is due
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	second := m.ActiveKID()
	if second == first {
		t.Fatal("a key past its rotation time still signs")
	}
	if kids := publishedKIDs(t, m); len(kids) != 2 {
		t.Fatalf("during the overlap both keys are published, got %v", kids)
	}
	if m.Generation() == gen {
		t.Fatal("the generation must change when the key set changes")
	}
	if len(rotations) != 2 || rotations[0] != ">"+first || rotations[1] != first+">"+second {
		t.Fatalf("OnRotate calls: %v", rotations)
	}

	c.Add(10 * time.Minute) // past NotAfter + MaxTokenLifetime of the first key
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := publishedKIDs(t, m); len(kids) != 1 || kids[0] != second {
		t.Fatalf("the expired key must leave the JWKS, got %v", kids)
	}
}

func TestConcurrentInstancesRotateOnce(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	ctx := context.Background()
	var wg sync.WaitGroup
	managers := make([]*Manager, 6)
	for i := range managers {
		managers[i], _ = New(st, "d", Config{Algorithm: EdDSA, Now: c.Now})
		wg.Add(1)
		go func(m *Manager) {
			defer wg.Done()
			if err := m.Load(ctx); err != nil {
				t.Error(err)
			}
		}(managers[i])
	}
	wg.Wait()
	keys, err := st.SigningKeys(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d instances starting together created %d keys, want 1", len(managers), len(keys))
	}
	for _, m := range managers {
		if m.ActiveKID() != keys[0].KID {
			t.Fatal("instances disagree on the active key")
		}
	}
}

func TestForcedRotationByTwoInstancesAddsOneKey(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	ctx := context.Background()
	a, _ := New(st, "d", Config{Algorithm: ES256, Now: c.Now})
	b, _ := New(st, "d", Config{Algorithm: ES256, Now: c.Now})
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	// b decided on the old state; inside the lock it sees a's rotation.
	if err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.SigningKeys(ctx, "d")
	if len(keys) != 2 {
		t.Fatalf("two racing rotations left %d keys, want 2", len(keys))
	}
	if a.ActiveKID() != b.ActiveKID() {
		t.Fatal("instances disagree after rotation")
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	st := store.Keys(nil)
	if _, err := New(st, "d", Config{Algorithm: "HS256"}); err == nil {
		t.Error("HS256 accepted")
	}
	if _, err := New(st, "d", Config{RotateEvery: time.Second}); err == nil {
		t.Error("a one-second rotation accepted")
	}
	m, _ := New(st, "d", Config{})
	if _, err := m.Sign(map[string]any{}, "JWT"); err != ErrNotLoaded {
		t.Errorf("Sign before Load: %v", err)
	}
}
