package revocation

import (
	"testing"
	"time"
)

func TestRevocationHubRevokesFamiliesAndTokens(t *testing.T) {
	h := NewHub()
	var seen []ID
	cancel := h.Subscribe(func(id ID) { seen = append(seen, id) })
	h.Publish("fam1")
	h.Publish("fam2.jti9")
	cancel()
	h.Publish("fam3")
	if !h.Revoked("fam1.anything") || !h.Revoked("fam2.jti9") || h.Revoked("fam2.other") || h.Revoked("fam4.x") {
		t.Fatal("revocation lookups are wrong")
	}
	if len(seen) != 2 {
		t.Fatalf("subscriber saw %v after cancel", seen)
	}
}

// TestHubForgetsWhatExpired: an entry is kept until its time, a later
// publish of the same id never shortens it, and entries past their time are
// dropped (at most once a minute, on a publish).
func TestHubForgetsWhatExpired(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	h := NewHub()
	h.now = func() time.Time { return now }
	h.PublishUntil("short", t0.Add(time.Minute))
	h.PublishUntil("long", t0.Add(time.Hour))
	h.PublishUntil("long", t0.Add(time.Minute)) // keeps the later end
	h.Publish("fam")                            // Memory
	now = t0.Add(2 * time.Minute)
	h.Publish("other")
	if h.Revoked("short") {
		t.Error("an entry past its time was kept")
	}
	if !h.Revoked("long") || !h.Revoked("fam.x") {
		t.Error("a live entry was dropped")
	}
	now = t0.Add(Memory + 2*time.Minute)
	h.Publish("late")
	if h.Revoked("long") || h.Revoked("fam.x") || !h.Revoked("late") {
		t.Error("entries remembered for Memory outlived it, or the newest was dropped")
	}
}
