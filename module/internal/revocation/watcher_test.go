package revocation

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
	const before = PageSize*2 + 17
	for i := range before {
		if err := st.Revoke(ctx, fmt.Sprintf("old-%d", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Revoke(ctx, "expired", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	hub := NewHub()
	published := make(chan ID, before+16)
	defer hub.Subscribe(func(id ID) { published <- id })()
	// The first poll runs before the domain serves: everything recorded
	// earlier is refused from the first request on.
	w := NewWatcher(st, hub, zap.NewNop())
	w.Poll(ctx)
	for _, id := range []ID{"old-0", ID(fmt.Sprintf("old-%d", before-1))} {
		if !hub.Revoked(id) {
			t.Fatalf("%s is not refused after the first poll", id)
		}
	}
	// drain returns what was published since the last drain, with counts
	// (publish is synchronous, so a poll's output is complete when it returns).
	drain := func() map[ID]int {
		got := map[ID]int{}
		for {
			select {
			case id := <-published:
				got[id]++
			default:
				return got
			}
		}
	}
	once := func(what string, got map[ID]int, want ...ID) {
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
	var all []ID
	for i := range before {
		all = append(all, ID(fmt.Sprintf("old-%d", i)))
	}
	once("first poll", drain(), all...)
	if !hub.Revoked("old-5") || !hub.Revoked("old-5.jti") {
		t.Fatal("the hub does not refuse a revoked family")
	}
	if hub.Revoked("expired") {
		t.Error("an expired revocation was published")
	}

	// Recorded while running: published by the next poll, once.
	if err := st.Revoke(ctx, "fam-new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.Poll(ctx)
	once("poll after fam-new", drain(), "fam-new")
	if err := st.Revoke(ctx, "fam-later", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.Poll(ctx)
	once("poll after fam-later", drain(), "fam-later")
	if !hub.Revoked("fam-new.x") {
		t.Fatal("the hub does not refuse a token of the newly revoked family")
	}

	// More polls read the overlap window again (the store still returns
	// fam-new and fam-later from it), yet publish nothing twice.
	for i := range 3 {
		w.Poll(ctx)
		once(fmt.Sprintf("repeated poll %d", i+1), drain())
	}
	again, err := st.RevokedSince(ctx, w.since, PageSize)
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
		w.Run(wctx, 10*time.Millisecond)
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
// logged-out sessions publishes only gate-session ids, learns every
// live one however long ago it was recorded (a session may outlast
// Memory), and remembers each until the session's end.
func TestGateSessionWatcherKeepsEveryLiveLogout(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	st.Now = func() time.Time { return now.Add(-3 * 24 * time.Hour) } // recorded three days ago
	if err := st.Revoke(ctx, string(GateSession("old")), now.Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Now = time.Now
	if err := st.Revoke(ctx, string(GateSession("new")), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(ctx, "fam.jti", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hub := NewHub()
	w := NewGateSessionWatcher(st, hub, zap.NewNop())
	w.Poll(ctx)
	if !hub.Revoked(GateSession("old")) || !hub.Revoked(GateSession("new")) {
		t.Fatal("a logged-out session is not refused")
	}
	if hub.Revoked("fam.jti") || hub.Revoked("fam") || hub.Revoked("new") {
		t.Fatal("the gate-session hub holds other revocations, or takes a session for a family of the same name")
	}
	hub.mu.RLock()
	until := hub.revoked[GateSession("old")]
	hub.mu.RUnlock()
	if !until.Equal(now.Add(7 * 24 * time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("remembered until %v, want the session's end", until)
	}
}

// TestTokenWatcherLeavesGateSessionsAlone: the domain's watcher publishes
// token revocations only; an ended gate session (recorded in the same
// table) is the gate-session watcher's.
func TestTokenWatcherLeavesGateSessionsAlone(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, id := range []ID{"fam", JTI("fam2", "x"), GateSession("s1")} {
		if err := st.Revoke(ctx, string(id), until); err != nil {
			t.Fatal(err)
		}
	}
	hub := NewHub()
	var published []ID
	defer hub.Subscribe(func(id ID) { published = append(published, id) })()
	NewWatcher(st, hub, zap.NewNop()).Poll(ctx)
	if len(published) != 2 || hub.Revoked(GateSession("s1")) {
		t.Fatalf("published %v, want fam and fam2.x and no gate session", published)
	}
	if !hub.Revoked(JTI("fam", "y")) || !hub.Revoked(JTI("fam2", "x")) || hub.Revoked(JTI("fam2", "y")) {
		t.Fatal("the published families and jtis are not refused as they should be")
	}
}
