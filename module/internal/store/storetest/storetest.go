package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// concurrency is how many goroutines race in the concurrent tests.
const concurrency = 12

// base is the instant the suite's records are created at: fixed, in a
// non-UTC zone and with nanoseconds, so time handling is exercised everywhere.
var base = time.Date(2051, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+5", 5*3600))

// Run runs the conformance suite. newStore is called once per subtest and
// must return an empty store; it owns the store's cleanup (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"signing keys are listed oldest first", testKeysOrder},
		{"signing keys round-trip every field", testKeysRoundTrip},
		{"expired signing keys are not listed", testKeysExpired},
		{"signing keys of another domain are not listed", testKeysDomain},
		{"rotation stores what decide returns and returns every current key", testRotateStores},
		{"rotation that adds nothing changes nothing", testRotateNothing},
		{"decide sees only unexpired keys of its domain", testRotateDecideSees},
		{"rotation fails without storing when decide fails", testRotateDecideError},
		{"rotation of a key ID the domain has is a conflict", testRotateConflict},
		{"rotation of a key for another domain is refused", testRotateWrongDomain},
		{"concurrent rotators add exactly one key", testRotateConcurrent},
		{"secret first writer wins and empty secrets are refused", testSecretFirstWriter},
		{"concurrent secret writers all get one value", testSecretConcurrent},
		{"auth code round-trips every field", testCodeRoundTrip},
		{"auth code is consumed once then already used", testCodeConsumeTwice},
		{"unknown auth code is not found", testCodeUnknown},
		{"expired auth code is not found", testCodeExpired},
		{"concurrent consumers of one code have exactly one winner", testCodeConcurrent},
		{"duplicate auth code ID is a conflict", testCodeConflict},
		{"refresh token round-trips every field", testRefreshRoundTrip},
		{"rotation marks the old refresh token and stores its successor", testRefreshRotate},
		{"second rotation is already used and stores nothing", testRefreshRotateTwice},
		{"concurrent rotations have one winner and one successor", testRefreshConcurrent},
		{"rotation after the family is revoked is not found", testRefreshRotateRevoked},
		{"rotation of an expired or unknown refresh token is not found", testRefreshRotateExpired},
		{"rotation to an existing ID is a conflict and leaves the old token unrotated", testRefreshRotateConflict},
		{"rotation into another family is refused", testRefreshRotateOtherFamily},
		{"expired refresh token is not found", testRefreshExpired},
		{"refresh token of a revoked family is not found", testRefreshRevoked},
		{"duplicate refresh token ID is a conflict", testRefreshConflict},
		{"revocation holds until it expires", testRevokeExpiry},
		{"revoked reports any of several ids", testRevokedAny},
		{"revoking again keeps the later expiry", testRevokeExtend},
		{"revocations are listed by when they were recorded", testRevokedSince},
		{"session is created, read and deleted", testSessionCRUD},
		{"expired session is not found", testSessionExpired},
		{"deleting an unknown session is not an error", testSessionDeleteUnknown},
		{"duplicate session ID is a conflict", testSessionConflict},
		{"delete expired removes only expired records", testDeleteExpired},
		{"login failures count per key within a window", testLoginFailures},
		{"concurrent login failures are all counted", testLoginFailuresConcurrent},
		{"session grants are listed per session, oldest first, while live", testSessionGrants},
		{"recording a session grant again keeps one record with the later expiry", testSessionGrantAgain},
		{"concurrent recordings of one session grant keep one record", testSessionGrantConcurrent},
		{"empty slices and zero times round-trip", testEmptyRoundTrip},
		{"list elements with quotes, commas, braces, backslashes and spaces round-trip", testListRoundTrip},
		{"records without an ID or expiry are refused", testValidation},
	}
	tests = append(tests, directoryTests...)
	tests = append(tests, credentialTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Fixtures.

func key(domain, kid string, created time.Time, ttl time.Duration) store.SigningKey {
	return store.SigningKey{
		Domain:     domain,
		KID:        kid,
		Alg:        "ES256",
		PrivateKey: []byte("pkcs8-der-of-" + kid + "\x00\xff"),
		CreatedAt:  created,
		NotAfter:   created.Add(ttl / 2),
		ExpiresAt:  created.Add(ttl),
	}
}

func code(name string) store.AuthCode {
	return store.AuthCode{
		ID:                  store.HashID(name),
		Domain:              "example",
		ClientID:            "client-a",
		RedirectURI:         "https://app.example/callback",
		Subject:             "user-1",
		Scopes:              []string{"openid", "profile", "email"},
		Audience:            []string{"api-1", "api-2"},
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AuthTime:            base.Add(-3 * time.Minute),
		SessionID:           store.HashID("session-" + name),
		FamilyID:            "family-" + name,
		CreatedAt:           base,
		ExpiresAt:           base.Add(time.Minute),
	}
}

func refresh(name, family string) store.RefreshToken {
	return store.RefreshToken{
		ID:        store.HashID(name),
		FamilyID:  family,
		Domain:    "example",
		ClientID:  "client-a",
		Subject:   "user-1",
		Scopes:    []string{"openid", "offline_access"},
		Audience:  []string{"api-1"},
		AuthTime:  base.Add(-time.Hour),
		SessionID: store.HashID("session"),
		CreatedAt: base,
		ExpiresAt: base.Add(24 * time.Hour),
	}
}

func session(name string) store.Session {
	return store.Session{
		ID:        store.HashID(name),
		Domain:    "example",
		Subject:   "user-1",
		AuthTime:  base.Add(-time.Second),
		AMR:       []string{"pwd", "otp"},
		CreatedAt: base,
		ExpiresAt: base.Add(8 * time.Hour),
	}
}

func grant(sessionName, family, client string, created time.Time) store.SessionGrant {
	return store.SessionGrant{
		SessionID: store.HashID(sessionName),
		FamilyID:  family,
		ClientID:  client,
		CreatedAt: created,
		ExpiresAt: base.Add(8 * time.Hour),
	}
}

// Assertions.

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func same(t *testing.T, got, want any) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Error(d)
	}
}

func kids(keys []store.SigningKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func wantKIDs(t *testing.T, keys []store.SigningKey, want ...string) {
	t.Helper()
	got := kids(keys)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got keys %v, want %v", got, want)
	}
}

// add stores keys through RotateSigningKeys (the only way in).
func add(t *testing.T, s store.Store, domain string, keys ...store.SigningKey) []store.SigningKey {
	t.Helper()
	got, err := s.RotateSigningKeys(context.Background(), domain, func([]store.SigningKey) ([]store.SigningKey, error) {
		return keys, nil
	})
	must(t, err)
	return got
}

// race runs fn in n goroutines released at once and waits for them.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// warm opens the backend's connections before a race, so that the racers
// overlap instead of queueing behind connection setup (which would let a
// store without proper locking pass by luck).
func warm(s store.Store) {
	race(concurrency, func(int) { s.Revoked(context.Background(), "warm-up") })
}

// Signing keys. SigningKeys judges expiry by the wall clock, so these tests
// place expiries hours away from it.

func testKeysOrder(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "b-newest", now.Add(-time.Minute), 48*time.Hour))
	add(t, s, "example", key("example", "c-oldest", now.Add(-2*time.Hour), 48*time.Hour),
		key("example", "a-middle", now.Add(-time.Hour), 48*time.Hour))
	// Same CreatedAt: ordered by KID.
	add(t, s, "example", key("example", "a-twin", now.Add(-time.Hour), 48*time.Hour))
	got, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	wantKIDs(t, got, "c-oldest", "a-middle", "a-twin", "b-newest")
}

func testKeysRoundTrip(t *testing.T, s store.Store) {
	now := time.Now().In(time.FixedZone("UTC-7", -7*3600))
	k := key("example", "kid-1", now, 48*time.Hour)
	k.Alg = "RS256"
	k.PrivateKey = bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 300)
	got := add(t, s, "example", k)
	if len(got) != 1 {
		t.Fatalf("rotation returned %d keys, want 1", len(got))
	}
	same(t, got[0], k)
	listed, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	if len(listed) != 1 {
		t.Fatalf("listed %d keys, want 1", len(listed))
	}
	same(t, listed[0], k)
}

func testKeysExpired(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example",
		key("example", "expired", now.Add(-48*time.Hour), 24*time.Hour),
		key("example", "live", now.Add(-time.Hour), 24*time.Hour))
	got, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	wantKIDs(t, got, "live")
}

func testKeysDomain(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "ours", now, time.Hour))
	add(t, s, "other", key("other", "theirs", now, time.Hour))
	got, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	wantKIDs(t, got, "ours")
	got, err = s.SigningKeys(context.Background(), "nobody")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("domain without keys listed %v", kids(got))
	}
}

func testRotateStores(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "k1", now.Add(-time.Hour), 24*time.Hour))
	k2 := key("", "k2", now, 24*time.Hour) // empty Domain: the store fills it in
	got := add(t, s, "example", k2)
	wantKIDs(t, got, "k1", "k2")
	k2.Domain = "example"
	same(t, got[1], k2)
}

func testRotateNothing(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "k1", now, time.Hour))
	got, err := s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
		return nil, nil
	})
	must(t, err)
	wantKIDs(t, got, "k1")
}

func testRotateDecideSees(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example",
		key("example", "expired", now.Add(-3*time.Hour), time.Hour),
		key("example", "live", now, time.Hour))
	add(t, s, "other", key("other", "foreign", now, time.Hour))
	var seen []string
	_, err := s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
		seen = kids(cur)
		return nil, nil
	})
	must(t, err)
	if fmt.Sprint(seen) != "[live]" {
		t.Fatalf("decide saw %v, want [live]", seen)
	}
}

func testRotateDecideError(t *testing.T, s store.Store) {
	now := time.Now()
	boom := errors.New("key generation failed")
	_, err := s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{key("example", "k1", now, time.Hour)}, boom
	})
	wantErr(t, err, boom)
	got, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("failed rotation stored %v", kids(got))
	}
}

func testRotateConflict(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "k1", now, time.Hour))
	_, err := s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{key("example", "k2", now, time.Hour), key("example", "k1", now, 2*time.Hour)}, nil
	})
	wantErr(t, err, store.ErrConflict)
	got, err := s.SigningKeys(context.Background(), "example")
	must(t, err)
	wantKIDs(t, got, "k1") // k2 was rolled back with the conflict
	if msg := timeDiff(got[0].ExpiresAt, now.Add(time.Hour)); msg != "" {
		t.Fatalf("conflicting rotation changed k1's expiry: %s", msg)
	}
	// The same KID in another domain is no conflict.
	add(t, s, "other", key("other", "k1", now, time.Hour))
}

func testRotateWrongDomain(t *testing.T, s store.Store) {
	now := time.Now()
	_, err := s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{key("other", "k1", now, time.Hour)}, nil
	})
	if err == nil {
		t.Fatal("a key for domain other was stored through domain example")
	}
	for _, d := range []string{"example", "other"} {
		got, err := s.SigningKeys(context.Background(), d)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("refused rotation stored %v in %s", kids(got), d)
		}
	}
}

func testRotateConcurrent(t *testing.T, s store.Store) {
	now := time.Now()
	add(t, s, "example", key("example", "old", now.Add(-time.Hour), 48*time.Hour))
	want := []string{"old"}
	// Several rounds, each racing to add the key for its hour: more chances
	// to catch a store that lets two decides run at once.
	for round := range 3 {
		threshold := now.Add(time.Duration(round) * time.Hour) // rotate only if no key is newer than this
		warm(s)
		var added atomic.Int32
		errs := make([]error, concurrency)
		results := make([][]store.SigningKey, concurrency)
		race(concurrency, func(i int) {
			results[i], errs[i] = s.RotateSigningKeys(context.Background(), "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
				for _, k := range cur {
					if k.CreatedAt.After(threshold) {
						return nil, nil
					}
				}
				added.Add(1)
				return []store.SigningKey{key("example", fmt.Sprintf("new-%d-%02d", round, i), threshold.Add(time.Minute), 48*time.Hour)}, nil
			})
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, rotator %d: %v", round, i, err)
			}
		}
		if n := added.Load(); n != 1 {
			t.Fatalf("round %d: %d rotators saw no fresh key and added one; want exactly 1 (decide must run under the lock, after re-reading the keys)", round, n)
		}
		got, err := s.SigningKeys(context.Background(), "example")
		must(t, err)
		if len(got) != len(want)+1 || fmt.Sprint(kids(got[:len(want)])) != fmt.Sprint(want) {
			t.Fatalf("round %d: keys are %v, want %v and one new key", round, kids(got), want)
		}
		for i, r := range results {
			if fmt.Sprint(kids(r)) != fmt.Sprint(kids(got)) {
				t.Errorf("round %d: rotator %d got keys %v, want the winner's %v", round, i, kids(r), kids(got))
			}
		}
		want = kids(got)
	}
}

// Secrets.

func testSecretFirstWriter(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Secret(ctx, "cookie-hash-key", nil); err == nil {
		t.Fatal("an empty secret was accepted")
	}
	first := []byte("first\x00value")
	got, err := s.Secret(ctx, "cookie-hash-key", first)
	must(t, err)
	if !bytes.Equal(got, first) {
		t.Fatalf("first writer got %q, want its own value", got)
	}
	got, err = s.Secret(ctx, "cookie-hash-key", []byte("second"))
	must(t, err)
	if !bytes.Equal(got, first) {
		t.Fatalf("second writer got %q, want the first value %q", got, first)
	}
	got, err = s.Secret(ctx, "other-name", []byte("other"))
	must(t, err)
	if string(got) != "other" {
		t.Fatalf("another name got %q, want its own value", got)
	}
}

func testSecretConcurrent(t *testing.T, s store.Store) {
	got := make([][]byte, concurrency)
	errs := make([]error, concurrency)
	warm(s)
	race(concurrency, func(i int) {
		got[i], errs[i] = s.Secret(context.Background(), "shared", []byte(fmt.Sprintf("value-%02d", i)))
	})
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("writer %d got %q, writer 0 got %q: want one value for all", i, got[i], got[0])
		}
	}
	if !bytes.HasPrefix(got[0], []byte("value-")) {
		t.Fatalf("stored value %q is none of the written ones", got[0])
	}
}

// Authorization codes.

func testCodeRoundTrip(t *testing.T, s store.Store) {
	c := code("round-trip")
	must(t, s.CreateAuthCode(context.Background(), c))
	got, err := s.ConsumeAuthCode(context.Background(), c.ID, base)
	must(t, err)
	same(t, got, c)
}

func testCodeConsumeTwice(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := code("twice")
	must(t, s.CreateAuthCode(ctx, c))
	_, err := s.ConsumeAuthCode(ctx, c.ID, base)
	must(t, err)
	for range 2 {
		got, err := s.ConsumeAuthCode(ctx, c.ID, base.Add(time.Second))
		wantErr(t, err, store.ErrAlreadyUsed)
		same(t, got, c) // the caller needs FamilyID to revoke what the code issued
	}
}

func testCodeUnknown(t *testing.T, s store.Store) {
	must(t, s.CreateAuthCode(context.Background(), code("known")))
	_, err := s.ConsumeAuthCode(context.Background(), store.HashID("unknown"), base)
	wantErr(t, err, store.ErrNotFound)
}

func testCodeExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		now  time.Time
	}{
		{"at expiry", base.Add(time.Minute)},
		{"after expiry", base.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := code("expired-" + tc.name)
			must(t, s.CreateAuthCode(ctx, c))
			_, err := s.ConsumeAuthCode(ctx, c.ID, tc.now)
			wantErr(t, err, store.ErrNotFound)
			// The failed attempt did not use it up: it is still good before expiry.
			_, err = s.ConsumeAuthCode(ctx, c.ID, base)
			must(t, err)
			_, err = s.ConsumeAuthCode(ctx, c.ID, tc.now)
			wantErr(t, err, store.ErrNotFound)
		})
	}
}

func testCodeConcurrent(t *testing.T, s store.Store) {
	c := code("contested")
	must(t, s.CreateAuthCode(context.Background(), c))
	errs := make([]error, concurrency)
	got := make([]store.AuthCode, concurrency)
	warm(s)
	race(concurrency, func(i int) {
		got[i], errs[i] = s.ConsumeAuthCode(context.Background(), c.ID, base)
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case errors.Is(err, store.ErrAlreadyUsed):
		default:
			t.Fatalf("consumer %d: %v", i, err)
		}
		if got[i].ID != c.ID || got[i].FamilyID != c.FamilyID {
			t.Errorf("consumer %d got code %q of family %q, want the code", i, got[i].ID, got[i].FamilyID)
		}
	}
	if winners != 1 {
		t.Fatalf("%d consumers won, want exactly 1", winners)
	}
}

func testCodeConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := code("dup")
	must(t, s.CreateAuthCode(ctx, c))
	other := c
	other.Subject = "attacker"
	wantErr(t, s.CreateAuthCode(ctx, other), store.ErrConflict)
	got, err := s.ConsumeAuthCode(ctx, c.ID, base)
	must(t, err)
	same(t, got, c)
}

// Refresh tokens.

func testRefreshRoundTrip(t *testing.T, s store.Store) {
	r := refresh("rt", "fam")
	must(t, s.CreateRefreshToken(context.Background(), r))
	got, err := s.RefreshToken(context.Background(), r.ID, base)
	must(t, err)
	same(t, got, r)
}

func testRefreshRotate(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	next := refresh("rt-2", "") // empty family: inherits the old token's
	next.CreatedAt = base.Add(time.Minute)
	at := base.Add(time.Minute)
	got, err := s.RotateRefreshToken(ctx, old.ID, at, next)
	must(t, err)
	old.RotatedAt = at
	same(t, got, old)

	stored, err := s.RefreshToken(ctx, old.ID, at)
	must(t, err)
	same(t, stored, old)
	succ, err := s.RefreshToken(ctx, next.ID, at)
	must(t, err)
	next.FamilyID = "fam"
	same(t, succ, next)

	// The successor rotates in turn.
	third := refresh("rt-3", "fam")
	_, err = s.RotateRefreshToken(ctx, next.ID, at.Add(time.Minute), third)
	must(t, err)
}

func testRefreshRotateTwice(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	at := base.Add(time.Minute)
	_, err := s.RotateRefreshToken(ctx, old.ID, at, refresh("rt-2", "fam"))
	must(t, err)

	got, err := s.RotateRefreshToken(ctx, old.ID, at.Add(time.Second), refresh("rt-3", "fam"))
	wantErr(t, err, store.ErrAlreadyUsed)
	old.RotatedAt = at // the winner's instant, for the reuse grace window
	same(t, got, old)
	_, err = s.RefreshToken(ctx, store.HashID("rt-3"), at)
	wantErr(t, err, store.ErrNotFound)
}

func testRefreshConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("contested", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	at := base.Add(time.Minute)
	errs := make([]error, concurrency)
	got := make([]store.RefreshToken, concurrency)
	warm(s)
	race(concurrency, func(i int) {
		got[i], errs[i] = s.RotateRefreshToken(ctx, old.ID, at, refresh(fmt.Sprintf("next-%02d", i), "fam"))
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("rotators %d and %d both won", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrAlreadyUsed):
		default:
			t.Fatalf("rotator %d: %v", i, err)
		}
		if got[i].ID != old.ID || timeDiff(got[i].RotatedAt, at) != "" {
			t.Errorf("rotator %d got token %q rotated at %s, want the old token rotated at %s", i, got[i].ID, got[i].RotatedAt, at)
		}
	}
	if winner < 0 {
		t.Fatal("no rotator won")
	}
	for i := range concurrency {
		_, err := s.RefreshToken(ctx, store.HashID(fmt.Sprintf("next-%02d", i)), at)
		if i == winner {
			must(t, err)
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("loser %d's successor: got %v, want it not stored (ErrNotFound)", i, err)
		}
	}
}

func testRefreshRotateRevoked(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	must(t, s.Revoke(ctx, "fam", time.Now().Add(48*time.Hour)))
	_, err := s.RotateRefreshToken(ctx, old.ID, base.Add(time.Minute), refresh("rt-2", "fam"))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshToken(ctx, store.HashID("rt-2"), base.Add(time.Minute))
	wantErr(t, err, store.ErrNotFound)
}

func testRefreshRotateExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	for _, tc := range []struct {
		name string
		id   string
		now  time.Time
	}{
		{"at expiry", old.ID, old.ExpiresAt},
		{"after expiry", old.ID, old.ExpiresAt.Add(time.Hour)},
		{"unknown", store.HashID("unknown"), base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RotateRefreshToken(ctx, tc.id, tc.now, refresh("next-"+tc.name, "fam"))
			wantErr(t, err, store.ErrNotFound)
			_, err = s.RefreshToken(ctx, store.HashID("next-"+tc.name), base)
			wantErr(t, err, store.ErrNotFound)
		})
	}
	got, err := s.RefreshToken(ctx, old.ID, base)
	must(t, err)
	if !got.RotatedAt.IsZero() {
		t.Fatalf("refused rotations marked the token rotated at %s", got.RotatedAt)
	}
}

func testRefreshRotateConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	taken := refresh("taken", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	must(t, s.CreateRefreshToken(ctx, taken))
	_, err := s.RotateRefreshToken(ctx, old.ID, base, refresh("taken", "fam"))
	wantErr(t, err, store.ErrConflict)
	got, err := s.RefreshToken(ctx, old.ID, base)
	must(t, err)
	same(t, got, old)
	// It can still rotate properly.
	_, err = s.RotateRefreshToken(ctx, old.ID, base, refresh("rt-2", "fam"))
	must(t, err)
}

func testRefreshRotateOtherFamily(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := refresh("rt-1", "fam")
	must(t, s.CreateRefreshToken(ctx, old))
	_, err := s.RotateRefreshToken(ctx, old.ID, base, refresh("rt-2", "another-family"))
	if err == nil {
		t.Fatal("a successor in another family was stored")
	}
	_, err = s.RefreshToken(ctx, store.HashID("rt-2"), base)
	wantErr(t, err, store.ErrNotFound)
	got, err := s.RefreshToken(ctx, old.ID, base)
	must(t, err)
	same(t, got, old)
}

func testRefreshExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refresh("rt", "fam")
	must(t, s.CreateRefreshToken(ctx, r))
	_, err := s.RefreshToken(ctx, r.ID, r.ExpiresAt.Add(-time.Microsecond))
	must(t, err)
	_, err = s.RefreshToken(ctx, r.ID, r.ExpiresAt)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshToken(ctx, store.HashID("unknown"), base)
	wantErr(t, err, store.ErrNotFound)
}

func testRefreshRevoked(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refresh("rt", "fam")
	sibling := refresh("rt-sibling", "other-fam")
	must(t, s.CreateRefreshToken(ctx, r))
	must(t, s.CreateRefreshToken(ctx, sibling))
	must(t, s.Revoke(ctx, "fam", time.Now().Add(48*time.Hour)))
	_, err := s.RefreshToken(ctx, r.ID, base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshToken(ctx, sibling.ID, base)
	must(t, err) // other families are untouched
}

func testRefreshConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refresh("rt", "fam")
	must(t, s.CreateRefreshToken(ctx, r))
	other := r
	other.FamilyID = "attacker"
	wantErr(t, s.CreateRefreshToken(ctx, other), store.ErrConflict)
	got, err := s.RefreshToken(ctx, r.ID, base)
	must(t, err)
	same(t, got, r)
}

// Revocations. Revoked judges expiry by the wall clock.

func testRevokeExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	must(t, s.Revoke(ctx, "jti-live", now.Add(time.Hour)))
	must(t, s.Revoke(ctx, "jti-expired", now.Add(-time.Hour)))
	for _, tc := range []struct {
		id   string
		want bool
	}{{"jti-live", true}, {"jti-expired", false}, {"jti-never", false}} {
		got, err := s.Revoked(ctx, tc.id)
		must(t, err)
		if got != tc.want {
			t.Errorf("Revoked(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func testRevokedAny(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.Revoke(ctx, "fam", time.Now().Add(time.Hour)))
	for _, tc := range []struct {
		ids  []string
		want bool
	}{
		{[]string{"jti", "fam"}, true},
		{[]string{"fam", "jti"}, true},
		{[]string{"jti", "other"}, false},
		{nil, false},
	} {
		got, err := s.Revoked(ctx, tc.ids...)
		must(t, err)
		if got != tc.want {
			t.Errorf("Revoked(%v) = %v, want %v", tc.ids, got, tc.want)
		}
	}
}

func testRevokeExtend(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	must(t, s.Revoke(ctx, "jti", now.Add(time.Hour)))
	must(t, s.Revoke(ctx, "jti", now.Add(-time.Hour))) // must not cut the revocation short
	got, err := s.Revoked(ctx, "jti")
	must(t, err)
	if !got {
		t.Fatal("a second Revoke with an earlier expiry lifted the revocation")
	}
	must(t, s.Revoke(ctx, "jti2", now.Add(-time.Hour)))
	must(t, s.Revoke(ctx, "jti2", now.Add(time.Hour)))
	got, err = s.Revoked(ctx, "jti2")
	must(t, err)
	if !got {
		t.Fatal("a second Revoke with a later expiry was not kept")
	}
}

// Sessions.

func testSessionCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	se := session("sso")
	must(t, s.CreateSession(ctx, se))
	must(t, s.CreateSession(ctx, session("other")))
	got, err := s.Session(ctx, se.ID, base)
	must(t, err)
	same(t, got, se)
	must(t, s.DeleteSession(ctx, se.ID))
	_, err = s.Session(ctx, se.ID, base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Session(ctx, store.HashID("other"), base)
	must(t, err) // deleting one session leaves the others
}

func testSessionExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	se := session("sso")
	must(t, s.CreateSession(ctx, se))
	_, err := s.Session(ctx, se.ID, se.ExpiresAt.Add(-time.Microsecond))
	must(t, err)
	_, err = s.Session(ctx, se.ID, se.ExpiresAt)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Session(ctx, store.HashID("unknown"), base)
	wantErr(t, err, store.ErrNotFound)
}

func testSessionDeleteUnknown(t *testing.T, s store.Store) {
	must(t, s.DeleteSession(context.Background(), store.HashID("unknown")))
}

func testSessionConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	se := session("sso")
	must(t, s.CreateSession(ctx, se))
	other := se
	other.Subject = "attacker"
	wantErr(t, s.CreateSession(ctx, other), store.ErrConflict)
	got, err := s.Session(ctx, se.ID, base)
	must(t, err)
	same(t, got, se)
}

// Session grants.

func testSessionGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Added out of order: listed by CreatedAt, then FamilyID.
	later := grant("sso", "fam-a", "client-b", base.Add(time.Second))
	first := grant("sso", "fam-z", "client-a", base)
	tied := grant("sso", "fam-b", "client-a", base.Add(time.Second))
	tied.ExpiresAt = base.Add(time.Hour)
	other := grant("other-sso", "fam-c", "client-a", base)
	for _, g := range []store.SessionGrant{later, other, tied, first} {
		must(t, s.AddSessionGrant(ctx, g))
	}
	got, err := s.SessionGrants(ctx, first.SessionID, base)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("got %d grants of the session, want 3: %+v", len(got), got)
	}
	for i, want := range []store.SessionGrant{first, later, tied} {
		same(t, got[i], want)
	}
	got, err = s.SessionGrants(ctx, other.SessionID, base)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("grants of another session: %+v", got)
	}
	same(t, got[0], other)
	got, err = s.SessionGrants(ctx, store.HashID("unknown"), base)
	if err != nil || len(got) != 0 {
		t.Fatalf("a session without grants: %+v, %v; want none and no error", got, err)
	}
	// A grant is listed until its expiry.
	got, err = s.SessionGrants(ctx, first.SessionID, tied.ExpiresAt)
	must(t, err)
	if len(got) != 2 || got[0].FamilyID != "fam-z" || got[1].FamilyID != "fam-a" {
		t.Fatalf("at the expiry of fam-b: %+v", got)
	}
	// DeleteExpired removes the expired one only.
	must(t, s.DeleteExpired(ctx, tied.ExpiresAt))
	got, err = s.SessionGrants(ctx, first.SessionID, base)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("after DeleteExpired: %+v", got)
	}
}

func testSessionGrantAgain(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := grant("sso", "fam", "client-a", base)
	must(t, s.AddSessionGrant(ctx, g))
	longer := g
	longer.ExpiresAt = g.ExpiresAt.Add(time.Hour)
	must(t, s.AddSessionGrant(ctx, longer))
	shorter := g
	shorter.ExpiresAt = base.Add(time.Minute)
	must(t, s.AddSessionGrant(ctx, shorter)) // must not cut it short
	got, err := s.SessionGrants(ctx, g.SessionID, base)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(got), got)
	}
	same(t, got[0], longer)
}

func testSessionGrantConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	warm(s)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		g := grant("sso", "fam", "client-a", base)
		g.ExpiresAt = g.ExpiresAt.Add(time.Duration(i) * time.Second)
		errs[i] = s.AddSessionGrant(ctx, g)
	})
	for _, err := range errs {
		must(t, err)
	}
	got, err := s.SessionGrants(ctx, store.HashID("sso"), base)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
	if want := base.Add(8*time.Hour + (concurrency-1)*time.Second); !got[0].ExpiresAt.Equal(want.Truncate(time.Microsecond)) {
		t.Fatalf("expiry %s, want the latest, %s", got[0].ExpiresAt, want)
	}
}

// DeleteExpired is observed by running it at a later instant than the
// queries: a record it removed is gone even when asked about at an earlier
// instant, while one it kept is still there. Revocations and signing keys
// (judged by the wall clock) are checked first, at a cut hours from now;
// codes, tokens and sessions (created at base, decades ahead) must survive
// that and are then checked at a cut of their own.
func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	cut := base.Add(2 * time.Hour)

	shortCode, longCode := code("short"), code("long")
	shortCode.ExpiresAt, longCode.ExpiresAt = cut, cut.Add(time.Microsecond)
	shortRT, longRT := refresh("short", "f1"), refresh("long", "f2")
	shortRT.ExpiresAt, longRT.ExpiresAt = cut.Add(-time.Hour), cut.Add(time.Hour)
	shortSe, longSe := session("short"), session("long")
	shortSe.ExpiresAt, longSe.ExpiresAt = cut.Add(-time.Minute), cut.Add(time.Minute)
	for _, c := range []store.AuthCode{shortCode, longCode} {
		must(t, s.CreateAuthCode(ctx, c))
	}
	for _, r := range []store.RefreshToken{shortRT, longRT} {
		must(t, s.CreateRefreshToken(ctx, r))
	}
	for _, se := range []store.Session{shortSe, longSe} {
		must(t, s.CreateSession(ctx, se))
	}
	now := time.Now()
	wallCut := now.Add(2 * time.Hour)
	must(t, s.Revoke(ctx, "jti-short", now.Add(time.Hour)))
	must(t, s.Revoke(ctx, "jti-long", now.Add(3*time.Hour)))
	add(t, s, "example", key("example", "k-short", now, time.Hour), key("example", "k-long", now, 3*time.Hour))
	secret, err := s.Secret(ctx, "secret", []byte("kept"))
	must(t, err)

	must(t, s.DeleteExpired(ctx, wallCut))
	for _, tc := range []struct {
		id   string
		want bool
	}{{"jti-short", false}, {"jti-long", true}} {
		got, err := s.Revoked(ctx, tc.id)
		must(t, err)
		if got != tc.want {
			t.Errorf("after DeleteExpired, Revoked(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	keys, err := s.SigningKeys(ctx, "example")
	must(t, err)
	wantKIDs(t, keys, "k-long")
	for _, id := range []string{shortSe.ID, longSe.ID} {
		_, err = s.Session(ctx, id, base)
		must(t, err)
	}

	must(t, s.DeleteExpired(ctx, cut))
	_, err = s.ConsumeAuthCode(ctx, shortCode.ID, base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.ConsumeAuthCode(ctx, longCode.ID, base)
	must(t, err)
	_, err = s.RefreshToken(ctx, shortRT.ID, base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshToken(ctx, longRT.ID, base)
	must(t, err)
	_, err = s.Session(ctx, shortSe.ID, base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Session(ctx, longSe.ID, base)
	must(t, err)
	// A removed record's ID is free again.
	must(t, s.CreateAuthCode(ctx, shortCode))
	again, err := s.Secret(ctx, "secret", []byte("new"))
	must(t, err)
	if !bytes.Equal(again, secret) {
		t.Fatalf("DeleteExpired changed a secret to %q", again)
	}
}

func testEmptyRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.AuthCode{ID: "c", Scopes: []string{}, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
	must(t, s.CreateAuthCode(ctx, c))
	gotC, err := s.ConsumeAuthCode(ctx, "c", base)
	must(t, err)
	same(t, gotC, c)

	r := store.RefreshToken{ID: "r", FamilyID: "f", Audience: []string{}, ExpiresAt: base.Add(time.Minute)}
	must(t, s.CreateRefreshToken(ctx, r))
	gotR, err := s.RefreshToken(ctx, "r", base)
	must(t, err)
	same(t, gotR, r)

	se := store.Session{ID: "s", AMR: nil, ExpiresAt: base.Add(time.Minute)}
	must(t, s.CreateSession(ctx, se))
	gotS, err := s.Session(ctx, "s", base)
	must(t, err)
	same(t, gotS, se)

	k := store.SigningKey{Domain: "example", KID: "k", ExpiresAt: time.Now().Add(time.Hour)}
	gotK := add(t, s, "example", k)
	if len(gotK) != 1 {
		t.Fatalf("got %d keys, want 1", len(gotK))
	}
	same(t, gotK[0], k)

	g := store.SessionGrant{SessionID: "s", FamilyID: "f", ExpiresAt: base.Add(time.Minute)}
	must(t, s.AddSessionGrant(ctx, g))
	gotG, err := s.SessionGrants(ctx, "s", base)
	must(t, err)
	if len(gotG) != 1 {
		t.Fatalf("got %d grants, want 1", len(gotG))
	}
	same(t, gotG[0], g)

	// Far-future and far-past instants survive too.
	far := store.Session{ID: "far", AuthTime: time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)}
	must(t, s.CreateSession(ctx, far))
	gotF, err := s.Session(ctx, "far", base)
	must(t, err)
	same(t, gotF, far)
}

func testListRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	se := session("lists")
	se.AMR = []string{"", "NULL", "null", `a "quoted" word`, `back\slash`, "comma,separated", "{braces}", " padded ", "ünï\u00e9", "[x]", "'"}
	must(t, s.CreateSession(ctx, se))
	got, err := s.Session(ctx, se.ID, base)
	must(t, err)
	same(t, got, se)
}

func testValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	noExpiry := time.Time{}
	for _, tc := range []struct {
		name   string
		create func() error
		check  func() error // must report ErrNotFound / nothing stored
	}{
		{"auth code without expiry", func() error {
			c := code("c")
			c.ExpiresAt = noExpiry
			return s.CreateAuthCode(ctx, c)
		}, func() error { _, err := s.ConsumeAuthCode(ctx, code("c").ID, base); return err }},
		{"auth code without ID", func() error {
			c := code("c")
			c.ID = ""
			return s.CreateAuthCode(ctx, c)
		}, func() error { _, err := s.ConsumeAuthCode(ctx, "", base); return err }},
		{"refresh token without expiry", func() error {
			r := refresh("r", "f")
			r.ExpiresAt = noExpiry
			return s.CreateRefreshToken(ctx, r)
		}, func() error { _, err := s.RefreshToken(ctx, refresh("r", "f").ID, base); return err }},
		{"refresh token without family", func() error {
			return s.CreateRefreshToken(ctx, refresh("r", ""))
		}, func() error { _, err := s.RefreshToken(ctx, refresh("r", "").ID, base); return err }},
		{"session without expiry", func() error {
			se := session("s")
			se.ExpiresAt = noExpiry
			return s.CreateSession(ctx, se)
		}, func() error { _, err := s.Session(ctx, session("s").ID, base); return err }},
		{"revocation without expiry", func() error {
			return s.Revoke(ctx, "jti", noExpiry)
		}, func() error {
			if ok, err := s.Revoked(ctx, "jti"); err != nil || ok {
				return fmt.Errorf("revoked=%v err=%v", ok, err)
			}
			return store.ErrNotFound
		}},
		{"session grant without expiry", func() error {
			g := grant("s", "f", "c", base)
			g.ExpiresAt = noExpiry
			return s.AddSessionGrant(ctx, g)
		}, func() error { return noGrants(s, "s") }},
		{"session grant without session", func() error {
			g := grant("s", "f", "c", base)
			g.SessionID = ""
			return s.AddSessionGrant(ctx, g)
		}, func() error { return noGrants(s, "") }},
		{"session grant without family", func() error {
			return s.AddSessionGrant(ctx, grant("s", "", "c", base))
		}, func() error { return noGrants(s, "s") }},
		{"signing key without expiry", func() error {
			_, err := s.RotateSigningKeys(ctx, "example", func([]store.SigningKey) ([]store.SigningKey, error) {
				return []store.SigningKey{{KID: "k"}}, nil
			})
			return err
		}, func() error {
			keys, err := s.SigningKeys(ctx, "example")
			if err != nil || len(keys) != 0 {
				return fmt.Errorf("keys=%v err=%v", kids(keys), err)
			}
			return store.ErrNotFound
		}},
		{"signing key without KID", func() error {
			_, err := s.RotateSigningKeys(ctx, "example", func([]store.SigningKey) ([]store.SigningKey, error) {
				return []store.SigningKey{{ExpiresAt: time.Now().Add(time.Hour)}}, nil
			})
			return err
		}, func() error {
			keys, err := s.SigningKeys(ctx, "example")
			if err != nil || len(keys) != 0 {
				return fmt.Errorf("keys=%v err=%v", kids(keys), err)
			}
			return store.ErrNotFound
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.create(); err == nil {
				t.Fatal("stored without error")
			}
			wantErr(t, tc.check(), store.ErrNotFound)
		})
	}
}

// noGrants is ErrNotFound when the session (HashID of name; "" as is) has
// no grants.
func noGrants(s store.Store, name string) error {
	id := name
	if name != "" {
		id = store.HashID(name)
	}
	got, err := s.SessionGrants(context.Background(), id, base)
	if err != nil || len(got) != 0 {
		return fmt.Errorf("grants=%+v err=%v", got, err)
	}
	return store.ErrNotFound
}

func testRevokedSince(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Now()
	must(t, s.Revoke(ctx, "first", t0.Add(time.Hour)))
	must(t, s.Revoke(ctx, "expired", t0.Add(-time.Hour)))
	time.Sleep(2 * time.Millisecond) // distinct recording times at microsecond precision
	mid := time.Now()
	must(t, s.Revoke(ctx, "second", t0.Add(time.Hour)))
	must(t, s.Revoke(ctx, "third", t0.Add(2*time.Hour)))

	ids := func(rs []store.Revocation) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	all, err := s.RevokedSince(ctx, time.Time{}, 100)
	must(t, err)
	if got := ids(all); !slices.Equal(got, []string{"first", "second", "third"}) {
		t.Fatalf("RevokedSince(zero) = %v, want first, second, third (oldest first, expired left out)", got)
	}
	if r := all[2]; !r.ExpiresAt.Equal(t0.Add(2*time.Hour).Truncate(time.Microsecond)) || r.RevokedAt.Before(mid.Add(-time.Second)) || r.RevokedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("third = %+v", r)
	}
	later, err := s.RevokedSince(ctx, mid, 100)
	must(t, err)
	if got := ids(later); !slices.Equal(got, []string{"second", "third"}) {
		t.Fatalf("RevokedSince(mid) = %v, want second, third", got)
	}
	page, err := s.RevokedSince(ctx, time.Time{}, 1)
	must(t, err)
	if got := ids(page); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("RevokedSince(limit 1) = %v", got)
	}
	// Revoking again records it anew: pollers that already passed it see it again.
	time.Sleep(2 * time.Millisecond)
	again := time.Now()
	must(t, s.Revoke(ctx, "first", t0.Add(time.Hour)))
	got, err := s.RevokedSince(ctx, again, 100)
	must(t, err)
	if !slices.Equal(ids(got), []string{"first"}) {
		t.Fatalf("after revoking first again: %v", ids(got))
	}
	if _, err := s.RevokedSince(ctx, time.Time{}, 0); err == nil {
		t.Fatal("a zero limit was accepted")
	}
}

// Login failures.

func testLoginFailures(t *testing.T, s store.Store) {
	ctx := context.Background()
	w := 15 * time.Minute
	got, err := s.AddLoginFailures(ctx, []string{"a", "b"}, base, w)
	must(t, err)
	if !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("first failures = %v", got)
	}
	got, err = s.AddLoginFailures(ctx, []string{"a"}, base.Add(time.Minute), w)
	must(t, err)
	if !slices.Equal(got, []int{2}) {
		t.Fatalf("second failure of a = %v", got)
	}
	counts, err := s.LoginFailures(ctx, []string{"b", "a", "unknown"}, base.Add(2*time.Minute))
	must(t, err)
	if !slices.Equal(counts, []int{1, 2, 0}) {
		t.Fatalf("LoginFailures = %v, want [1 2 0]", counts)
	}
	// The window runs from the first failure: at base+w it has passed.
	counts, err = s.LoginFailures(ctx, []string{"a"}, base.Add(w))
	must(t, err)
	if !slices.Equal(counts, []int{0}) {
		t.Fatalf("after the window: %v", counts)
	}
	got, err = s.AddLoginFailures(ctx, []string{"a"}, base.Add(w), w)
	must(t, err)
	if !slices.Equal(got, []int{1}) {
		t.Fatalf("a failure after the window starts a new one: %v", got)
	}
	must(t, s.ClearLoginFailures(ctx, "b"))
	counts, err = s.LoginFailures(ctx, []string{"b"}, base.Add(time.Minute))
	must(t, err)
	if !slices.Equal(counts, []int{0}) {
		t.Fatalf("after clearing: %v", counts)
	}
	// DeleteExpired forgets passed windows only.
	_, err = s.AddLoginFailures(ctx, []string{"c"}, base.Add(w), w)
	must(t, err)
	must(t, s.DeleteExpired(ctx, base.Add(2*w)))
	counts, err = s.LoginFailures(ctx, []string{"a", "c"}, base.Add(w))
	must(t, err)
	if !slices.Equal(counts, []int{0, 0}) {
		t.Fatalf("after DeleteExpired at the end of both windows: %v", counts)
	}
	if _, err := s.AddLoginFailures(ctx, []string{"a"}, base, 0); err == nil {
		t.Fatal("a zero window was accepted")
	}
	if counts, err := s.LoginFailures(ctx, nil, base); err != nil || len(counts) != 0 {
		t.Fatalf("no keys: %v %v", counts, err)
	}
}

func testLoginFailuresConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	warm(s)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		_, errs[i] = s.AddLoginFailures(ctx, []string{"shared", fmt.Sprint("own-", i)}, base, time.Hour)
	})
	for _, err := range errs {
		must(t, err)
	}
	counts, err := s.LoginFailures(ctx, []string{"shared"}, base)
	must(t, err)
	if counts[0] != concurrency {
		t.Fatalf("%d concurrent failures counted as %d", concurrency, counts[0])
	}
}
