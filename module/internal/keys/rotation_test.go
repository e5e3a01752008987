package keys

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// countingStore counts the store reads of signing keys; with gate set, each
// read waits until gate is closed.
type countingStore struct {
	store.Store
	reads atomic.Int64
	gate  chan struct{}
}

func (s *countingStore) SigningKeys(ctx context.Context, domain string) ([]store.SigningKey, error) {
	s.reads.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	return s.Store.SigningKeys(ctx, domain)
}

func TestPublishLeadAndPollFollowTheRotationPeriod(t *testing.T) {
	for _, tc := range []struct{ rotate, lead, poll time.Duration }{
		{time.Minute, 15 * time.Second, 5 * time.Second},
		{10 * time.Minute, 150 * time.Second, 50 * time.Second},
		{90 * 24 * time.Hour, time.Hour, time.Minute},
	} {
		m, err := New(nil, "d", Config{RotateEvery: tc.rotate})
		if err != nil {
			t.Fatal(err)
		}
		if got := PublishAhead(tc.rotate); got != tc.lead {
			t.Errorf("PublishAhead(%s) = %s, want %s", tc.rotate, got, tc.lead)
		}
		if got := m.pollInterval(time.Minute); got != tc.poll {
			t.Errorf("rotation %s: Maintain polls every %s, want %s", tc.rotate, got, tc.poll)
		}
	}
	if _, err := New(nil, "d", Config{RotateEvery: 59 * time.Second}); err == nil {
		t.Error("a rotation period that leaves less than 15 s to publish a key was accepted")
	}
}

// instance is one manager on a shared store, loading when its Maintain loop
// would: at nextCheck, or every poll when deadlines is off.
type instance struct {
	name string
	m    *Manager
	wake time.Time
	// published: kid -> when this instance first published it.
	published map[string]time.Time
}

func (in *instance) schedule(now time.Time, deadlines bool) {
	poll := in.m.pollInterval(time.Minute)
	if deadlines {
		in.wake = in.m.nextCheck(now, poll)
	} else {
		in.wake = now.Add(poll)
	}
}

func (in *instance) notePublished(t *testing.T, now time.Time) {
	for _, kid := range publishedKIDs(t, in.m) {
		if _, ok := in.published[kid]; !ok {
			in.published[kid] = now
		}
	}
}

// TestInstancesPublishANewKeyBeforeAnyOfThemSignsWithIt runs two managers
// on one store, started seconds apart, through several one-minute
// rotations on a simulated clock, each loading exactly when its Maintain
// loop would. Every kid either signs with must have been published by both
// (in their JWKS and to their gates, without a store read for an unknown
// kid) before its first token. Before publish-ahead, the instance that
// rotated signed with the new key at once, up to a poll interval before
// the other had read it.
func TestInstancesPublishANewKeyBeforeAnyOfThemSignsWithIt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		deadlines bool
		minLead   time.Duration
	}{
		{"Maintain", true, 15 * time.Second},
		// Even an instance that only polls (it missed the instant the lead
		// began) reads a new key in time.
		{"polling only", false, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1_800_000_000, 0)}
			st := &countingStore{Store: newStore(t, c)}
			ctx := context.Background()
			cfg := Config{Algorithm: ES256, RotateEvery: time.Minute, MaxTokenLifetime: 5 * time.Minute, Now: c.Now}
			var insts []*instance
			start := func(name string) {
				m, err := New(st, "d", cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Load(ctx); err != nil {
					t.Fatal(err)
				}
				in := &instance{name: name, m: m, published: map[string]time.Time{}}
				in.notePublished(t, c.Now())
				in.schedule(c.Now(), tc.deadlines)
				insts = append(insts, in)
			}
			start("A")
			firstKID := insts[0].m.ActiveKID()          // the domain's first key signs at once
			c.Add(7*time.Second + 300*time.Millisecond) // the second instance starts later
			start("B")

			firstSigned := map[string]time.Time{}
			end := c.Now().Add(5 * time.Minute)
			for c.Now().Before(end) {
				// Run every load due up to the next 100 ms, in order.
				step := c.Now().Add(100 * time.Millisecond)
				for {
					in := slices.MinFunc(insts, func(a, b *instance) int { return a.wake.Compare(b.wake) })
					if in.wake.After(step) {
						break
					}
					c.Add(in.wake.Sub(c.Now()))
					if err := in.m.Load(ctx); err != nil {
						t.Fatal(err)
					}
					in.notePublished(t, c.Now())
					in.schedule(c.Now(), tc.deadlines)
				}
				c.Add(step.Sub(c.Now()))
				for _, in := range insts {
					in.notePublished(t, c.Now())
				}
				for _, in := range insts {
					kid := in.m.ActiveKID()
					if _, ok := firstSigned[kid]; !ok {
						firstSigned[kid] = c.Now()
					}
					for _, other := range insts {
						if _, ok := other.m.current().byKID[kid]; !ok {
							t.Fatalf("at %s %s signs with %s, which %s does not know", c.Now().Format(time.TimeOnly), in.name, kid, other.name)
						}
					}
				}
			}
			if len(firstSigned) < 5 {
				t.Fatalf("5 minutes of one-minute rotation signed with %d keys, want at least 5", len(firstSigned))
			}
			for kid, signed := range firstSigned {
				if kid == firstKID {
					continue
				}
				for _, in := range insts {
					if lead := signed.Sub(in.published[kid]); lead < tc.minLead {
						t.Errorf("kid %s: published by %s only %s before it signed, want at least %s", kid, in.name, lead, tc.minLead)
					}
				}
			}
			keys, _ := st.Store.SigningKeys(ctx, "d")
			for i := 1; i < len(keys); i++ {
				if !keys[i].CreatedAt.Equal(keys[i-1].NotAfter) {
					t.Errorf("key %s starts at %s, its predecessor stops at %s: rotation must be seamless", keys[i].KID, keys[i].CreatedAt, keys[i-1].NotAfter)
				}
			}
		})
	}
}

func TestMaintainLoadsWhenThePublishLeadBegins(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m, _ := New(newStore(t, c), "d", Config{Algorithm: EdDSA, RotateEvery: 10 * time.Minute, Now: c.Now})
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	poll := m.pollInterval(time.Minute) // 50 s
	if got := m.nextCheck(start, poll); !got.Equal(start.Add(poll)) {
		t.Errorf("with nothing due, the next load is at +%s, want +%s", got.Sub(start), poll)
	}
	// The key stops at +10m; its successor is due 2m30s before.
	now := start.Add(7*time.Minute + 10*time.Second)
	if got, want := m.nextCheck(now, poll), start.Add(7*time.Minute+30*time.Second); !got.Equal(want) {
		t.Errorf("next load at +%s, want +%s (the publish lead begins)", got.Sub(start), want.Sub(start))
	}
}

func TestScheduledKeyIsPublishedAheadAndSignsWhenItsPredecessorStops(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	var rotations []string
	m, _ := New(st, "d", Config{Algorithm: ES256, RotateEvery: time.Hour, Now: c.Now,
		OnRotate: func(oldKID, newKID string) { rotations = append(rotations, oldKID+">"+newKID) }})
	ctx := context.Background()
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := m.ActiveKID()
	keys, _ := st.SigningKeys(ctx, "d")
	if len(keys) != 1 || !keys[0].CreatedAt.Equal(c.Now()) {
		t.Fatalf("the domain's first key must sign at once: %+v", keys)
	}

	c.Add(45 * time.Minute) // the publish lead (15m) begins
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	kids := publishedKIDs(t, m)
	if len(kids) != 2 {
		t.Fatalf("the successor must be published a lead ahead: JWKS %v", kids)
	}
	if m.ActiveKID() != first {
		t.Fatal("a key published ahead signs before its predecessor stops")
	}
	second := kids[1]
	if kids[0] != first {
		second = kids[0]
	}
	raw, _ := m.Sign(map[string]any{"sub": "a"}, "JWT")
	if kid := headerKID(t, raw); kid != first {
		t.Fatalf("signed with %s during the lead, want %s", kid, first)
	}

	c.Add(15*time.Minute - time.Millisecond)
	if m.ActiveKID() != first {
		t.Fatal("the successor signs before its predecessor stops")
	}
	c.Add(time.Millisecond) // the first key stops: no reload is needed to switch
	if m.ActiveKID() != second {
		t.Fatalf("at its start the successor must sign, got %s", m.ActiveKID())
	}
	raw, _ = m.Sign(map[string]any{"sub": "a"}, "JWT")
	if kid := headerKID(t, raw); kid != second {
		t.Fatalf("signed with %s after the switch, want %s", kid, second)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rotations) != 2 || rotations[1] != first+">"+second {
		t.Fatalf("OnRotate calls %v: the switch must be reported once, when it happens", rotations)
	}
	if keys, _ := st.SigningKeys(ctx, "d"); len(keys) != 2 {
		t.Fatalf("loads during and after the lead added keys: %d", len(keys))
	}
}

func TestForcedRotationIsPublishedAheadToo(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	ctx := context.Background()
	a, _ := New(st, "d", Config{Algorithm: EdDSA, RotateEvery: time.Hour, Now: c.Now})
	b, _ := New(st, "d", Config{Algorithm: EdDSA, RotateEvery: time.Hour, Now: c.Now})
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := a.ActiveKID()
	c.Add(time.Minute)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if a.ActiveKID() != first || len(publishedKIDs(t, a)) != 2 {
		t.Fatalf("a forced rotation publishes the new key and keeps signing with %s: active %s, JWKS %v", first, a.ActiveKID(), publishedKIDs(t, a))
	}
	c.Add(5 * time.Minute) // another instance polls within the lead (15m)
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(10 * time.Minute) // the lead is over
	if a.ActiveKID() == first || a.ActiveKID() != b.ActiveKID() {
		t.Fatalf("after the lead both instances sign with the new key: %s, %s", a.ActiveKID(), b.ActiveKID())
	}
}

func TestLateSuccessorStillStartsWhenItsPredecessorStops(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	ctx := context.Background()
	m, _ := New(st, "d", Config{Algorithm: EdDSA, RotateEvery: time.Hour, Now: c.Now})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := m.ActiveKID()
	// No instance could reach the store when the lead began: the first load
	// is 5 minutes before the key stops.
	c.Add(55 * time.Minute)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if m.ActiveKID() != first {
		t.Fatal("a late successor must not sign before its predecessor stops")
	}
	c.Add(5 * time.Minute)
	if m.ActiveKID() == first {
		t.Fatal("the first key signs past its NotAfter")
	}
	// Every instance was down past the current key's end: a key that signs
	// at once is the only way to keep signing.
	c.Add(2 * time.Hour)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.SigningKeys(ctx, "d")
	last := keys[len(keys)-1]
	if m.ActiveKID() != last.KID || !last.CreatedAt.Equal(c.Now()) {
		t.Fatalf("with no key left that signs, a new one must sign at once: active %s, newest %+v", m.ActiveKID(), last)
	}
}

func headerKID(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// newKIDOfAnotherInstance: two instances a and b of domain "d" on one
// counting store loaded their keys; both were down past the key's end, and
// a came back first and made a key that signs at once (kid). b has not
// polled yet. It returns the clock, the store, b and kid.
func newKIDOfAnotherInstance(t *testing.T, alg string) (*clock, *countingStore, *Manager, string) {
	t.Helper()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := &countingStore{Store: newStore(t, c)}
	ctx := context.Background()
	cfg := Config{Algorithm: alg, RotateEvery: time.Minute, Now: c.Now}
	a, _ := New(st, "d", cfg)
	b, _ := New(st, "d", cfg)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Minute)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return c, st, b, a.ActiveKID()
}

// TestUnknownKIDRereadsTheStoreWithACooldown: a gate that meets a kid it
// does not know reads the store again (another instance may have made a
// key that signs at once), but at most once per cooldown, so a flood of
// made-up kids cannot hammer the database.
func TestUnknownKIDRereadsTheStoreWithACooldown(t *testing.T) {
	c, st, b, kid := newKIDOfAnotherInstance(t, ES256)
	ctx := context.Background()
	before := st.reads.Load()
	if got, err := b.Keys(ctx, kid); err != nil || len(got) != 1 {
		t.Fatalf("b.Keys(%s) = %d keys, %v: an unknown kid of the domain must be looked up in the store", kid, len(got), err)
	}
	if n := st.reads.Load() - before; n != 1 {
		t.Fatalf("%d store reads for one unknown kid, want 1", n)
	}
	if got, _ := b.Keys(ctx, kid); len(got) != 1 || st.reads.Load()-before != 1 {
		t.Fatal("a known kid must not read the store")
	}
	for i := range 1000 {
		if got, _ := b.Keys(ctx, "made-up-"+string(rune('a'+i%26))); got != nil {
			t.Fatal("a made-up kid found a key")
		}
	}
	if n := st.reads.Load() - before; n != 1 {
		t.Fatalf("1000 made-up kids within the cooldown read the store %d more times, want 0", n-1)
	}
	c.Add(UnknownKIDCooldown)
	b.Keys(ctx, "made-up-after-the-cooldown")
	b.Keys(ctx, "made-up-again")
	if n := st.reads.Load() - before; n != 2 {
		t.Fatalf("after the cooldown: %d reads in all, want 2", n)
	}
}

// TestUnknownKIDReadsAreCoalesced: callers that meet the same unknown kid
// while a read runs wait for that read instead of starting their own.
func TestUnknownKIDReadsAreCoalesced(t *testing.T) {
	_, st, b, kid := newKIDOfAnotherInstance(t, EdDSA)
	ctx := context.Background()
	before := st.reads.Load()
	synctest.Test(t, func(t *testing.T) {
		st.gate = make(chan struct{})
		const callers = 50
		var wg sync.WaitGroup
		var done, found atomic.Int64
		for range callers {
			wg.Go(func() {
				if got, err := b.Keys(ctx, kid); err == nil && len(got) == 1 {
					found.Add(1)
				}
				done.Add(1)
			})
		}
		synctest.Wait() // every caller is blocked: on the read, or waiting for it
		if n := done.Load(); n != 0 {
			t.Errorf("%d callers returned while the read ran: they must wait for it", n)
		}
		if n := st.reads.Load() - before; n != 1 {
			t.Errorf("%d concurrent callers started %d store reads, want 1", callers, n)
		}
		close(st.gate)
		wg.Wait()
		st.gate = nil
		if n := found.Load(); n != callers {
			t.Errorf("%d of %d callers found the key", n, callers)
		}
	})
}

// TestMaintainPublishesEveryKeyOnBothInstancesBeforeItSigns runs the real
// Maintain loops of two instances on one store, started seconds apart, in
// a synctest bubble (its clock is fake, so five minutes of one-minute
// rotation pass at once): at every moment, the key either signs with is
// known to the other.
func TestMaintainPublishesEveryKeyOnBothInstancesBeforeItSigns(t *testing.T) {
	st := newStore(t, &clock{})
	synctest.Test(t, func(t *testing.T) {
		st.Now = time.Now // the bubble's clock
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := Config{Algorithm: EdDSA, RotateEvery: time.Minute, MaxTokenLifetime: time.Minute}
		var wg sync.WaitGroup
		var managers []*Manager
		for range 2 {
			m, _ := New(st, "d", cfg)
			if err := m.Load(ctx); err != nil {
				t.Fatal(err)
			}
			managers = append(managers, m)
			wg.Go(func() {
				m.Maintain(ctx, time.Minute, func(err error) { t.Errorf("maintenance: %v", err) })
			})
			time.Sleep(7*time.Second + 300*time.Millisecond)
		}
		kids := map[string]bool{}
		for range 3000 { // 5 minutes
			time.Sleep(100 * time.Millisecond)
			for i, m := range managers {
				kid := m.ActiveKID()
				kids[kid] = true
				if _, ok := managers[1-i].current().byKID[kid]; !ok {
					t.Fatalf("at %s instance %d signs with %s, which the other does not know", time.Now().Format(time.TimeOnly), i, kid)
				}
			}
		}
		if len(kids) < 5 {
			t.Errorf("five minutes of one-minute rotation signed with %d keys", len(kids))
		}
		cancel()
		wg.Wait()
	})
}
