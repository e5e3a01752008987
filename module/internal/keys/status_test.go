package keys

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestStatusFollowsAForcedRotation: Status names the signing key, the key a
// rotation published ahead and when it starts, and every published kid;
// once the lead has passed, the new key signs.
func TestStatusFollowsAForcedRotation(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := newStore(t, c)
	ctx := context.Background()
	m, _ := New(st, "d", Config{Algorithm: ES256, RotateEvery: time.Hour, Now: c.Now})
	if s := m.Status(); s.Signing != "" || s.Published != nil {
		t.Fatalf("status before Load: %+v", s)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := m.Status()
	if first.Signing == "" || first.Next != "" || !slices.Equal(first.Published, []string{first.Signing}) ||
		!first.SigningUntil.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("status after the first key: %+v", first)
	}
	c.Add(time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	s := m.Status()
	lead := PublishAhead(time.Hour)
	if s.Signing != first.Signing || s.Next == "" || s.Next == first.Signing || !s.NextFrom.Equal(c.Now().Add(lead)) {
		t.Fatalf("status after a rotation: %+v (the new key must start %s from now)", s, lead)
	}
	want := []string{first.Signing, s.Next}
	slices.Sort(want)
	if !slices.Equal(s.Published, want) {
		t.Fatalf("published %v, want %v", s.Published, want)
	}
	c.Add(lead)
	if now := m.Status(); now.Signing != s.Next || now.Next != "" {
		t.Fatalf("after the lead: %+v, want %s signing", now, s.Next)
	}
}
