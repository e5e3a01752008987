package module

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func TestRevocationWatcherPublishesWhatOtherInstancesRecorded(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	// Recorded before this instance started: learned at start, more than a
	// page of them.
	const before = revocationPage*2 + 17
	for i := range before {
		if err := st.Revoke(ctx, fmt.Sprintf("old-%d", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Revoke(ctx, "expired", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	hub := newRevocationHub()
	published := make(chan string, before+16)
	defer hub.subscribe(func(id string) { published <- id })()
	// The first poll runs before the domain serves: everything recorded
	// earlier is refused from the first request on.
	w := newRevocationWatcher(st, hub, zap.NewNop())
	w.poll(ctx)
	for _, id := range []string{"old-0", fmt.Sprintf("old-%d", before-1)} {
		if !hub.isRevoked(id) {
			t.Fatalf("%s is not refused after the first poll", id)
		}
	}
	// drain returns what was published since the last drain, with counts
	// (publish is synchronous, so a poll's output is complete when it returns).
	drain := func() map[string]int {
		got := map[string]int{}
		for {
			select {
			case id := <-published:
				got[id]++
			default:
				return got
			}
		}
	}
	once := func(what string, got map[string]int, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: published %d ids, want %d (%v)", what, len(got), len(want), want)
		}
		for _, id := range want {
			if got[id] != 1 {
				t.Fatalf("%s: %s published %d times, want once", what, id, got[id])
			}
		}
	}
	var all []string
	for i := range before {
		all = append(all, fmt.Sprintf("old-%d", i))
	}
	once("first poll", drain(), all...)
	if !hub.isRevoked("old-5") || !hub.isRevoked("old-5.jti") {
		t.Fatal("the hub does not refuse a revoked family")
	}
	if hub.isRevoked("expired") {
		t.Error("an expired revocation was published")
	}

	// Recorded while running: published by the next poll, once.
	if err := st.Revoke(ctx, "fam-new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.poll(ctx)
	once("poll after fam-new", drain(), "fam-new")
	if err := st.Revoke(ctx, "fam-later", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.poll(ctx)
	once("poll after fam-later", drain(), "fam-later")
	if !hub.isRevoked("fam-new.x") {
		t.Fatal("the hub does not refuse a token of the newly revoked family")
	}

	// More polls read the overlap window again (the store still returns
	// fam-new and fam-later from it), yet publish nothing twice.
	for i := range 3 {
		w.poll(ctx)
		once(fmt.Sprintf("repeated poll %d", i+1), drain())
	}
	again, err := st.RevokedSince(ctx, w.since, revocationPage)
	if err != nil {
		t.Fatal(err)
	}
	inWindow := map[string]bool{}
	for _, r := range again {
		inWindow[r.ID] = true
	}
	if !inWindow["fam-new"] || !inWindow["fam-later"] {
		t.Fatalf("the poll window no longer covers the recent revocations (%d in it), so the repeated polls proved nothing", len(again))
	}

	// run polls on its own: a revocation recorded while it runs is published.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(wctx, 10*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	if err := st.Revoke(ctx, "fam-run", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-published:
		if id != "fam-run" {
			t.Fatalf("run published %s, want fam-run", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not publish fam-run within 10s")
	}
}

// TestGateSessionWatcherKeepsEveryLiveLogout: the watcher behind the gates'
// logged-out sessions publishes only gate-session ids (bare), learns every
// live one however long ago it was recorded (a session may outlast
// revocationMemory), and remembers each until the session's end.
func TestGateSessionWatcherKeepsEveryLiveLogout(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	st.Now = func() time.Time { return now.Add(-3 * 24 * time.Hour) } // recorded three days ago
	if err := st.Revoke(ctx, gateSessionPrefix+"old", now.Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Now = time.Now
	if err := st.Revoke(ctx, gateSessionPrefix+"new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(ctx, "fam.jti", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hub := newRevocationHub()
	w := newRevocationWatcher(st, hub, zap.NewNop())
	w.prefix, w.since = gateSessionPrefix, time.Unix(0, 0)
	w.poll(ctx)
	if !hub.isRevoked("old") || !hub.isRevoked("new") {
		t.Fatal("a logged-out session is not refused")
	}
	if hub.isRevoked("fam.jti") || hub.isRevoked(gateSessionPrefix+"new") {
		t.Fatal("the gate-session hub holds other revocations, or prefixed ids")
	}
	hub.mu.RLock()
	until := hub.revoked["old"]
	hub.mu.RUnlock()
	if !until.Equal(now.Add(7 * 24 * time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("remembered until %v, want the session's end", until)
	}
}
