package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// TestClock checks a backend's injectable clock: setClock replaces the clock
// s judges SigningKeys, RotateSigningKeys and Revoked by. s must be empty.
func TestClock(t *testing.T, s store.Store, setClock func(now func() time.Time)) {
	ctx := context.Background()
	clock := base
	setClock(func() time.Time { return clock })
	add(t, s, "example", key("example", "k1", base, time.Hour), key("example", "k2", base, 3*time.Hour))
	must(t, s.Revoke(ctx, "jti", base.Add(2*time.Hour)))

	for _, tc := range []struct {
		name    string
		at      time.Time
		keys    string
		revoked bool
	}{
		{"before any expiry everything is live", base.Add(time.Minute), "[k1 k2]", true},
		{"the first key expires at its ExpiresAt", base.Add(time.Hour), "[k2]", true},
		{"the revocation expires at its expiry", base.Add(2 * time.Hour), "[k2]", false},
		{"after every expiry nothing is live", base.Add(3 * time.Hour), "[]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock = tc.at
			keys, err := s.SigningKeys(ctx, "example")
			must(t, err)
			if got := fmtKIDs(keys); got != tc.keys {
				t.Errorf("SigningKeys = %s, want %s", got, tc.keys)
			}
			var seen string
			_, err = s.RotateSigningKeys(ctx, "example", func(cur []store.SigningKey) ([]store.SigningKey, error) {
				seen = fmtKIDs(cur)
				return nil, nil
			})
			must(t, err)
			if seen != tc.keys {
				t.Errorf("decide saw %s, want %s", seen, tc.keys)
			}
			revoked, err := s.Revoked(ctx, "jti")
			must(t, err)
			if revoked != tc.revoked {
				t.Errorf("Revoked = %v, want %v", revoked, tc.revoked)
			}
		})
	}
}

func fmtKIDs(keys []store.SigningKey) string {
	out := "["
	for i, k := range keys {
		if i > 0 {
			out += " "
		}
		out += k.KID
	}
	return out + "]"
}
